package v1alpha1

// Condition types of ApiToken and Team.
const (
	// ReadyCondition is True when an ApiToken's value verifies (phase Active)
	// or a Team has been reconciled; when False, its reason says why.
	ReadyCondition = "Ready"
)

// Reasons of the Ready condition. Every phase but Active has one of its own,
// so `kubectl get -o wide` and alerts can tell the states apart.
const (
	// ReasonIssued: a value was delivered and verifies.
	ReasonIssued = "Issued"
	// ReasonPending: no value has been delivered yet.
	ReasonPending = "Pending"
	// ReasonDisabled: spec.disabled is set.
	ReasonDisabled = "Disabled"
	// ReasonExpired: the expiry instant has passed.
	ReasonExpired = "Expired"
	// ReasonExpiresAtPassed: a new value is wanted (spec.recreate changed,
	// or none was ever issued) but spec.expiresAt has passed, so the value
	// would be born expired and none is issued. Setting a new expiresAt or
	// a lifetime issues it.
	ReasonExpiresAtPassed = "ExpiresAtPassed"
	// ReasonCreatorNotOwner: the creator no longer owns the teams the token
	// needs and is not an admin.
	ReasonCreatorNotOwner = "CreatorNotOwner"
	// ReasonCreatorNotAdmin: the creator of an Admin token is no longer an
	// admin.
	ReasonCreatorNotAdmin = "CreatorNotAdmin"
	// ReasonCreatorUnknown: the token has no valid creator annotation, so
	// nobody can be held entitled to it; it is not issued. This happens when
	// it was created while the admission webhook was absent.
	ReasonCreatorUnknown = "CreatorUnknown"
	// ReasonTeamDeleted: a Team the token belongs to was deleted, or is
	// being deleted (it has a deletionTimestamp).
	ReasonTeamDeleted = "TeamDeleted"
	// ReasonNamespaceNotAllowed: the token's namespace is no longer one its
	// Team allows (spec.namespaces), or, for a Wildcard token, none of the
	// teams its creator owns allows it.
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	// ReasonPolicyViolation: the token breaks a policy of one of its teams.
	ReasonPolicyViolation = "PolicyViolation"
	// ReasonSecretConflict: a Secret the operator does not own has the name
	// the token would be delivered to; it is left untouched.
	ReasonSecretConflict = "SecretConflict"
	// ReasonReconciled: a Team's status is up to date.
	ReasonReconciled = "Reconciled"
)
