// Package v1alpha1 contains the API types of the auth.tokenwarden.io group:
// Team (cluster-scoped) and ApiToken (namespaced).
//
// This package holds types and kubebuilder markers only; the decisions made
// about these objects live in internal/ packages. It depends on nothing but
// k8s.io/apimachinery, so clients can import it cheaply.
//
// +kubebuilder:object:generate=true
// +groupName=auth.tokenwarden.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "auth.tokenwarden.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &ApiToken{}, &ApiTokenList{}, &Team{}, &TeamList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
