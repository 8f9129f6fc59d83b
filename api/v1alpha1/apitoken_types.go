package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ApiTokenType says whose token it is and so who may create it.
//
// +kubebuilder:validation:Enum=Team;Wildcard;Admin
type ApiTokenType string

const (
	// TeamTokenType is a token of the teams listed in spec.teams. Admins and
	// owners of every listed team may create one.
	TeamTokenType ApiTokenType = "Team"

	// WildcardTokenType is a token of every team its creator owns at the time
	// it is verified (every team, if the creator is an admin). Admins and
	// owners of at least one team may create one.
	WildcardTokenType ApiTokenType = "Wildcard"

	// AdminTokenType is a token with administrative standing. Only admins may
	// create one.
	AdminTokenType ApiTokenType = "Admin"
)

// ApiTokenPhase is a one-word summary of an ApiToken's state; the Ready
// condition carries the reason.
//
// +kubebuilder:validation:Enum=Pending;Active;Disabled;Expired;Invalidated;Failed
type ApiTokenPhase string

const (
	// PhasePending means no value has been delivered yet.
	PhasePending ApiTokenPhase = "Pending"
	// PhaseActive means the Secret holds a value that verifies.
	PhaseActive ApiTokenPhase = "Active"
	// PhaseDisabled means spec.disabled is set: the value is kept but refused.
	PhaseDisabled ApiTokenPhase = "Disabled"
	// PhaseExpired means the expiry instant has passed and the value is gone.
	PhaseExpired ApiTokenPhase = "Expired"
	// PhaseInvalidated means the creator lost the standing the token needs;
	// the value is gone and only a recreate by someone allowed brings a new one.
	PhaseInvalidated ApiTokenPhase = "Invalidated"
	// PhaseFailed means the operator cannot deliver a value, for example
	// because a Secret it does not own has the name.
	PhaseFailed ApiTokenPhase = "Failed"
)

// ApiTokenSpec is the desired state of an ApiToken.
//
// +kubebuilder:validation:XValidation:rule="self.type != 'Team' || (has(self.teams) && size(self.teams) > 0)",message="teams is required when type is Team",fieldPath=".teams",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="self.type == 'Team' || !has(self.teams)",message="teams is forbidden unless type is Team",fieldPath=".teams",reason="FieldValueForbidden"
// +kubebuilder:validation:XValidation:rule="!(has(self.expiresAt) && has(self.lifetime))",message="expiresAt and lifetime are mutually exclusive: set at most one",fieldPath=".lifetime"
// +kubebuilder:validation:XValidation:rule="!has(self.rotation) || !has(self.rotation.renewBefore) || has(self.lifetime)",message="rotation.renewBefore needs lifetime: a fixed expiresAt cannot be renewed",fieldPath=".rotation.renewBefore"
// +kubebuilder:validation:XValidation:rule="has(self.secretName) == has(oldSelf.secretName) && (!has(self.secretName) || self.secretName == oldSelf.secretName)",message="secretName is immutable",fieldPath=".secretName"
type ApiTokenSpec struct {
	// type is Team, Wildcard or Admin; it decides who may create the token and
	// which teams it speaks for. Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="type is immutable"
	Type ApiTokenType `json:"type"`

	// teams names the Teams a Team token belongs to. Required and non-empty
	// for type Team, forbidden otherwise. Immutable.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="teams is immutable"
	Teams []string `json:"teams,omitempty"`

	// scopes are free-form permission strings handed back to whoever verifies
	// the token. Tokenwarden does not interpret them, except to check them
	// against a team's policy.allowedScopes.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	Scopes []ScopeString `json:"scopes,omitempty"`

	// expiresAt is the instant (RFC 3339) the token stops verifying. At most
	// one of expiresAt and lifetime; neither means the token does not expire,
	// unless a team policy requires expiry. Moving or removing it applies to
	// the current value without issuing a new one; an Expired token's value
	// is gone, so it needs a recreate.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// lifetime is how long each issued value verifies, counted from its
	// issuance (status.issuedAt), for example "30d" or "12h". Changing it
	// moves the current value's expiry to issuedAt plus the new lifetime,
	// without issuing a new value. At most one of expiresAt and lifetime.
	// +optional
	Lifetime *Duration `json:"lifetime,omitempty"`

	// disabled makes the token stop verifying without deleting it. Setting it
	// back to false restores the same value.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// recreate is a counter that issues a new value whenever it changes:
	// bump it (in Git, or with kubectl) to replace a leaked or old value. The
	// name, type, teams and scopes are kept; the old value stops verifying at
	// once, or after rotation.overlap.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Recreate int64 `json:"recreate,omitempty"`

	// rotation tunes how new values replace old ones.
	// +optional
	Rotation *RotationSpec `json:"rotation,omitempty"`

	// secretName is the name of the Secret, in the ApiToken's namespace, that
	// receives the value under the key "token". Defaults to the ApiToken's
	// name. Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SecretName string `json:"secretName,omitempty"`

	// secretTemplate puts labels and annotations on the delivered Secret, for
	// example the annotation a reloader watches to roll a Deployment. An entry
	// removed from the template is removed from the Secret; labels and
	// annotations set on the Secret by anyone else are left alone.
	// +optional
	SecretTemplate *SecretTemplate `json:"secretTemplate,omitempty"`
}

// RotationSpec tunes how a new value replaces the previous one.
type RotationSpec struct {
	// overlap keeps the previous value verifying for this long after a new
	// one is issued, so consumers can pick up the new Secret without an
	// outage. Unset means the previous value stops verifying at once.
	// +optional
	Overlap *Duration `json:"overlap,omitempty"`

	// renewBefore issues a new value automatically this long before the
	// current one expires; it needs spec.lifetime, and is ignored when not
	// shorter than it. Unset means values are only replaced on recreate.
	// +optional
	RenewBefore *Duration `json:"renewBefore,omitempty"`
}

// SecretTemplate is metadata copied onto the delivered Secret.
type SecretTemplate struct {
	// labels are added to the Secret. The managed-by label is Tokenwarden's
	// and cannot be set here.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="!('app.kubernetes.io/managed-by' in self)",message="the app.kubernetes.io/managed-by label is set by Tokenwarden"
	Labels map[string]string `json:"labels,omitempty"`

	// annotations are added to the Secret. The annotation
	// auth.tokenwarden.io/secret-template is Tokenwarden's and cannot be set
	// here.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="!('auth.tokenwarden.io/secret-template' in self)",message="the auth.tokenwarden.io/secret-template annotation is set by Tokenwarden"
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ApiTokenStatus is the observed state of an ApiToken. It never holds the
// token value: only its digest and a short prefix for identification.
type ApiTokenStatus struct {
	// phase summarizes the state: Pending, Active, Disabled, Expired,
	// Invalidated or Failed.
	// +optional
	Phase ApiTokenPhase `json:"phase,omitempty"`

	// conditions hold Ready, whose reason explains every phase but Active,
	// and Reconciled, which says whether the last reconcile finished or why
	// it failed.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// tokenHash is the SHA-256 digest of the current value, as
	// "sha256:<64 hex digits>". Verification looks values up by it.
	// +optional
	// +kubebuilder:validation:Pattern=`^sha256:[0-9a-f]{64}$`
	TokenHash string `json:"tokenHash,omitempty"`

	// tokenPrefix is the non-secret beginning of the current value (type
	// prefix and a few characters), enough to tell which token a leaked value
	// or a log line is about.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	TokenPrefix string `json:"tokenPrefix,omitempty"`

	// issuedAt is when the current value was issued.
	// +optional
	IssuedAt *metav1.Time `json:"issuedAt,omitempty"`

	// expiresAt is when the current value stops verifying: spec.expiresAt, or
	// issuedAt plus spec.lifetime. Unset means never. It follows edits of
	// spec.expiresAt and spec.lifetime while the value is held; once the token
	// is Expired it keeps the instant the value expired.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// lastUsedAt is when the token last verified successfully, recorded in
	// batches (at most one status write per token per interval).
	// +optional
	LastUsedAt *metav1.Time `json:"lastUsedAt,omitempty"`

	// recreate is the spec.recreate value the current value was issued for.
	// +optional
	Recreate int64 `json:"recreate,omitempty"`

	// previous describes the value replaced by the last recreate while it
	// still verifies during rotation.overlap; it is dropped once that ends.
	// +optional
	Previous *PreviousToken `json:"previous,omitempty"`

	// creator is who created the ApiToken, from the creator annotation.
	// +optional
	Creator *UserIdentity `json:"creator,omitempty"`

	// secretRef names the Secret, in the ApiToken's namespace, that holds the
	// current value.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
}

// PreviousToken is a replaced value that still verifies until expiresAt.
type PreviousToken struct {
	// tokenHash is the SHA-256 digest of the replaced value.
	// +kubebuilder:validation:Pattern=`^sha256:[0-9a-f]{64}$`
	TokenHash string `json:"tokenHash"`

	// expiresAt is when the replaced value stops verifying.
	ExpiresAt metav1.Time `json:"expiresAt"`
}

// SecretReference names a Secret in the same namespace.
type SecretReference struct {
	// name is the Secret's name.
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ApiToken is an API access token: the operator issues a random value into a
// Secret next to it, keeps only the value's digest, expires and recreates it,
// and invalidates it when its creator's standing no longer holds.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=tok;apitok,categories=tokenwarden
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Teams",type=string,JSONPath=`.spec.teams`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Last-Used",type=date,JSONPath=`.status.lastUsedAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ApiToken struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired token.
	// +required
	Spec ApiTokenSpec `json:"spec"`

	// status is what the operator observed and did.
	// +optional
	Status ApiTokenStatus `json:"status,omitempty"`
}

// ApiTokenList is a list of ApiTokens.
//
// +kubebuilder:object:root=true
type ApiTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ApiToken `json:"items"`
}
