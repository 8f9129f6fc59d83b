package authz

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Verdict is the outcome of every decision in this package: admission
// (ReviewToken, ReviewTeam), entitlement (Entitled) and policy. The webhooks
// turn it into a field.ErrorList, the reconciler into a condition (Reason,
// Message), the verifier into a refusal reason.
type Verdict struct {
	// NeedAdmin is true when the answer depends on the requester's (or
	// creator's) admin standing, which was AdminUnknown: ask, and decide
	// again.
	NeedAdmin bool
	// Reason is the v1alpha1 condition reason of the first refusal; "" when
	// allowed or when only admin standing is missing.
	Reason string
	// Errs are the refusals, each on the field at fault.
	Errs field.ErrorList
}

// Allowed reports whether the decision is yes.
func (v Verdict) Allowed() bool { return !v.NeedAdmin && len(v.Errs) == 0 }

// NeedsAdmin reports whether the verdict waits for admin standing.
func (v Verdict) NeedsAdmin() bool { return v.NeedAdmin }

// Message is the refusals for a person, each naming its field: what a
// condition message says.
func (v Verdict) Message() string {
	msgs := make([]string, 0, len(v.Errs))
	for _, e := range v.Errs {
		msgs = append(msgs, e.Error())
	}
	return strings.Join(msgs, "; ")
}

var (
	allowed   = Verdict{}
	needAdmin = Verdict{NeedAdmin: true}
)

// refuse is a refusal for reason, on the field err names.
func refuse(reason string, err *field.Error) Verdict {
	return Verdict{Reason: reason, Errs: field.ErrorList{err}}
}

// and combines two verdicts: refusals add up, the first reason wins, and
// the result waits for admin standing only when nothing refused it already.
func (v Verdict) and(w Verdict) Verdict {
	out := Verdict{Reason: v.Reason, Errs: append(append(field.ErrorList(nil), v.Errs...), w.Errs...)}
	if out.Reason == "" {
		out.Reason = w.Reason
	}
	out.NeedAdmin = len(out.Errs) == 0 && (v.NeedAdmin || w.NeedAdmin)
	return out
}

// orAdmin allows an admin, asks when standing is unknown, and otherwise
// returns the refusal.
func orAdmin(admin AdminAnswer, refusal Verdict) Verdict {
	switch admin {
	case AdminYes:
		return allowed
	case AdminUnknown:
		return needAdmin
	}
	return refusal
}
