package v1alpha1

// Condition types of ApiToken and Team.
const (
	// ReadyCondition is True when an ApiToken's value verifies (phase Active)
	// or a Team has been reconciled; when False, its reason says why.
	ReadyCondition = "Ready"
	// ReconciledCondition says whether the last reconcile of an ApiToken
	// finished: True (reason Reconciled) when it did, False when it failed,
	// with the reason ReconcileError and the error's message while it is
	// retried, or InvalidSpec when it stopped for good on a spec it cannot
	// read. A failed reconcile changes nothing else in the status (Ready,
	// the phase and observedGeneration stay as last written), so this
	// condition is where a failure shows.
	ReconciledCondition = "Reconciled"
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
	// ReasonInvalidSpec: a duration in the spec (spec.lifetime,
	// spec.rotation.renewBefore or spec.rotation.overlap) cannot be read:
	// a total too long to count (the API server checks only the syntax), or
	// anything in an object stored before the API server validated it. The
	// phase is Failed, the message names the field, any value held is
	// withdrawn, and nothing is retried until the spec is edited. It is
	// also the reason of the Reconciled condition, which is False.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonReconciled: a Team's status is up to date (Ready), or the last
	// reconcile of an ApiToken finished (Reconciled).
	ReasonReconciled = "Reconciled"
)

// Reasons of the Reconciled condition besides Reconciled and InvalidSpec.
const (
	// ReasonReconcileError: the last reconcile failed and is retried; the
	// message is the error. Conflicts of the optimistic lock, retried at
	// once, are not recorded.
	ReasonReconcileError = "ReconcileError"
)
