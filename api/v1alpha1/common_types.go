package v1alpha1

// Duration is a positive length of time written as whole days, hours, minutes
// and seconds in that order, each optional: "30d", "12h", "1d12h", "90m",
// "1h30m15s". Days are allowed because token lifetimes are usually counted in
// days, which Go's duration syntax lacks; fractions and smaller units are not,
// because expiry is exact to the second.
//
// +kubebuilder:validation:MinLength=2
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:Pattern=`^([0-9]{1,5}d)?([0-9]{1,6}h)?([0-9]{1,8}m)?([0-9]{1,9}s)?$`
// +kubebuilder:validation:XValidation:rule="self.matches('[1-9]')",message="must be a positive duration such as 30d, 12h or 1h30m"
type Duration string

// ScopeString is one permission string carried by a token and handed back on
// verification, such as "read:orders" or "deploy/staging".
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`
type ScopeString string

// ScopeGlob is a pattern over ScopeStrings in which "*" matches any run of
// characters and "?" matches exactly one, such as "read:*".
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:Pattern=`^[A-Za-z0-9*?][A-Za-z0-9._:/*?-]*$`
type ScopeGlob string

// UserIdentity is who sent an API request, as the API server authenticated
// it. It is how Tokenwarden remembers the creator of a token.
type UserIdentity struct {
	// username is the authenticated name, for example "jane@example.com" or
	// "system:serviceaccount:argocd:argocd-application-controller".
	// +kubebuilder:validation:MaxLength=512
	Username string `json:"username"`

	// uid is the unique identifier the authenticator gave the user, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	UID string `json:"uid,omitempty"`

	// groups are the groups the user belonged to at the time.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=512
	Groups []string `json:"groups,omitempty"`

	// extra holds additional authenticator attributes; admin checks pass them
	// on to SubjectAccessReview.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Extra map[string][]string `json:"extra,omitempty"`
}

const (
	// CreatorAnnotation holds the JSON-encoded UserIdentity of the user that
	// created an ApiToken. The admission webhook writes it at CREATE from the
	// request's authenticated user, overwriting any client-supplied value, and
	// refuses every later change to it.
	CreatorAnnotation = "auth.tokenwarden.io/creator"

	// ManagedByLabel marks every Secret Tokenwarden manages, so the operator
	// can cache those Secrets alone instead of every Secret in the cluster.
	ManagedByLabel = "app.kubernetes.io/managed-by"

	// ManagedByValue is the value of ManagedByLabel on Tokenwarden's Secrets.
	ManagedByValue = "tokenwarden"

	// SecretTemplateAnnotation on a delivered Secret lists, as JSON
	// ({"labels":[...],"annotations":[...]}), the keys the operator put there
	// from spec.secretTemplate. It is how the operator tells a key removed
	// from the template, which it removes, from one that someone else set,
	// which it never touches.
	SecretTemplateAnnotation = "auth.tokenwarden.io/secret-template"

	// SecretType is the type of every Secret that delivers a token.
	SecretType = "auth.tokenwarden.io/api-token"

	// SecretTokenKey is the key of the token value inside a delivered Secret.
	SecretTokenKey = "token"

	// AdminVerb is the RBAC verb on apitokens in this group that makes a
	// subject a Tokenwarden admin.
	AdminVerb = "admin"
)
