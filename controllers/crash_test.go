package controllers_test

import (
	"context"
	"errors"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// errCrash stands for the process dying: the write it is returned for, and
// everything the reconcile would have done after it, never happens.
var errCrash = errors.New("crashed")

// crashingClient lets the first allowed writes through and fails every
// later one, like a reconciler killed between two API writes.
type crashingClient struct {
	client.Client
	allowed *int
}

func (c crashingClient) write() error {
	if *c.allowed == 0 {
		return errCrash
	}
	*c.allowed--
	return nil
}

func (c crashingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := c.write(); err != nil {
		return err
	}
	return c.Client.Create(ctx, obj, opts...)
}

func (c crashingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := c.write(); err != nil {
		return err
	}
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c crashingClient) Status() client.SubResourceWriter {
	return crashingStatus{c.Client.Status(), c}
}

type crashingStatus struct {
	client.SubResourceWriter
	c crashingClient
}

func (s crashingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if err := s.c.write(); err != nil {
		return err
	}
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

// crashAfter reconciles tok once, letting only `writes` API writes happen,
// in a process of its own.
func crashAfter(writes int, tok *v1alpha1.ApiToken) {
	h := newHarness(withClient(func(c client.Client) client.Client { return crashingClient{Client: c, allowed: &writes} }))
	_, err := h.reconcile(tok)
	ExpectWithOffset(1, err).To(MatchError(ContainSubstring(errCrash.Error())), "the crash must have interrupted the reconcile")
}

// restart reconciles tok in a healthy new process until it converges.
func restart(tok *v1alpha1.ApiToken) {
	newHarness().converge(tok)
}

var _ = Describe("Crash safety", func() {
	var team *v1alpha1.Team
	BeforeEach(func() {
		team = ownedTeam("crash-owner")
	})

	newToken := func(opts ...b.ApiTokenOption) *v1alpha1.ApiToken {
		opts = append([]b.ApiTokenOption{b.TeamToken(team.Name), b.WithCreator("crash-owner")}, opts...)
		return create(b.ApiToken(unique("crash"), manualNamespace, opts...))
	}

	It("loses nothing delivered when issuance stops between the status and the Secret", func() {
		tok := newToken()
		crashAfter(1, tok) // the status records the digest; the Secret is never written
		recorded := getToken(Default, tok)
		Expect(recorded.Status.TokenHash).NotTo(BeEmpty())
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: manualNamespace, Name: tok.Name}, &corev1.Secret{})).NotTo(Succeed(),
			"no value was delivered, so none can be lost")

		restart(tok)
		got := getToken(Default, tok)
		Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseActive))
		deliveredValue(Default, got) // the Secret holds exactly the value the status describes
	})

	It("does not issue twice when it stops right after delivering", func() {
		tok := newToken()
		allowed := 2 // the status patch and the Secret create; any further write would crash
		_, err := newHarness(withClient(func(c client.Client) client.Client { return crashingClient{Client: c, allowed: &allowed} })).
			reconcile(tok)
		Expect(err).NotTo(HaveOccurred(), "issuance takes two writes")
		first := getToken(Default, tok)
		value := deliveredValue(Default, first)

		restart(tok)
		got := getToken(Default, tok)
		Expect(got.Status.TokenHash).To(Equal(first.Status.TokenHash))
		Expect(deliveredValue(Default, got)).To(Equal(value))
	})

	It("finishes an interrupted recreate and keeps the overlap of the delivered value", func() {
		tok := newToken(b.WithRotation("1h", ""))
		restart(tok)
		first := getToken(Default, tok)
		oldValue := deliveredValue(Default, first)

		update(tok, func(t *v1alpha1.ApiToken) { t.Spec.Recreate = 1 })
		crashAfter(1, tok) // the status names the new digest; the Secret still has the old value
		Expect(getToken(Default, tok).Status.Previous.TokenHash).To(Equal(first.Status.TokenHash))

		restart(tok)
		got := getToken(Default, tok)
		Expect(deliveredValue(Default, got)).NotTo(Equal(oldValue))
		Expect(got.Status.Previous).NotTo(BeNil(), "the delivered old value keeps verifying through the overlap")
		Expect(got.Status.Previous.TokenHash).To(Equal(token.Hash(oldValue)))
	})

	It("refuses first and withdraws after when invalidation stops halfway", func() {
		tok := newToken()
		restart(tok)
		deliveredValue(Default, getToken(Default, tok))

		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), team)).To(Succeed())
		team.Spec.Owners = []v1alpha1.Subject{b.User("someone-else")}
		Expect(k8sClient.Update(ctx, team)).To(Succeed())
		crashAfter(1, tok) // the status says Invalidated; the value is still in the Secret
		Expect(getToken(Default, tok).Status.Phase).To(Equal(v1alpha1.PhaseInvalidated), "the verifier refuses from the first write on")

		restart(tok)
		Expect(getSecret(Default, manualNamespace, tok.Name).Data).NotTo(HaveKey(v1alpha1.SecretTokenKey))
	})
})
