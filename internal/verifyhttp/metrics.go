package verifyhttp

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tokenwarden/tokenwarden/internal/verify"
)

// outcomeVerified is the outcome label of a verified request.
const outcomeVerified = "Verified"

var (
	resultsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwarden_verification_results_total",
		Help: "Verification requests by outcome: Verified, or the reason of the refusal.",
	}, []string{"outcome"})

	// The buckets start at 10µs, about the cost of an in-memory
	// verification, and grow fourfold to 2.6s, which covers a Wildcard
	// token waiting on a SubjectAccessReview.
	durationSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tokenwarden_verification_duration_seconds",
		Help:    "Time taken to decide a verification request, rate limits included, request decoding and response writing excluded.",
		Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10),
	})

	rateLimitedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwarden_verification_rate_limited_total",
		Help: "Verification requests refused by a rate limit, by limit: client (failed attempts per address) or token (requests per token).",
	}, []string{"limit"})
)

// Values of the limit label of tokenwarden_verification_rate_limited_total.
const (
	limitClient = "client"
	limitToken  = "token"
)

// outcomes are every value of the outcome label, created up front so
// dashboards and alerts see zeros rather than missing series.
var outcomes = []string{
	outcomeVerified, verify.ReasonMissing, verify.ReasonMalformed, verify.ReasonUnknown, verify.ReasonExpired,
	verify.ReasonDisabled, verify.ReasonInvalidated, verify.ReasonNotActive, verify.ReasonRateLimited, verify.ReasonUnavailable,
	ReasonAudienceMismatch,
}

// outcomeCounters are the children of resultsTotal per outcome, and
// clientLimited and tokenLimited those of rateLimitedTotal, looked up once:
// finding a child by its label values on every request costs more than the
// rest of counting it.
var (
	outcomeCounters = func() map[string]prometheus.Counter {
		m := make(map[string]prometheus.Counter, len(outcomes))
		for _, o := range outcomes {
			m[o] = resultsTotal.WithLabelValues(o)
		}
		return m
	}()
	clientLimited = rateLimitedTotal.WithLabelValues(limitClient)
	tokenLimited  = rateLimitedTotal.WithLabelValues(limitToken)
)

// countOutcome counts a request decided with reason, "" meaning verified.
func countOutcome(reason string) {
	if reason == "" {
		reason = outcomeVerified
	}
	if c, ok := outcomeCounters[reason]; ok {
		c.Inc()
		return
	}
	resultsTotal.WithLabelValues(reason).Inc()
}

var registerOnce sync.Once

// RegisterMetrics registers the verification metrics on controller-runtime's
// registry, which the manager serves. It may be called more than once.
func RegisterMetrics() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(resultsTotal, durationSeconds, rateLimitedTotal)
		for _, o := range outcomes {
			resultsTotal.WithLabelValues(o)
		}
		rateLimitedTotal.WithLabelValues(limitClient)
		rateLimitedTotal.WithLabelValues(limitToken)
	})
}
