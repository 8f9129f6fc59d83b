package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// AdminChecker answers whether a user is a Tokenwarden admin.
type AdminChecker interface {
	IsAdmin(ctx context.Context, user *v1alpha1.UserIdentity) (bool, error)
}

// SubjectAccessReviewer asks Kubernetes RBAC through SubjectAccessReview
// whether a user may perform the verb admin on apitokens in our group,
// passing the user's name, uid, groups and extra exactly as recorded. It
// asks every time; wrap it in a RememberingAdminChecker to ask less.
type SubjectAccessReviewer struct {
	Client client.Client
}

// IsAdmin implements AdminChecker.
func (r *SubjectAccessReviewer) IsAdmin(ctx context.Context, user *v1alpha1.UserIdentity) (bool, error) {
	if user == nil || user.Username == "" {
		return false, nil
	}
	review := AdminReview(user)
	if err := r.Client.Create(ctx, review); err != nil {
		return false, fmt.Errorf("asking SubjectAccessReview whether %q is an admin: %w", user.Username, err)
	}
	return review.Status.Allowed, nil
}

// RememberingAdminChecker remembers Checker's answers until Forget. The
// reconciler calls Forget whenever a ClusterRole or ClusterRoleBinding
// changes, the only objects that can change a cluster-wide answer, so a
// demotion is seen at once while an idle cluster asks nothing. Only a
// component that watches RBAC may use it: the admission webhooks, served by
// every replica, ask afresh.
type RememberingAdminChecker struct {
	Checker AdminChecker
	// TTL bounds how long an answer is remembered even without an RBAC
	// event: an API server whose RBAC cache lagged behind the event may
	// have answered with the standing from before it. Zero means until
	// Forget.
	TTL time.Duration

	mu      sync.Mutex
	answers map[string]rememberedAnswer
	// asking holds the questions on their way to Checker, so requests that
	// need the same answer at once wait for one review rather than each
	// sending their own.
	asking map[string]*question
	// epoch counts Forget calls, so an answer asked for before an RBAC
	// change is not remembered after it.
	epoch uint64
}

// question is a review in flight; done closes when admin and err are set.
type question struct {
	done  chan struct{}
	admin bool
	err   error
}

// IsAdmin implements AdminChecker. When asking again fails (the API server
// is unreachable), an answer that merely outlived TTL is still given: it
// was true when last asked and no RBAC change has been seen since. An
// answer dropped by Forget is never given again.
func (r *RememberingAdminChecker) IsAdmin(ctx context.Context, user *v1alpha1.UserIdentity) (bool, error) {
	if user == nil || user.Username == "" {
		return false, nil
	}
	key := identityKey(user)
	now := time.Now()
	r.mu.Lock()
	remembered, ok := r.answers[key]
	if ok && (r.TTL == 0 || now.Sub(remembered.at) < r.TTL) {
		r.mu.Unlock()
		return remembered.admin, nil
	}
	q, inFlight := r.asking[key]
	if !inFlight {
		q = &question{done: make(chan struct{})}
		if r.asking == nil {
			r.asking = map[string]*question{}
		}
		r.asking[key] = q
		// The review outlives this request if it must: others may be
		// waiting for it after this one has given up.
		go r.ask(context.WithoutCancel(ctx), key, user, q, r.epoch, now)
	}
	r.mu.Unlock()

	select {
	case <-q.done:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	if q.err != nil {
		if ok {
			return remembered.admin, nil
		}
		return false, q.err
	}
	return q.admin, nil
}

// ask puts one question to Checker on behalf of everyone waiting for it,
// with ctx's values but not its cancellation, bounded by its own timeout.
func (r *RememberingAdminChecker) ask(ctx context.Context, key string, user *v1alpha1.UserIdentity, q *question, epoch uint64, at time.Time) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	q.admin, q.err = r.Checker.IsAdmin(ctx, user)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.asking, key)
	if q.err == nil && r.epoch == epoch {
		if r.answers == nil {
			r.answers = map[string]rememberedAnswer{}
		}
		r.answers[key] = rememberedAnswer{admin: q.admin, at: at}
	}
	close(q.done)
}

// rememberedAnswer is an answer and when it was asked for.
type rememberedAnswer struct {
	admin bool
	at    time.Time
}

// Fresh returns a checker that asks afresh: checker itself, or the checker a
// RememberingAdminChecker wraps.
func Fresh(checker AdminChecker) AdminChecker {
	if r, ok := checker.(*RememberingAdminChecker); ok {
		return r.Checker
	}
	return checker
}

// Forget drops every remembered answer.
func (r *RememberingAdminChecker) Forget() {
	r.mu.Lock()
	r.answers = nil
	r.epoch++
	r.mu.Unlock()
}

// AdminReview is the SubjectAccessReview that decides admin standing.
func AdminReview(user *v1alpha1.UserIdentity) *authorizationv1.SubjectAccessReview {
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	return &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   user.Username,
			UID:    user.UID,
			Groups: user.Groups,
			Extra:  extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group:    v1alpha1.GroupVersion.Group,
				Resource: "apitokens",
				Verb:     v1alpha1.AdminVerb,
			},
		},
	}
}

// identityKey is a digest of everything SubjectAccessReview is told, so two
// users differing in any of it never share an answer.
func identityKey(user *v1alpha1.UserIdentity) string {
	h := sha256.New()
	write := func(s string) { _, _ = fmt.Fprintf(h, "%d:%s;", len(s), s) }
	write(user.Username)
	write(user.UID)
	groups := append([]string(nil), user.Groups...)
	sort.Strings(groups)
	for _, g := range groups {
		write(g)
	}
	keys := make([]string, 0, len(user.Extra))
	for k := range user.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		write(k)
		for _, v := range user.Extra[k] {
			write(v)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
