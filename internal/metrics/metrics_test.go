package metrics

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
)

func withPhase(phase v1alpha1.ApiTokenPhase, expires *time.Time) b.ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		t.Status.Phase = phase
		if expires != nil {
			at := metav1.NewTime(*expires)
			t.Status.ExpiresAt = &at
		}
	}
}

func TestCollector(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	expires := time.Unix(1893456000, 0)
	objs := []client.Object{
		b.ApiToken("a", "payments", b.TeamToken("payments"), withPhase(v1alpha1.PhaseActive, &expires)),
		b.ApiToken("b", "payments", b.TeamToken("payments"), withPhase(v1alpha1.PhaseActive, nil)),
		b.ApiToken("c", "payments", withPhase(v1alpha1.PhaseExpired, &expires)),
		b.ApiToken("d", "orders", b.WithType(v1alpha1.AdminTokenType)),
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	reg := prometheus.NewPedanticRegistry()
	g.Expect(reg.Register(&tokenCollector{lister: c})).To(Succeed())

	g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP tokenwarden_token_expiry_timestamp_seconds When each ApiToken's current value expires (Unix seconds); absent when it never expires.
# TYPE tokenwarden_token_expiry_timestamp_seconds gauge
tokenwarden_token_expiry_timestamp_seconds{name="a",namespace="payments",type="Team"} 1.893456e+09
# HELP tokenwarden_tokens ApiTokens by namespace, type and phase.
# TYPE tokenwarden_tokens gauge
tokenwarden_tokens{namespace="orders",phase="Pending",type="Admin"} 1
tokenwarden_tokens{namespace="payments",phase="Active",type="Team"} 2
tokenwarden_tokens{namespace="payments",phase="Expired",type="Wildcard"} 1
`))).To(Succeed())
}
