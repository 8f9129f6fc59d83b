// Package v1alpha1 contains the API types of the auth.tokenwarden.io group:
// Team (cluster-scoped) and ApiToken (namespaced).
//
// This package holds types and kubebuilder markers only; the decisions made
// about these objects live in internal/ packages.
//
// +kubebuilder:object:generate=true
// +groupName=auth.tokenwarden.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "auth.tokenwarden.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
