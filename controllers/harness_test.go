package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	realclock "k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/controllers"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// harness is an ApiTokenReconciler that a spec drives by hand, with a clock,
// a write count and an Event log of its own, so that no spec sees another's
// time or writes. Its tokens live in manualNamespace, which the running
// manager does not see: nothing else reconciles them, and each reconcile
// happens exactly when the spec says. It reads and writes the API server
// directly, as a replica whose cache had nothing yet would.
type harness struct {
	// clock is the reconciler's; the spec steps it instead of sleeping.
	clock *clocktesting.FakeClock
	// writes counts the API writes that reached the API server.
	writes *writeCounter
	// events holds every Event the reconciler emitted; they reach the API
	// server too.
	events     *eventLog
	reconciler *controllers.ApiTokenReconciler
}

// harnessOption changes how newHarness builds a harness.
type harnessOption func(*harnessConfig)

type harnessConfig struct {
	clock *clocktesting.FakeClock
	wrap  func(client.Client) client.Client
}

// withClock shares clock, so that the harness of a restarted process sees
// the time the one before it left.
func withClock(clock *clocktesting.FakeClock) harnessOption {
	return func(c *harnessConfig) { c.clock = clock }
}

// withClient puts wrap's client between the reconciler and the API server,
// to make writes fail; writes it lets through are counted.
func withClient(wrap func(client.Client) client.Client) harnessOption {
	return func(c *harnessConfig) { c.wrap = wrap }
}

// newHarness builds a reconciler as a freshly started process has it: its
// clock at suiteStart unless withClock says otherwise.
func newHarness(opts ...harnessOption) *harness {
	cfg := harnessConfig{wrap: func(c client.Client) client.Client { return c }}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.clock == nil {
		cfg.clock = clocktesting.NewFakeClock(suiteStart)
	}
	h := &harness{clock: cfg.clock, writes: newWriteCounter(), events: &eventLog{}}
	h.reconciler = &controllers.ApiTokenReconciler{
		Client:    cfg.wrap(countingClient{Client: k8sClient, writes: h.writes}),
		APIReader: k8sClient,
		Clock:     h.clock,
		Format:    token.Format{Base: token.DefaultBase},
		// Standing settles RBAC in real time, as kube-apiserver's authorizer
		// lags in real time.
		Standing: authz.NewStanding(&authz.SubjectAccessReviewer{Client: k8sClient}, realclock.RealClock{}),
		Recorder: recordingRecorder{EventRecorder: suite.recorder, log: h.events},
	}
	return h
}

// reconcile reconciles tok once.
func (h *harness) reconcile(tok *v1alpha1.ApiToken) (ctrl.Result, error) {
	return h.reconciler.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(tok)})
}

// converge reconciles tok until a reconcile succeeds and changes nothing,
// and returns it as it then is.
func (h *harness) converge(tok *v1alpha1.ApiToken) *v1alpha1.ApiToken {
	var got *v1alpha1.ApiToken
	EventuallyWithOffset(1, func(g Gomega) {
		before := getToken(g, tok)
		_, err := h.reconcile(tok)
		g.Expect(err).NotTo(HaveOccurred())
		got = getToken(g, tok)
		g.Expect(got.ResourceVersion).To(Equal(before.ResourceVersion), "not converged yet")
	}, 10*time.Second).Should(Succeed())
	return got
}

// expiresExactlyAt steps the clock to a second before at, where tok must
// still be Active with its wake-up a second away, then to at, where it must
// be Expired, expired at at; it returns tok as it then is.
func (h *harness) expiresExactlyAt(tok *v1alpha1.ApiToken, at time.Time) *v1alpha1.ApiToken {
	GinkgoHelper()
	h.clock.SetTime(at.Add(-time.Second))
	res, err := h.reconcile(tok)
	Expect(err).NotTo(HaveOccurred())
	Expect(res.RequeueAfter).To(Equal(time.Second), "the wake-up is at the expiry instant")
	Expect(getToken(Default, tok).Status.Phase).To(Equal(v1alpha1.PhaseActive))

	h.clock.SetTime(at)
	got := h.converge(tok)
	Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseExpired))
	Expect(got.Status.ExpiresAt.Time).To(BeTemporally("==", at))
	return got
}

// recordedReasons lists the reasons of the Events the harness emitted about
// tok, oldest first.
func (h *harness) recordedReasons(tok *v1alpha1.ApiToken) []string {
	return h.events.reasons(client.ObjectKeyFromObject(tok))
}

// failingClient fails the writes and reads fail picks, with the error it
// returns, before they reach the API server; the rest pass.
type failingClient struct {
	client.Client
	fail func(verb string, obj client.Object) error
}

func (c failingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.fail("get", obj); err != nil {
		return err
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c failingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := c.fail("create", obj); err != nil {
		return err
	}
	return c.Client.Create(ctx, obj, opts...)
}

func (c failingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := c.fail("patch", obj); err != nil {
		return err
	}
	return c.Client.Patch(ctx, obj, patch, opts...)
}
