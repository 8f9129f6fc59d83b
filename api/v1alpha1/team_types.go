package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SubjectKind is the kind of a Team owner.
//
// +kubebuilder:validation:Enum=User;Group;ServiceAccount
type SubjectKind string

const (
	// UserSubject matches a request whose user name equals the name.
	UserSubject SubjectKind = "User"
	// GroupSubject matches a request whose user is in the named group.
	GroupSubject SubjectKind = "Group"
	// ServiceAccountSubject matches requests from
	// system:serviceaccount:<namespace>:<name>.
	ServiceAccountSubject SubjectKind = "ServiceAccount"
)

// Subject is an owner of a Team.
//
// +kubebuilder:validation:XValidation:rule="self.kind != 'ServiceAccount' || has(self.namespace)",message="namespace is required when kind is ServiceAccount",fieldPath=".namespace",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="self.kind == 'ServiceAccount' || !has(self.namespace)",message="namespace is forbidden unless kind is ServiceAccount",fieldPath=".namespace",reason="FieldValueForbidden"
type Subject struct {
	// kind is User, Group or ServiceAccount.
	// +required
	Kind SubjectKind `json:"kind"`

	// name is the user name, group name or ServiceAccount name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// namespace is the ServiceAccount's namespace; required for kind
	// ServiceAccount and forbidden otherwise.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// TeamPolicy constrains the tokens of a team.
type TeamPolicy struct {
	// maxLifetime is the longest a value of this team's tokens may verify,
	// counted from its issuance.
	// +optional
	MaxLifetime *Duration `json:"maxLifetime,omitempty"`

	// requireExpiry refuses tokens of this team that set neither expiresAt
	// nor lifetime.
	// +optional
	RequireExpiry bool `json:"requireExpiry,omitempty"`

	// allowedScopes are globs ("*" any run of characters, "?" one character);
	// every scope of this team's tokens must match one. Unset allows any scope.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	AllowedScopes []ScopeGlob `json:"allowedScopes,omitempty"`
}

// TeamSpec is the desired state of a Team.
type TeamSpec struct {
	// description says what the team is for.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// owners are the subjects that may create and manage this team's tokens
	// and edit this team (except its namespaces). At least one.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Owners []Subject `json:"owners"`

	// namespaces are where this team's tokens, and so their Secrets, may
	// live. Only admins may change them.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces,omitempty"`

	// policy constrains this team's tokens.
	// +optional
	Policy *TeamPolicy `json:"policy,omitempty"`
}

// TeamStatus is the observed state of a Team.
type TeamStatus struct {
	// conditions hold Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// activeTokens counts this team's Team tokens in phase Active.
	// +optional
	ActiveTokens int32 `json:"activeTokens"`
}

// Team is a group of owners, the namespaces its tokens may live in and the
// policy they follow. Team tokens name their Teams; Wildcard tokens speak for
// every Team their creator owns.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=tokteam,categories=tokenwarden
// +kubebuilder:printcolumn:name="Owners",type=string,JSONPath=`.spec.owners[*].name`,priority=1
// +kubebuilder:printcolumn:name="Namespaces",type=string,JSONPath=`.spec.namespaces`
// +kubebuilder:printcolumn:name="Active-Tokens",type=integer,JSONPath=`.status.activeTokens`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Team struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired team.
	// +required
	Spec TeamSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status TeamStatus `json:"status,omitempty"`
}

// TeamList is a list of Teams.
//
// +kubebuilder:object:root=true
type TeamList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Team `json:"items"`
}
