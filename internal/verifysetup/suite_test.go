package verifysetup_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/controlplane"
	"github.com/tokenwarden/tokenwarden/internal/ratelimit"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
	"github.com/tokenwarden/tokenwarden/internal/verifyhttp"
	"github.com/tokenwarden/tokenwarden/internal/verifysetup"
)

// These specs run the verification wiring against a real API server: the
// index follows ApiToken status changes through the informer, as it does
// in the operator, and they measure how soon a refusal takes effect.

var (
	testEnv   *envtest.Environment
	k8sClient client.Client
	server    *verifyhttp.Server
	ctx       context.Context
	cancel    context.CancelFunc
)

func TestVerifyServer(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Verification wiring suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	var (
		cfg *rest.Config
		c   client.Client
		err error
	)
	testEnv, cfg, c, err = controlplane.Start(controlplane.Options{})
	Expect(err).NotTo(HaveOccurred())
	k8sClient = c

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: k8sClient.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}})
	Expect(err).NotTo(HaveOccurred())
	standing := authz.NewStanding(&authz.SubjectAccessReviewer{Client: mgr.GetClient()}, clock.RealClock{})
	Expect(standing.SetupWithManager(ctx, mgr)).To(Succeed())
	server, err = verifysetup.Setup(ctx, mgr, verifysetup.Options{
		FlushInterval: time.Hour,
		Format:        token.Format{Base: token.DefaultBase},
		Admins:        standing,
		Limits:        ratelimit.DefaultLimits(),
		Clock:         clock.RealClock{},
	})
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
	// The tokens of these specs are payments tokens created by jane, who
	// must own payments for the verifier to accept them.
	Expect(k8sClient.Create(ctx, b.Team("payments", b.WithOwners(b.User("jane")), b.WithNamespaces("default")))).To(Succeed())
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})
