package authz

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

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

func TestRememberingAdminChecker(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	inner := &countingChecker{admin: true}
	r := &RememberingAdminChecker{Checker: inner}

	for range 3 {
		g.Expect(r.IsAdmin(ctx, user("root", "ops"))).To(BeTrue())
	}
	g.Expect(inner.asked).To(Equal(1), "remembered")

	g.Expect(r.IsAdmin(ctx, user("root", "other-group"))).To(BeTrue())
	g.Expect(inner.asked).To(Equal(2), "another identity is another question")

	inner.admin = false
	r.Forget()
	g.Expect(r.IsAdmin(ctx, user("root", "ops"))).To(BeFalse(), "a demotion is seen after Forget")
	g.Expect(Fresh(r)).To(BeIdenticalTo(inner))

	g.Expect(r.IsAdmin(ctx, nil)).To(BeFalse())
	g.Expect(r.IsAdmin(ctx, &v1alpha1.UserIdentity{})).To(BeFalse())

	ttl := &RememberingAdminChecker{Checker: inner, TTL: time.Nanosecond}
	g.Expect(ttl.IsAdmin(ctx, user("a"))).To(BeFalse())
	time.Sleep(time.Millisecond)
	asked := inner.asked
	g.Expect(ttl.IsAdmin(ctx, user("a"))).To(BeFalse())
	g.Expect(inner.asked).To(Equal(asked+1), "an answer older than the TTL is asked again")
}

// TestImpactAsksOncePerCreator: a Team edit touching a thousand tokens of
// one creator must not wait on a thousand reviews.
func TestImpactAsksOncePerCreator(t *testing.T) {
	g := NewWithT(t)
	team := &v1alpha1.Team{}
	team.Name = "payments"
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

func TestRememberingAdminCheckerAsksOnceForConcurrentRequests(t *testing.T) {
	g := NewWithT(t)
	inner := &slowChecker{release: make(chan struct{})}
	r := &RememberingAdminChecker{Checker: inner}
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

func TestRememberingAdminCheckerWhenAskingFails(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	inner := &slowChecker{release: make(chan struct{})}
	close(inner.release)
	r := &RememberingAdminChecker{Checker: inner, TTL: time.Millisecond}
	g.Expect(r.IsAdmin(ctx, user("root"))).To(BeTrue())

	time.Sleep(2 * time.Millisecond)
	inner.err = errors.New("the API server is unreachable")
	g.Expect(r.IsAdmin(ctx, user("root"))).To(BeTrue(), "an answer past its TTL outlasts an outage")

	r.Forget()
	_, err := r.IsAdmin(ctx, user("root"))
	g.Expect(err).To(MatchError(inner.err), "after an RBAC change nothing old is given")
}
