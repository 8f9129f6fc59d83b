// Package verifysetup wires verification into the operator's manager: it
// keeps internal/verify's index and Team table in step with the informers,
// serves internal/verifyhttp's endpoints over TLS on every replica (not
// only the leader) with controller-runtime's own server and certificate
// watcher, says when the replica is ready to answer, and flushes lastUsedAt
// to the ApiTokens' status in batches.
package verifysetup

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/ratelimit"
	"github.com/tokenwarden/tokenwarden/internal/token"
	"github.com/tokenwarden/tokenwarden/internal/verify"
	"github.com/tokenwarden/tokenwarden/internal/verifyhttp"
)

// Options configure verification.
type Options struct {
	// BindAddress is where the HTTPS server listens, e.g. ":8443"; empty
	// serves nothing (in-process use).
	BindAddress string
	// CertDir holds tls.crt and tls.key; they are reloaded when they change.
	CertDir string
	// AllowQueryToken accepts ?token= on /verify.
	AllowQueryToken bool
	// TrustedProxies are the peers (a reverse proxy, an ingress, a service
	// verifying through pkg/verifyclient) whose X-Real-IP or
	// X-Forwarded-For names the client that failed attempts are charged
	// to; from anyone else those headers are ignored.
	TrustedProxies []netip.Prefix
	// TokenReviewAudiences are the audiences TokenReview answers tokens
	// valid for; empty means the asking API server's own (see
	// verifyhttp.Server.Audiences).
	TokenReviewAudiences []string
	// FlushInterval bounds lastUsedAt writes: at most one per token per
	// interval.
	FlushInterval time.Duration
	// Format parses token values.
	Format token.Format
	// Admins answers admin standing for Wildcard and Admin tokens' teams:
	// the process's one authz.Standing, which watches RBAC itself.
	Admins authz.AdminChecker
	// Limits are the rate limits of /verify and TokenReview.
	Limits ratelimit.Limits
	// Clock is the process's one clock: expiry, rate limits and the
	// lastUsedAt flushes all read it.
	Clock clock.WithTicker
}

// Setup registers the index's informer handlers, the HTTPS server, its
// certificate watcher and the lastUsedAt flusher with mgr, all running on
// every replica, and returns the server for in-process use. The listener is
// opened here, so a taken port fails the start at once.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) (*verifyhttp.Server, error) {
	verifyhttp.RegisterMetrics()
	index := verify.NewIndex()
	indexSynced, err := keepIndex(ctx, mgr, index)
	if err != nil {
		return nil, err
	}
	teams := verify.NewTeamTable(opts.Clock)
	if err := registerTeamsUpdated(teams); err != nil {
		return nil, err
	}
	// The table answers once the informer has handed every Team that
	// existed at start to its handler; until then a Team token would look
	// as if its team had been deleted.
	teamsSynced, err := keepTeams(ctx, mgr, teams)
	if err != nil {
		return nil, err
	}
	teams.SyncedWhen(teamsSynced)
	lastUsed := verify.NewLastUsed()
	server := &verifyhttp.Server{
		Verifier: &verify.Verifier{
			Index:  index,
			Format: opts.Format,
			Clock:  opts.Clock,
			Admins: opts.Admins,
			Teams:  teams,
		},
		Limiter:         ratelimit.New(opts.Limits, opts.Clock),
		LastUsed:        lastUsed,
		AllowQueryToken: opts.AllowQueryToken,
		TrustedProxies:  opts.TrustedProxies,
		Audiences:       opts.TokenReviewAudiences,
	}
	if opts.BindAddress != "" {
		if err := serve(mgr, opts, server.Handler()); err != nil {
			return nil, err
		}
	}
	// Ready means this replica answers from complete knowledge: a Service
	// must not send verifications to a replica whose index is still
	// filling, which would refuse good tokens as Unknown.
	if err := mgr.AddReadyzCheck("verification", func(*http.Request) error {
		if !indexSynced() || !teams.Synced() {
			return errors.New("the verification index is still filling")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := mgr.Add(&flusher{client: mgr.GetClient(), lastUsed: lastUsed, interval: opts.FlushInterval, clock: opts.Clock}); err != nil {
		return nil, err
	}
	return server, nil
}

// teamsUpdatedName is the series of when verification last took a Team
// change in.
const teamsUpdatedName = "tokenwarden_verification_teams_updated_timestamp_seconds"

// registerTeamsUpdated serves teams.PublishedAt as teamsUpdatedName: when
// a Team change, such as an owner's removal, took effect for every
// verification on this replica. Compared with when the change was made,
// it says how long revocation took; a value far behind the Team's last
// change says this replica's Team informer is stuck. A Setup before this
// one (tests build more than one manager in a process) is replaced.
func registerTeamsUpdated(teams *verify.TeamTable) error {
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: teamsUpdatedName,
		Help: "When this replica's verification last took a Team change in (Unix seconds); 0 until it first judged by its Teams, at the first verification or readiness check after its Team informer synced.",
	}, func() float64 {
		at := teams.PublishedAt()
		if at.IsZero() {
			return 0
		}
		return float64(at.UnixNano()) / 1e9
	})
	metrics.Registry.Unregister(gauge)
	return metrics.Registry.Register(gauge)
}

// serve adds the HTTPS server of handler to mgr, serving on every replica
// (standbys verify as much as the leader does), with a certificate
// reloaded whenever its files change.
func serve(mgr ctrl.Manager, opts Options, handler http.Handler) error {
	watcher, err := certwatcher.New(filepath.Join(opts.CertDir, "tls.crt"), filepath.Join(opts.CertDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("loading the verification server's certificate: %w", err)
	}
	if err := mgr.Add(watcher); err != nil {
		return err
	}
	tlsConfig := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: watcher.GetCertificate,
		// As ServeTLS would offer: net/http serves HTTP/2 on a TLS
		// listener that negotiates it.
		NextProtos: []string{"h2", "http/1.1"},
	}
	listener, err := net.Listen("tcp", opts.BindAddress)
	if err != nil {
		return fmt.Errorf("verification server: %w", err)
	}
	shutdown := 5 * time.Second
	return mgr.Add(&manager.Server{
		Name: "verification",
		Server: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			TLSConfig:         tlsConfig,
		},
		Listener:        tls.NewListener(listener, tlsConfig),
		ShutdownTimeout: &shutdown,
	})
}

// keepIndex updates the index from every ApiToken event, on every replica:
// a disable, expiry, recreate or invalidation reaches the verifier as soon
// as the status change reaches the informer.
func keepIndex(ctx context.Context, mgr ctrl.Manager, index *verify.Index) (func() bool, error) {
	return follow(ctx, mgr, &v1alpha1.ApiToken{}, index.Upsert, func(tok *v1alpha1.ApiToken) {
		index.Delete(types.NamespacedName{Namespace: tok.Namespace, Name: tok.Name})
	})
}

// keepTeams updates the verifier's Team table from every Team event, on
// every replica: an owner removed from a Team refuses the tokens that
// relied on them as soon as the change reaches the informer, before the
// reconciler has invalidated them one by one.
func keepTeams(ctx context.Context, mgr ctrl.Manager, teams *verify.TeamTable) (func() bool, error) {
	return follow(ctx, mgr, &v1alpha1.Team{}, teams.Upsert, func(team *v1alpha1.Team) { teams.Delete(team.Name) })
}

// follow hands every added or updated object of kind's kind to upsert and
// every deleted one to remove, and returns whether the informer's initial
// objects have all been handed over.
func follow[T client.Object](ctx context.Context, mgr ctrl.Manager, kind T, upsert, remove func(T)) (func() bool, error) {
	informer, err := mgr.GetCache().GetInformer(ctx, kind)
	if err != nil {
		return nil, err
	}
	registration, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(T); ok {
				upsert(o)
			}
		},
		UpdateFunc: func(_, obj any) {
			if o, ok := obj.(T); ok {
				upsert(o)
			}
		},
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if o, ok := obj.(T); ok {
				remove(o)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return registration.HasSynced, nil
}

// flusher writes lastUsedAt: at most one status patch per token per
// interval, never one per request.
type flusher struct {
	client   client.Client
	lastUsed *verify.LastUsed
	interval time.Duration
	clock    clock.WithTicker
}

// NeedLeaderElection lets every replica flush what it verified.
func (*flusher) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable.
func (f *flusher) Start(ctx context.Context) error {
	ticker := f.clock.NewTicker(f.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
			f.flush(ctx)
		}
	}
}

func (f *flusher) flush(ctx context.Context) {
	log := ctrl.Log.WithName("verify")
	for key, at := range f.lastUsed.Drain() {
		tok := &v1alpha1.ApiToken{}
		if err := f.client.Get(ctx, key, tok); err != nil {
			continue // deleted since: nothing to record
		}
		if tok.Status.LastUsedAt != nil && !at.After(tok.Status.LastUsedAt.Add(f.interval-time.Second)) {
			continue // recorded recently enough; skip the write
		}
		base := tok.DeepCopy()
		used := metav1.NewTime(at)
		tok.Status.LastUsedAt = &used
		if err := f.client.Status().Patch(ctx, tok, client.MergeFrom(base)); err != nil {
			log.Info("Recording lastUsedAt failed; it is retried with the next use", "apitoken", key.String(), "error", err.Error())
		}
	}
}
