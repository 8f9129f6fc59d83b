package controllers_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	realclock "k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/tokenwarden/tokenwarden/controllers"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/cached"
	"github.com/tokenwarden/tokenwarden/internal/cacheindex"
	"github.com/tokenwarden/tokenwarden/internal/controlplane"
	"github.com/tokenwarden/tokenwarden/internal/eventsink"
	"github.com/tokenwarden/tokenwarden/internal/logging"
	"github.com/tokenwarden/tokenwarden/internal/metrics"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// managedNamespace is where the running controllers act. The crash specs
// drive a reconciler by hand in manualNamespace, which the manager's cache
// does not see, so nothing else reconciles their objects.
const (
	managedNamespace = "default"
	manualNamespace  = "manual"
)

// suiteStart is the instant the running controllers' clock shows, for
// good, and the one every harness's clock starts at.
var suiteStart = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

var (
	testEnv   *envtest.Environment
	k8sClient client.Client
	scheme    *runtime.Scheme
	ctx       context.Context
	cancel    context.CancelFunc

	// logs holds everything the controllers logged, for the leak check.
	logs syncBuffer
)

// suite is what BeforeSuite builds around the running manager, for the
// specs whose tokens it reconciles (in managedNamespace). Specs read it and
// never change it: nothing in it is stepped or reset, and what it counts
// is counted per token. A spec that needs time to move, or writes to fail,
// builds a harness of its own instead (harness_test.go).
var suite struct {
	// clock is the running ApiToken reconciler's clock. It stays at
	// suiteStart, so what a spec reads from it is what the reconciler read.
	clock realclock.PassiveClock
	// writes counts the running ApiToken reconciler's API writes.
	writes *writeCounter
	// events holds every Event the running ApiToken reconciler emitted.
	events *eventLog
	// recorder sends Events to the API server; harnesses send theirs
	// through it too.
	recorder events.EventRecorder
	// cacheReader reads the manager's cache: what every replica holds in
	// memory.
	cacheReader client.Reader
}

// eventLog keeps the Events a reconciler emitted, in order, so specs can
// count them exactly: the API server only sees them later, and repeats of
// one Event folded into a series.
type eventLog struct {
	mu     sync.Mutex
	events []recordedEvent
}

// recordedEvent is one Event the reconciler emitted.
type recordedEvent struct {
	key             client.ObjectKey
	eventType, note string
	reason          string
}

// reasons lists the reasons of the Events about the object key, oldest
// first.
func (l *eventLog) reasons(key client.ObjectKey) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	reasons := []string{}
	for _, e := range l.events {
		if e.key == key {
			reasons = append(reasons, e.reason)
		}
	}
	return reasons
}

// recordingRecorder logs every Event in log before passing it on.
type recordingRecorder struct {
	events.EventRecorder
	log *eventLog
}

func (r recordingRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if obj, ok := regarding.(client.Object); ok {
		r.log.mu.Lock()
		r.log.events = append(r.log.events, recordedEvent{
			key: client.ObjectKeyFromObject(obj), eventType: eventtype, reason: reason, note: fmt.Sprintf(note, args...),
		})
		r.log.mu.Unlock()
	}
	r.EventRecorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers suite")
}

// writeCounter counts API writes by the token they are about: its own
// status, or the Secret it controls. Counting per token lets a spec count
// its own token's writes while other specs' tokens are reconciled.
type writeCounter struct {
	mu     sync.Mutex
	counts map[client.ObjectKey]int
}

func newWriteCounter() *writeCounter {
	return &writeCounter{counts: map[client.ObjectKey]int{}}
}

// add counts a write of obj.
func (w *writeCounter) add(obj client.Object) {
	key := client.ObjectKeyFromObject(obj)
	if owner := metav1.GetControllerOf(obj); owner != nil && owner.Kind == "ApiToken" {
		key.Name = owner.Name
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counts[key]++
}

// of is how many writes were made about tok so far.
func (w *writeCounter) of(tok client.Object) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts[client.ObjectKeyFromObject(tok)]
}

// countingClient counts in writes every write that reaches the API server.
type countingClient struct {
	client.Client
	writes *writeCounter
}

func (c countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.writes.add(obj)
	return c.Client.Create(ctx, obj, opts...)
}

func (c countingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.writes.add(obj)
	return c.Client.Update(ctx, obj, opts...)
}

func (c countingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.writes.add(obj)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c countingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.writes.add(obj)
	return c.Client.Delete(ctx, obj, opts...)
}

func (c countingClient) Status() client.SubResourceWriter {
	return countingStatus{c.Client.Status(), c.writes}
}

type countingStatus struct {
	client.SubResourceWriter
	writes *writeCounter
}

func (s countingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.writes.add(obj)
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

func (s countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.writes.add(obj)
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

var _ = BeforeSuite(func() {
	// The most verbose logger there is, capped as the operator caps it, so
	// the leak check at the end sees everything the operator could log.
	logf.SetLogger(logging.Capped(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, &logs)), zap.UseDevMode(true), zap.Level(zapcore.Level(-10)))))
	ctx, cancel = context.WithCancel(context.Background())

	var (
		cfg *rest.Config
		c   client.Client
		err error
	)
	testEnv, cfg, c, err = controlplane.Start(controlplane.Options{})
	Expect(err).NotTo(HaveOccurred())
	k8sClient, scheme = c, c.Scheme()
	Expect(k8sClient.Create(ctx, namespace(manualNamespace))).To(Succeed())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		// As in main.go, so the specs read Secrets as production does: as
		// digests.
		Cache: cached.Options(map[string]cache.Config{managedNamespace: {}}),
	})
	Expect(err).NotTo(HaveOccurred())
	suite.cacheReader = mgr.GetCache()
	Expect(cacheindex.Setup(ctx, mgr)).To(Succeed())
	// As in main.go: the gauges read the cache when gathered.
	metrics.Register(mgr.GetClient())
	// As in main.go, but with a shorter wait so specs need not.
	Expect((&controllers.TeamReconciler{Client: mgr.GetClient(), Coalesce: 100 * time.Millisecond}).SetupWithManager(mgr)).To(Succeed())
	// Standing settles RBAC in real time: kube-apiserver's authorizer lags
	// behind the watch in real time too, whatever the specs' fake clock says.
	standing := authz.NewStanding(&authz.SubjectAccessReviewer{Client: mgr.GetClient()}, realclock.RealClock{})
	Expect(standing.SetupWithManager(ctx, mgr)).To(Succeed())
	suite.clock = clocktesting.NewFakeClock(suiteStart)
	suite.writes = newWriteCounter()
	suite.events = &eventLog{}
	// The operator's own recorder, as main.go wires it.
	recorder, err := eventsink.ForManager(mgr, "tokenwarden")
	Expect(err).NotTo(HaveOccurred())
	Expect(mgr.Add(recorder)).To(Succeed())
	suite.recorder = recorder
	Expect((&controllers.ApiTokenReconciler{
		Client:    countingClient{Client: mgr.GetClient(), writes: suite.writes},
		APIReader: mgr.GetAPIReader(),
		Clock:     suite.clock,
		Format:    token.Format{Base: token.DefaultBase},
		Standing:  standing,
		Recorder:  recordingRecorder{EventRecorder: suite.recorder, log: suite.events},
		// Concurrent, as in main.go, so the specs run the way production does.
		MaxConcurrentReconciles: 8,
	}).SetupWithManager(mgr)).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if testEnv == nil {
		return
	}
	expectNoValueLeaked()
	cancel()
	Expect(testEnv.Stop()).To(Succeed())
})
