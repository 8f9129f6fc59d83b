// Package metrics holds the operator's Prometheus metrics about tokens, on
// controller-runtime's registry (served at the manager's metrics endpoint
// next to the verification metrics of internal/verifyhttp).
package metrics

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

var (
	// Issuances counts values issued, by why (FirstIssue, Recreate, Renew,
	// SecretMissing, SecretTampered, ...).
	Issuances = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwarden_token_issuances_total",
		Help: "Token values issued, by reason.",
	}, []string{"reason"})

	// Recreations counts values issued on a spec.recreate change or a
	// renewal: replacements of a value that was in use.
	Recreations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tokenwarden_token_recreations_total",
		Help: "Token values replaced on spec.recreate or rotation.renewBefore.",
	})

	// Invalidations counts tokens invalidated, by reason (CreatorNotOwner,
	// CreatorNotAdmin, TeamDeleted, NamespaceNotAllowed).
	Invalidations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwarden_token_invalidations_total",
		Help: "Tokens invalidated because their creator's standing no longer held, by reason.",
	}, []string{"reason"})

	register sync.Once
)

// Register adds the token metrics to controller-runtime's registry, with a
// collector that reads tokens by phase and their expiry from lister (the
// cache) at scrape time, so the gauges are never out of step with the
// objects and cost nothing between scrapes.
func Register(lister client.Reader) {
	register.Do(func() {
		// Every reason has a series from the start, so the first
		// invalidation of a reason after a restart shows in increase().
		for _, reason := range []string{v1alpha1.ReasonCreatorNotOwner, v1alpha1.ReasonCreatorNotAdmin, v1alpha1.ReasonTeamDeleted, v1alpha1.ReasonNamespaceNotAllowed} {
			Invalidations.WithLabelValues(reason)
		}
		ctrlmetrics.Registry.MustRegister(Issuances, Recreations, Invalidations, &tokenCollector{lister: lister})
	})
}

var (
	tokensDesc = prometheus.NewDesc("tokenwarden_tokens",
		"ApiTokens by namespace, type and phase.", []string{"namespace", "type", "phase"}, nil)
	expiryDesc = prometheus.NewDesc("tokenwarden_token_expiry_timestamp_seconds",
		"When each ApiToken's current value expires (Unix seconds); absent when it never expires.",
		[]string{"namespace", "name", "type"}, nil)
)

// tokenCollector reports the gauges from the ApiTokens in the cache.
type tokenCollector struct {
	lister client.Reader
}

// Describe implements prometheus.Collector.
func (c *tokenCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tokensDesc
	ch <- expiryDesc
}

// Collect implements prometheus.Collector.
func (c *tokenCollector) Collect(ch chan<- prometheus.Metric) {
	tokens := &v1alpha1.ApiTokenList{}
	if err := c.lister.List(context.Background(), tokens, client.UnsafeDisableDeepCopy); err != nil {
		ch <- prometheus.NewInvalidMetric(tokensDesc, err)
		return
	}
	for _, s := range summarize(tokens.Items) {
		ch <- prometheus.MustNewConstMetric(tokensDesc, prometheus.GaugeValue, float64(s.Count), s.Namespace, s.Type, s.Phase)
	}
	for i := range tokens.Items {
		tok := &tokens.Items[i]
		if tok.Status.ExpiresAt == nil || (tok.Status.Phase != v1alpha1.PhaseActive && tok.Status.Phase != v1alpha1.PhaseDisabled) {
			continue
		}
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(tok.Status.ExpiresAt.Unix()),
			tok.Namespace, tok.Name, string(tok.Spec.Type))
	}
}

// phaseCount is the number of tokens of one namespace, type and phase.
type phaseCount struct {
	Namespace, Type, Phase string
	Count                  int
}

// summarize counts tokens by namespace, type and phase; a token without a
// phase yet counts as Pending.
func summarize(tokens []v1alpha1.ApiToken) []phaseCount {
	index := map[[3]string]int{}
	var out []phaseCount
	for i := range tokens {
		phase := tokens[i].Status.Phase
		if phase == "" {
			phase = v1alpha1.PhasePending
		}
		key := [3]string{tokens[i].Namespace, string(tokens[i].Spec.Type), string(phase)}
		if j, ok := index[key]; ok {
			out[j].Count++
			continue
		}
		index[key] = len(out)
		out = append(out, phaseCount{Namespace: key[0], Type: key[1], Phase: key[2], Count: 1})
	}
	return out
}
