package authz

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// countingChecker answers admin and counts the questions.
type countingChecker struct {
	admin bool
	asked int
}

func (c *countingChecker) IsAdmin(context.Context, *v1alpha1.UserIdentity) (bool, error) {
	c.asked++
	return c.admin, nil
}

// newTestStanding is a Standing on a fake clock.
func newTestStanding(reviewer AdminChecker) (*Standing, *clocktesting.FakeClock) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	return NewStanding(reviewer, clk), clk
}

func TestStandingRemembers(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	inner := &countingChecker{admin: true}
	s, clk := newTestStanding(inner)

	for range 3 {
		g.Expect(s.IsAdmin(ctx, user("root", "ops"))).To(BeTrue())
	}
	g.Expect(inner.asked).To(Equal(1), "remembered")

	g.Expect(s.IsAdmin(ctx, user("root", "other-group"))).To(BeTrue())
	g.Expect(inner.asked).To(Equal(2), "another identity is another question")

	inner.admin = false
	s.Changed()
	g.Expect(s.IsAdmin(ctx, user("root", "ops"))).To(BeFalse(), "a demotion is seen after an RBAC change")
	g.Expect(s.Fresh().IsAdmin(ctx, user("root", "ops"))).To(BeFalse())
	g.Expect(inner.asked).To(Equal(4), "Fresh asks every time")

	g.Expect(s.IsAdmin(ctx, nil)).To(BeFalse())
	g.Expect(s.IsAdmin(ctx, &v1alpha1.UserIdentity{})).To(BeFalse())

	clk.Step(2 * s.TTL)
	asked := inner.asked
	g.Expect(s.IsAdmin(ctx, user("root", "ops"))).To(BeFalse())
	g.Expect(inner.asked).To(Equal(asked+1), "an answer older than the TTL is asked again")
}

// TestStandingSettles: right after an RBAC change kube-apiserver's
// authorizer may still answer from before it. An answer given inside the
// settle window is asked again once the window ends, and Unsettled tells
// callers when.
func TestStandingSettles(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	inner := &countingChecker{admin: true}
	s, clk := newTestStanding(inner)
	g.Expect(s.Unsettled()).To(BeZero(), "nothing changed yet")

	s.Changed() // a binding is deleted; the authorizer has not seen it yet
	g.Expect(s.Unsettled()).To(Equal(s.Settle))
	g.Expect(s.IsAdmin(ctx, user("root"))).To(BeTrue(), "the stale answer")
	select {
	case <-s.Changes():
	default:
		t.Fatal("an RBAC change must notify the subscriber")
	}

	inner.admin = false // the authorizer catches up
	clk.Step(s.Settle / 2)
	g.Expect(s.IsAdmin(ctx, user("root"))).To(BeTrue(), "remembered inside the window")
	g.Expect(s.Unsettled()).To(Equal(s.Settle / 2))
	clk.Step(s.Settle / 2)
	g.Expect(s.Unsettled()).To(BeZero())
	g.Expect(s.IsAdmin(ctx, user("root"))).To(BeFalse(), "asked again once RBAC settled")
}

// TestImpactAsksOncePerCreator: a Team edit touching a thousand tokens of
// one creator must not wait on a thousand reviews.
func TestImpactAsksOncePerCreator(t *testing.T) {
	g := NewWithT(t)
	team := &v1alpha1.Team{}
	team.Name = "payments"
	team.Spec.Namespaces = []string{"ns"}
	tokens := make([]v1alpha1.ApiToken, 100)
	for i := range tokens {
		tok := &tokens[i]
		tok.Namespace, tok.Name = "ns", "tok"
		tok.Spec = v1alpha1.ApiTokenSpec{Type: v1alpha1.TeamTokenType, Teams: []string{"payments"}}
		tok.Status.TokenHash = "sha256:x"
		creator := user("jane")
		if i%2 == 1 {
			creator = user("bob")
		}
		value, err := CreatorAnnotationValue(creator)
		g.Expect(err).NotTo(HaveOccurred())
		tok.Annotations = map[string]string{v1alpha1.CreatorAnnotation: value}
	}
	checker := &countingChecker{}
	got, err := Impact(context.Background(), checker, tokens, Teams{"payments": team})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(HaveLen(100))
	g.Expect(checker.asked).To(Equal(2), "one review per creator")
}

// slowChecker answers after release closes, counting questions, and fails
// when err is set.
type slowChecker struct {
	release chan struct{}
	asked   atomic.Int32
	err     error
}

func (c *slowChecker) IsAdmin(context.Context, *v1alpha1.UserIdentity) (bool, error) {
	c.asked.Add(1)
	<-c.release
	return true, c.err
}

func TestStandingAsksOnceForConcurrentRequests(t *testing.T) {
	g := NewWithT(t)
	inner := &slowChecker{release: make(chan struct{})}
	r, _ := newTestStanding(inner)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			admin, err := r.IsAdmin(context.Background(), user("root"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(admin).To(BeTrue())
		}()
	}
	g.Eventually(inner.asked.Load).Should(BeEquivalentTo(1))
	close(inner.release)
	wg.Wait()
	g.Expect(inner.asked.Load()).To(BeEquivalentTo(1), "one review for twenty requests")
}

func TestStandingWhenAskingFails(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	inner := &slowChecker{release: make(chan struct{})}
	close(inner.release)
	r, clk := newTestStanding(inner)
	g.Expect(r.IsAdmin(ctx, user("root"))).To(BeTrue())

	clk.Step(2 * r.TTL)
	inner.err = errors.New("the API server is unreachable")
	g.Expect(r.IsAdmin(ctx, user("root"))).To(BeTrue(), "an answer past its TTL outlasts an outage")

	r.Changed()
	_, err := r.IsAdmin(ctx, user("root"))
	g.Expect(err).To(MatchError(inner.err), "after an RBAC change nothing old is given")
}

// BenchmarkImpact: the Team webhook runs Impact on the request path of the
// Team change that revokes, for every token of the Team (10,000 in make
// bench-scale), so the change waits for it.
func BenchmarkImpact(b *testing.B) {
	team := &v1alpha1.Team{}
	team.Name = "payments"
	team.Spec.Owners = []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "jane"}}
	team.Spec.Namespaces = []string{"ns-0"} // the other namespaces are no longer allowed
	value, err := CreatorAnnotationValue(user("jane"))
	if err != nil {
		b.Fatal(err)
	}
	tokens := make([]v1alpha1.ApiToken, 10_000)
	for i := range tokens {
		tok := &tokens[i]
		tok.Namespace, tok.Name = fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("tok-%d", i)
		tok.Spec = v1alpha1.ApiTokenSpec{Type: v1alpha1.TeamTokenType, Teams: []string{"payments"}}
		tok.Status.TokenHash = "sha256:x"
		tok.Annotations = map[string]string{v1alpha1.CreatorAnnotation: value}
	}
	for b.Loop() {
		lost, err := Impact(context.Background(), &countingChecker{}, tokens, Teams{"payments": team})
		if err != nil || len(lost) != 9000 {
			b.Fatalf("%d lost, %v", len(lost), err)
		}
	}
}
