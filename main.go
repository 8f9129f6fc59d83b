// Command tokenwarden runs the Tokenwarden operator: the controllers
// (leader-elected), and on every replica the admission webhooks and the
// verification server. With --dev it first starts a local control plane and
// runs against that, so a machine without a cluster sees the whole product
// work.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/controllers"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/cached"
	"github.com/tokenwarden/tokenwarden/internal/cacheindex"
	"github.com/tokenwarden/tokenwarden/internal/devenv"
	"github.com/tokenwarden/tokenwarden/internal/eventsink"
	"github.com/tokenwarden/tokenwarden/internal/logging"
	"github.com/tokenwarden/tokenwarden/internal/metrics"
	"github.com/tokenwarden/tokenwarden/internal/ratelimit"
	"github.com/tokenwarden/tokenwarden/internal/token"
	"github.com/tokenwarden/tokenwarden/internal/verifysetup"
	"github.com/tokenwarden/tokenwarden/webhook/admit"
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
}

type options struct {
	metrics         metrics.Serving
	probeAddr       string
	leaderElect     bool
	leaderElectNS   string
	dev             bool
	devDir          string
	controlPlaneDir string
	tokenBase       string
	webhooks        bool
	webhookPort     int
	webhookCertDir  string
	verify          bool
	verifyAddr      string
	verifyCertDir   string
	verifyQuery     bool
	trustedProxies  string
	// reviewAudiences are the audiences TokenReview answers for.
	reviewAudiences []string
	flushInterval   time.Duration
	concurrency     int
	pprofAddr       string
	// lifecycleControllers may always delete ApiTokens and Teams.
	lifecycleControllers []string
	standingRecheck      time.Duration
}

func main() {
	var opts options
	flag.StringVar(&opts.metrics.BindAddress, "metrics-bind-address", ":8444", "Address the Prometheus metrics endpoint binds to; \"0\" disables it.")
	flag.BoolVar(&opts.metrics.Secure, "metrics-secure", true, "Serve metrics over HTTPS, only to requests whose bearer token the API server authenticates and authorizes for get on /metrics (ClusterRole tokenwarden-metrics-reader); false serves plain HTTP to anyone (the default with --dev).")
	flag.StringVar(&opts.metrics.CertPath, "metrics-cert-path", "", "Directory with the metrics server's certificate and key, reloaded when they change (default: none, a self-signed certificate made at start).")
	flag.StringVar(&opts.metrics.CertName, "metrics-cert-name", "tls.crt", "File name of the metrics server's certificate in --metrics-cert-path.")
	flag.StringVar(&opts.metrics.KeyName, "metrics-cert-key", "tls.key", "File name of the metrics server's key in --metrics-cert-path.")
	flag.StringVar(&opts.pprofAddr, "pprof-bind-address", "", "Address of Go's /debug/pprof endpoints, for profiling; empty (the default) serves none.")
	flag.StringVar(&opts.probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.BoolVar(&opts.leaderElect, "leader-elect", false, "Elect a leader among replicas so only one runs the controllers.")
	flag.StringVar(&opts.leaderElectNS, "leader-election-namespace", "", "Namespace of the leader election Lease (default: $POD_NAMESPACE, which the Deployment sets from the pod's own namespace; required outside a cluster).")
	flag.BoolVar(&opts.dev, "dev", false, "Local mode: start kube-apiserver, etcd and kube-controller-manager on this machine, install the CRDs, and run against them.")
	flag.StringVar(&opts.devDir, "dev-dir", filepath.Join("bin", "dev"), "Local mode: directory for etcd data, certificates, kubeconfigs and logs.")
	flag.StringVar(&opts.controlPlaneDir, "control-plane-dir", "", "Local mode: directory with kube-apiserver, kube-controller-manager, etcd and kubectl (default: $KUBEBUILDER_ASSETS, else bin/k8s/<version>).")
	flag.BoolVar(&opts.webhooks, "enable-webhooks", true, "Serve the admission webhooks (needed wherever the webhook configurations point at this operator).")
	flag.IntVar(&opts.webhookPort, "webhook-port", 9443, "Port the admission webhook server listens on.")
	flag.StringVar(&opts.webhookCertDir, "webhook-cert-dir", "", "Directory with tls.crt and tls.key for the webhook server (default: controller-runtime's, /tmp/k8s-webhook-server/serving-certs).")
	flag.BoolVar(&opts.verify, "enable-verification", true, "Serve TokenReview and /verify (on every replica).")
	flag.StringVar(&opts.verifyAddr, "verify-bind-address", ":8443", "Address the verification server (HTTPS) listens on.")
	flag.StringVar(&opts.verifyCertDir, "verify-cert-dir", "/tmp/k8s-verify-server/serving-certs", "Directory with tls.crt and tls.key for the verification server; reloaded when they change.")
	flag.BoolVar(&opts.verifyQuery, "verify-allow-query-token", false, "Accept the token as ?token= on /verify. Off by default: query strings end up in access logs.")
	flag.StringVar(&opts.trustedProxies, "verify-trusted-proxies", "", "Comma-separated CIDRs of reverse proxies, and of services using pkg/verifyclient's middleware, whose X-Real-IP / X-Forwarded-For name the client for rate limiting (default: none, the peer address counts).")
	flag.Func("token-review-audiences", "Comma-separated audiences TokenReview answers tokens valid for, as kube-apiserver's --api-audiences are for its ServiceAccount tokens: a review naming audiences is authenticated only if one of them is listed, a review naming none is answered with all of them (default: none, meaning the audience of the API server that asks, which kube-apiserver checks against its own --api-audiences).", func(v string) error {
		opts.reviewAudiences = splitList(v)
		return nil
	})
	flag.DurationVar(&opts.flushInterval, "last-used-flush-interval", time.Minute, "How often lastUsedAt is written: at most once per token per interval.")
	flag.IntVar(&opts.concurrency, "max-concurrent-reconciles", 16, "How many ApiTokens are reconciled at once; the work is mostly waiting for the API server.")
	flag.StringVar(&opts.tokenBase, "token-prefix", token.DefaultBase, "Base prefix of issued token values (lowercase letters and digits); a type letter and \"_\" follow it, e.g. \"twt_\".")
	flag.Func("lifecycle-controllers", "Comma-separated user names of the cluster's own lifecycle controllers, which may always delete ApiTokens and Teams, so namespace deletion and garbage collection finish (default: "+strings.Join(authz.DefaultLifecycleControllers, ",")+").", func(v string) error {
		// Set, even to nothing, it replaces the default: empty means none.
		opts.lifecycleControllers = append([]string{}, splitList(v)...)
		return nil
	})
	flag.DurationVar(&opts.standingRecheck, "admin-standing-recheck", controllers.DefaultRecheck, "How often a token whose entitlement rests on its creator's admin standing is re-checked without any RBAC event.")
	zapOpts := zap.Options{Development: false}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	// The Deployment passes its namespace through the downward API, so the
	// Lease lives beside the pods wherever the install puts them, and the
	// same arguments work for a process outside a pod given that variable.
	if opts.leaderElectNS == "" {
		opts.leaderElectNS = os.Getenv("POD_NAMESPACE")
	}
	// Capped: no verbosity ever reaches client-go's request-body dumps,
	// which would carry Secret data. klog (client-go's own logging) writes
	// through the same logger.
	logger := logging.Capped(zap.New(zap.UseFlagOptions(&zapOpts)))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)

	if err := run(ctrl.SetupSignalHandler(), opts); err != nil {
		setupLog.Error(err, "Tokenwarden stopped with an error")
		os.Exit(1)
	}
}

func run(ctx context.Context, opts options) error {
	cfg, local, err := clusterConfig(&opts)
	if err != nil {
		return err
	}
	if local != nil {
		// Stopping the control plane is the last thing on every way out, so
		// Ctrl-C leaves no process behind.
		defer func() {
			setupLog.Info("Stopping the local control plane")
			if err := local.Stop(); err != nil {
				setupLog.Error(err, "Stopping the local control plane failed")
			}
		}()
	}
	mgr, err := newManager(cfg, opts, local)
	if err != nil {
		return err
	}
	// The process's one clock: every expiry, TTL, rate limit and timer
	// reads it.
	clk := clock.RealClock{}
	if err := setup(ctx, mgr, opts, local != nil, clk); err != nil {
		return err
	}
	if local != nil {
		if err := mgr.Add(readyBanner(local, opts.metrics)); err != nil {
			return err
		}
	}
	setupLog.Info("Starting the operator")
	return mgr.Start(ctx)
}

// clusterConfig is the cluster to run against: the local control plane it
// starts with --dev (which also decides where verification and metrics are
// served), else the configured cluster.
func clusterConfig(opts *options) (*rest.Config, *devenv.Env, error) {
	if !opts.dev {
		cfg, err := ctrl.GetConfig()
		if err != nil {
			return nil, nil, fmt.Errorf("no cluster configured (use --dev for the local mode): %w", err)
		}
		return cfg, nil, nil
	}
	setupLog.Info("Starting the local control plane", "dir", opts.devDir)
	local, err := devenv.Start(devenv.Options{StateDir: opts.devDir, AssetsDir: opts.controlPlaneDir})
	if err != nil {
		return nil, nil, err
	}
	if local.Reaped > 0 {
		setupLog.Info("Stopped control plane processes left by an earlier run", "count", local.Reaped)
	}
	opts.verify = true
	opts.verifyAddr, opts.verifyCertDir = local.Verify.Address, local.Verify.CertDir
	if !flagSet("metrics-bind-address") {
		opts.metrics.BindAddress = local.MetricsAddress
	}
	// Plain HTTP on loopback, so curl reads the local metrics without a
	// token; --metrics-secure=true tries the secure endpoint instead.
	if !flagSet("metrics-secure") {
		opts.metrics.Secure = false
	}
	return local.Config, local, nil
}

// newManager creates the manager: its webhook, metrics and probe servers,
// leader election and cache.
func newManager(cfg *rest.Config, opts options, local *devenv.Env) (ctrl.Manager, error) {
	webhookOpts := webhook.Options{Port: opts.webhookPort, CertDir: opts.webhookCertDir}
	if local != nil {
		webhookOpts = webhook.Options{Host: local.Webhook.Host, Port: local.Webhook.Port, CertDir: local.Webhook.CertDir}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		WebhookServer:           webhook.NewServer(webhookOpts),
		Scheme:                  scheme,
		Metrics:                 metrics.ServerOptions(opts.metrics),
		HealthProbeBindAddress:  opts.probeAddr,
		PprofBindAddress:        opts.pprofAddr,
		LeaderElection:          opts.leaderElect,
		LeaderElectionID:        "tokenwarden.auth.tokenwarden.io",
		LeaderElectionNamespace: opts.leaderElectNS,
		// Releasing the lease on a clean shutdown lets a standby take over at
		// once instead of after the lease expires.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cached.Options(nil),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}

// setup registers the product with mgr: the cache indexes, the two
// reconcilers, the one owner of admin standing, the admission webhooks
// (always in the local mode) and verification, and the metrics.
func setup(ctx context.Context, mgr ctrl.Manager, opts options, local bool, clk clock.WithTicker) error {
	if err := cacheindex.Setup(ctx, mgr); err != nil {
		return fmt.Errorf("registering cache indexes: %w", err)
	}
	if err := (&controllers.TeamReconciler{Client: mgr.GetClient(), Coalesce: time.Second}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Team controller: %w", err)
	}
	// One owner of admin standing for the reconciler, the webhooks and the
	// verifier, watching cluster RBAC on every replica.
	standing := authz.NewStanding(&authz.SubjectAccessReviewer{Client: mgr.GetClient()}, clk)
	if err := standing.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("watching RBAC for admin standing: %w", err)
	}
	format := token.Format{Base: opts.tokenBase}
	recorder, err := eventsink.ForManager(mgr, "tokenwarden")
	if err != nil {
		return err
	}
	if err := mgr.Add(recorder); err != nil {
		return fmt.Errorf("setting up Event recording: %w", err)
	}
	if err := (&controllers.ApiTokenReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Clock:     clk,
		Format:    format,
		Standing:  standing,
		Recheck:   opts.standingRecheck,
		Recorder:  recorder,
		// Reconciles of different tokens share nothing but thread-safe
		// clients, the remembered admin answers and the metrics.
		MaxConcurrentReconciles: opts.concurrency,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the ApiToken controller: %w", err)
	}
	if opts.webhooks || local {
		// Admission asks afresh: its answer is final for the request, and
		// RBAC may have changed a moment before.
		if err := admit.SetupWithManager(mgr, admit.Options{
			Admins: standing.Fresh(), LifecycleControllers: opts.lifecycleControllers, Clock: clk,
		}); err != nil {
			return fmt.Errorf("setting up the admission webhooks: %w", err)
		}
	}
	if opts.verify {
		proxies, err := parsePrefixes(opts.trustedProxies)
		if err != nil {
			return fmt.Errorf("--verify-trusted-proxies: %w", err)
		}
		if _, err := verifysetup.Setup(ctx, mgr, verifysetup.Options{
			TrustedProxies:       proxies,
			TokenReviewAudiences: opts.reviewAudiences,
			BindAddress:          opts.verifyAddr,
			CertDir:              opts.verifyCertDir,
			AllowQueryToken:      opts.verifyQuery,
			FlushInterval:        opts.flushInterval,
			Format:               format,
			Admins:               standing,
			Limits:               ratelimit.DefaultLimits(),
			Clock:                clk,
		}); err != nil {
			return fmt.Errorf("setting up verification: %w", err)
		}
	}
	metrics.Register(mgr.GetClient())
	return nil
}

// readyBanner prints the one line a newcomer needs once the operator's
// caches are in sync (runnables start only after that).
func readyBanner(local *devenv.Env, served metrics.Serving) manager.RunnableFunc {
	return func(ctx context.Context) error {
		metricsURL := "http://" + served.BindAddress + "/metrics"
		if served.Secure {
			metricsURL = "https://" + served.BindAddress + "/metrics (HTTPS, a bearer token allowed get on /metrics)"
		}
		fmt.Printf("tokenwarden: verification at %s (CA %s), metrics at %s; both in %s\n",
			local.Verify.URL, relative(local.Verify.CAFile), metricsURL, relative(local.EndpointsFile))
		fmt.Printf("tokenwarden: ready: local control plane at %s; in another terminal: %s --kubeconfig %s apply -f config/samples/ (Ctrl-C here stops everything)\n",
			local.APIServerURL, relative(local.Kubectl), relative(local.AdminKubeconfig))
		<-ctx.Done()
		return nil
	}
}

// parsePrefixes parses a comma-separated list of CIDRs.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for _, field := range strings.Split(list, ",") {
		if field = strings.TrimSpace(field); field == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(field)
		if err != nil {
			return nil, err
		}
		prefixes = append(prefixes, prefix)
	}
	return prefixes, nil
}

// splitList splits a comma-separated list, dropping spaces around its
// fields and empty ones.
func splitList(list string) []string {
	var out []string
	for _, field := range strings.Split(list, ",") {
		if field = strings.TrimSpace(field); field != "" {
			out = append(out, field)
		}
	}
	return out
}

// flagSet reports whether the named flag was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// relative shortens path to one relative to the working directory, when
// that is shorter, so the printed command can be pasted as is.
func relative(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && len(rel) < len(path) {
		return rel
	}
	return path
}
