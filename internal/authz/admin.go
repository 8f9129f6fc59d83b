package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/cache"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// AdminChecker answers whether a user is a Tokenwarden admin.
type AdminChecker interface {
	IsAdmin(ctx context.Context, user *v1alpha1.UserIdentity) (bool, error)
}

// SubjectAccessReviewer asks Kubernetes RBAC through SubjectAccessReview
// whether a user may perform the verb admin on apitokens in our group,
// passing the user's name, uid, groups and extra exactly as recorded. It
// asks every time; Standing is what remembers.
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

// Standing owns admin standing for the whole process: it asks a
// SubjectAccessReviewer, remembers the answers for TTL, shares one review
// among concurrent questions, and watches cluster RBAC itself (SetupWithManager)
// so that no answer outlives a change that could alter it.
//
// Standing treats RBAC as eventually consistent: kube-apiserver's
// authorizer sees a ClusterRoleBinding change a moment after the watch
// delivers it, so a review asked at once may still give the old answer.
// For Settle after every change, answers are remembered only until the
// window ends, and Unsettled tells callers to decide again then; a demotion
// is therefore never missed for good. Callers also re-check periodically
// (the reconciler's Recheck), for a change no watch saw.
type Standing struct {
	// Reviewer asks RBAC; a SubjectAccessReviewer in production.
	Reviewer AdminChecker
	// Clock is the one clock of every TTL and window here.
	Clock clock.Clock
	// TTL bounds how long an answer is remembered without an RBAC event.
	TTL time.Duration
	// Settle is how long after an RBAC change answers are treated as
	// unsettled.
	Settle time.Duration

	once    sync.Once
	mu      sync.Mutex
	answers *cache.Expiring
	// stale holds the last answer asked for each identity since the last
	// RBAC change, given when asking again fails (the API server is
	// unreachable): it was true when last asked and nothing changed since.
	stale     map[string]bool
	epoch     uint64
	changedAt time.Time
	inflight  singleflight.Group
	changes   chan event.GenericEvent
	// pending is whose standing the changes not yet taken (TakeChanges)
	// may have altered: keys, or everyone's when pendingAll.
	pending    map[string]struct{}
	pendingAll bool
}

// NewStanding returns a Standing asking reviewer, with the defaults used in
// production: answers kept 30 s, and a settle window of 1 s.
func NewStanding(reviewer AdminChecker, clk clock.Clock) *Standing {
	return &Standing{Reviewer: reviewer, Clock: clk, TTL: 30 * time.Second, Settle: time.Second}
}

func (s *Standing) init() {
	s.once.Do(func() {
		if s.Clock == nil {
			s.Clock = clock.RealClock{}
		}
		s.answers = cache.NewExpiringWithClock(s.Clock)
		s.stale = map[string]bool{}
		s.changes = make(chan event.GenericEvent, 1)
		s.pending = map[string]struct{}{}
	})
}

// IsAdmin implements AdminChecker with remembered answers.
func (s *Standing) IsAdmin(ctx context.Context, user *v1alpha1.UserIdentity) (bool, error) {
	if user == nil || user.Username == "" {
		return false, nil
	}
	s.init()
	key := identityKey(user)
	s.mu.Lock()
	answers := s.answers
	s.mu.Unlock()
	if admin, ok := answers.Get(key); ok {
		return admin.(bool), nil
	}
	return s.ask(ctx, key, user)
}

// IsAdminNow asks RBAC afresh, for decisions that are final (an
// invalidation), and remembers the answer for everyone else.
func (s *Standing) IsAdminNow(ctx context.Context, user *v1alpha1.UserIdentity) (bool, error) {
	if user == nil || user.Username == "" {
		return false, nil
	}
	s.init()
	return s.ask(ctx, identityKey(user), user)
}

// Fresh is an AdminChecker that asks afresh (IsAdminNow).
func (s *Standing) Fresh() AdminChecker { return freshStanding{s} }

type freshStanding struct{ s *Standing }

func (f freshStanding) IsAdmin(ctx context.Context, user *v1alpha1.UserIdentity) (bool, error) {
	return f.s.IsAdminNow(ctx, user)
}

// ask sends one review for everyone asking about key in this RBAC epoch at
// once. The review outlives a caller that gives up: others may wait for it.
func (s *Standing) ask(ctx context.Context, key string, user *v1alpha1.UserIdentity) (bool, error) {
	s.mu.Lock()
	epoch := s.epoch
	s.mu.Unlock()
	ch := s.inflight.DoChan(fmt.Sprintf("%d/%s", epoch, key), func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		admin, err := s.Reviewer.IsAdmin(rctx, user)
		if err != nil {
			return false, err
		}
		s.remember(key, admin, epoch)
		return admin, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			s.mu.Lock()
			admin, ok := s.stale[key]
			s.mu.Unlock()
			if ok && epoch == s.currentEpoch() {
				return admin, nil
			}
			return false, res.Err
		}
		return res.Val.(bool), nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// remember keeps an answer asked in epoch, unless RBAC changed since: then
// it may be older than the change. Inside the settle window it is kept only
// until the window ends, so the question is asked again once RBAC settled.
func (s *Standing) remember(key string, admin bool, epoch uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch != s.epoch {
		return
	}
	ttl := s.TTL
	if left := s.unsettledLocked(); left > 0 && left < ttl {
		ttl = left
	}
	s.answers.Set(key, admin, ttl)
	s.stale[key] = admin
}

func (s *Standing) currentEpoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// Changed forgets every answer: cluster RBAC changed in a way that may
// alter anyone's standing.
func (s *Standing) Changed() { s.ChangedFor(RBACChange{All: true}) }

// ChangedFor forgets every answer after an RBAC change that may alter the
// standing change names, opens a settle window and tells the subscriber of
// Changes; a change that alters no one's standing does nothing. Answers are
// remembered by a digest of the whole identity, so all are forgotten: the
// scope is what Changes' subscriber re-checks.
func (s *Standing) ChangedFor(change RBACChange) {
	if change.Empty() {
		return
	}
	s.init()
	s.mu.Lock()
	s.epoch++
	s.answers = cache.NewExpiringWithClock(s.Clock)
	s.stale = map[string]bool{}
	s.changedAt = s.Clock.Now()
	s.pendingAll = s.pendingAll || change.All
	for _, k := range change.Keys {
		s.pending[k] = struct{}{}
	}
	s.mu.Unlock()
	select {
	case s.changes <- event.GenericEvent{Object: &rbacv1.ClusterRoleBinding{}}:
	default: // one pending notice stands for any number of changes
	}
}

// TakeChanges returns whose standing the changes since the last call may
// have altered (all, or the identities found under keys, in OwnerKeys'
// form) and starts afresh. Changes' subscriber calls it for each notice.
func (s *Standing) TakeChanges() (all bool, keys map[string]struct{}) {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	all, keys = s.pendingAll, s.pending
	s.pendingAll, s.pending = false, map[string]struct{}{}
	return all, keys
}

// Unsettled is how much of the settle window after the last RBAC change is
// left; zero when RBAC has settled.
func (s *Standing) Unsettled() time.Duration {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unsettledLocked()
}

func (s *Standing) unsettledLocked() time.Duration {
	if s.changedAt.IsZero() {
		return 0
	}
	left := s.changedAt.Add(s.Settle).Sub(s.Clock.Now())
	if left < 0 {
		return 0
	}
	return left
}

// Changes delivers a notice after each RBAC change, once Standing has
// forgotten what the change may have made wrong: the reconciler re-checks
// tokens from it. Several changes before the notice is taken make one.
func (s *Standing) Changes() <-chan event.GenericEvent {
	s.init()
	return s.changes
}

// SetupWithManager watches ClusterRoles and ClusterRoleBindings, the
// objects that can change a cluster-wide answer, on every replica:
// verification and admission run on all of them. Each change is weighed
// (RoleChange, BindingChange), so one that grants or withdraws no admin
// verb forgets nothing and re-checks no token, and one that does re-checks
// only the tokens of the subjects it binds.
func (s *Standing) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	s.init()
	reader := mgr.GetCache()
	view := RBACView{
		RoleRules: func(name string) ([]rbacv1.PolicyRule, bool, error) {
			role := &rbacv1.ClusterRole{}
			if err := reader.Get(ctx, client.ObjectKey{Name: name}, role); err != nil {
				if apierrors.IsNotFound(err) {
					return nil, false, nil
				}
				return nil, false, err
			}
			return role.Rules, true, nil
		},
		Bindings: func() ([]rbacv1.ClusterRoleBinding, error) {
			list := &rbacv1.ClusterRoleBindingList{}
			err := reader.List(ctx, list, client.UnsafeDisableDeepCopy)
			return list.Items, err
		},
	}
	// weigh decides one change from its old and new objects (nil when
	// there is none); an object it cannot read, such as the tombstone of a
	// deletion the watch missed, may have been anything.
	weigh := func(oldObj, newObj any) RBACChange {
		if old, cur, ok := objectPair[rbacv1.ClusterRole](oldObj, newObj); ok {
			return RoleChange(old, cur, view)
		}
		if old, cur, ok := objectPair[rbacv1.ClusterRoleBinding](oldObj, newObj); ok {
			return BindingChange(old, cur, view)
		}
		return RBACChange{All: true}
	}
	handler := toolscache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if !initial {
				s.ChangedFor(weigh(nil, obj))
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(client.Object)
			n, ok2 := newObj.(client.Object)
			if ok1 && ok2 && o.GetResourceVersion() == n.GetResourceVersion() {
				return // a resync, not a change
			}
			s.ChangedFor(weigh(oldObj, newObj))
		},
		DeleteFunc: func(obj any) { s.ChangedFor(weigh(obj, nil)) },
	}
	for _, obj := range []client.Object{&rbacv1.ClusterRoleBinding{}, &rbacv1.ClusterRole{}} {
		informer, err := mgr.GetCache().GetInformer(ctx, obj)
		if err != nil {
			return err
		}
		if _, err := informer.AddEventHandler(handler); err != nil {
			return err
		}
	}
	return nil
}

// objectPair is a change's old and new objects as *T, nil where there is
// none; ok is false unless each is a *T or absent, and one is there.
func objectPair[T any](oldObj, newObj any) (old, cur *T, ok bool) {
	old, okOld := oldObj.(*T)
	cur, okNew := newObj.(*T)
	return old, cur, (okOld || oldObj == nil) && (okNew || newObj == nil) && (okOld || okNew)
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
	// Counts before each list, so no groups and extra can be mistaken for
	// other groups and extra.
	write(fmt.Sprint(len(groups)))
	for _, g := range groups {
		write(g)
	}
	keys := make([]string, 0, len(user.Extra))
	for k := range user.Extra {
		if len(user.Extra[k]) > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	write(fmt.Sprint(len(keys)))
	for _, k := range keys {
		write(k)
		write(fmt.Sprint(len(user.Extra[k])))
		for _, v := range user.Extra[k] {
			write(v)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
