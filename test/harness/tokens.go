package harness

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// Team returns a Team owned by Owner (and by the extra user names) that
// allows tokens in namespaces: the namespace rules hold for every token,
// whoever created it.
func Team(name string, namespaces []string, extraOwners ...string) *v1alpha1.Team {
	team := &v1alpha1.Team{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.TeamSpec{Namespaces: namespaces}}
	for _, user := range append([]string{Owner}, extraOwners...) {
		team.Spec.Owners = append(team.Spec.Owners, v1alpha1.Subject{Kind: v1alpha1.UserSubject, Name: user})
	}
	return team
}

// Token returns a Team token of team. Without webhooks it carries the
// creator annotation the mutating webhook would have stamped.
func (c *Cluster) Token(namespace, name, team string, change ...func(*v1alpha1.ApiToken)) (*v1alpha1.ApiToken, error) {
	tok := &v1alpha1.ApiToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       v1alpha1.ApiTokenSpec{Type: v1alpha1.TeamTokenType, Teams: []string{team}},
	}
	if !c.Webhooks {
		creator, err := authz.CreatorAnnotationValue(&v1alpha1.UserIdentity{Username: Owner})
		if err != nil {
			return nil, err
		}
		tok.Annotations = map[string]string{v1alpha1.CreatorAnnotation: creator}
	}
	for _, f := range change {
		f(tok)
	}
	return tok, nil
}

// Creator is the client that creates tokens as Owner: through admission
// when webhooks are on, else the admin with the creator stamped.
func (c *Cluster) Creator() client.Client {
	if c.Webhooks {
		return c.AsOwner
	}
	return c.Admin
}

// Parallel runs fn(i) for i in [0, n) on workers goroutines and returns the
// first error.
func Parallel(n, workers int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// CreateTokens creates n Team tokens named prefix-<i> and returns their
// names.
func (c *Cluster) CreateTokens(ctx context.Context, namespace, prefix, team string, n, workers int, change ...func(*v1alpha1.ApiToken)) ([]string, error) {
	names := make([]string, n)
	err := Parallel(n, workers, func(i int) error {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
		tok, err := c.Token(namespace, names[i], team, change...)
		if err != nil {
			return err
		}
		return c.Creator().Create(ctx, tok)
	})
	return names, err
}

// CreateSecrets creates n opaque Secrets named prefix-<i> of size bytes.
func (c *Cluster) CreateSecrets(ctx context.Context, namespace, prefix string, n, workers, size int) error {
	data := []byte(strings.Repeat("x", size))
	return Parallel(n, workers, func(i int) error {
		return c.Admin.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("%s-%d", prefix, i)},
			Data:       map[string][]byte{"data": data},
		})
	})
}

// Watch calls fn with every event of list's kind matching opts until ctx
// ends, starting again where it left off whenever the API server closes
// the watch. It starts with a list, whose items arrive as Added. When the
// API server no longer has the events since the last one seen (410 Gone),
// it lists again and counts a gap in WatchGaps: events in between were
// missed, which a check that relies on every event must treat as a failure.
func (c *Cluster) Watch(ctx context.Context, list client.ObjectList, fn func(watch.EventType, client.Object), opts ...client.ListOption) error {
	wc, err := client.NewWithWatch(c.Config, client.Options{Scheme: c.Admin.Scheme()})
	if err != nil {
		return err
	}
	relist := func() (string, error) {
		if err := wc.List(ctx, list, opts...); err != nil {
			return "", err
		}
		items, err := metaItems(list)
		if err != nil {
			return "", err
		}
		for _, obj := range items {
			fn(watch.Added, obj)
		}
		return list.GetResourceVersion(), nil
	}
	rv, err := relist()
	if err != nil {
		return err
	}
	go func() {
		for ctx.Err() == nil {
			w, err := wc.Watch(ctx, list, append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})...)
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					if apierrors.IsResourceExpired(apierrors.FromObject(ev.Object)) || apierrors.IsGone(apierrors.FromObject(ev.Object)) {
						c.WatchGaps.Add(1)
						if fresh, err := relist(); err == nil {
							rv = fresh
						}
					}
					time.Sleep(100 * time.Millisecond)
					break
				}
				obj, ok := ev.Object.(client.Object)
				if !ok {
					continue
				}
				rv = obj.GetResourceVersion()
				if ev.Type == watch.Bookmark {
					continue
				}
				fn(ev.Type, obj)
			}
			w.Stop()
		}
	}()
	return nil
}

func metaItems(list client.ObjectList) ([]client.Object, error) {
	var out []client.Object
	switch l := list.(type) {
	case *v1alpha1.ApiTokenList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *corev1.SecretList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	default:
		return nil, fmt.Errorf("no items of %T", list)
	}
	return out, nil
}

// ManagedSecrets selects the Secrets Tokenwarden manages.
var ManagedSecrets = client.MatchingLabels{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}

// Deliveries records every distinct value each managed Secret has held, as
// seen by a watch that outlives every operator process: a value replaced
// by another without a recreate is a token issued twice.
type Deliveries struct {
	mu     sync.Mutex
	values map[string][]string // namespace/name -> digests in order
}

// TrackDeliveries starts recording deliveries in namespace.
func (c *Cluster) TrackDeliveries(ctx context.Context, namespace string) (*Deliveries, error) {
	d := &Deliveries{values: map[string][]string{}}
	err := c.Watch(ctx, &corev1.SecretList{}, func(_ watch.EventType, obj client.Object) {
		secret, ok := obj.(*corev1.Secret)
		if !ok || len(secret.Data[v1alpha1.SecretTokenKey]) == 0 {
			return
		}
		digest := token.Hash(string(secret.Data[v1alpha1.SecretTokenKey]))
		key := secret.Namespace + "/" + secret.Name
		d.mu.Lock()
		defer d.mu.Unlock()
		seen := d.values[key]
		if len(seen) == 0 || seen[len(seen)-1] != digest {
			d.values[key] = append(seen, digest)
		}
	}, client.InNamespace(namespace), ManagedSecrets)
	return d, err
}

// Distinct is how many distinct values the Secret namespace/name has held.
func (d *Deliveries) Distinct(key string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[string]bool{}
	for _, v := range d.values[key] {
		seen[v] = true
	}
	return len(seen)
}

// Check is the state of every ApiToken of a namespace against the
// invariants that must hold once the operator has caught up.
type Check struct {
	Phases map[v1alpha1.ApiTokenPhase]int
	// PhaseOf is each token's phase, by name.
	PhaseOf map[string]v1alpha1.ApiTokenPhase
	// Unsettled tokens are still being worked on: no final phase yet, or
	// status behind spec.
	Unsettled []string
	// Lost tokens are Active without a Secret whose value hashes to
	// status.tokenHash, or not Active with a value still delivered.
	Lost []string
}

// Settled reports whether nothing is left to do. A Lost token is not
// settled either: status is written before the Secret, so a token is Active
// without its value for the moment between the two writes; only one that
// stays so is lost.
func (ch Check) Settled() bool { return len(ch.Unsettled) == 0 && len(ch.Lost) == 0 }

// CheckTokens checks every ApiToken in namespace.
func (c *Cluster) CheckTokens(ctx context.Context, namespace string) (Check, error) {
	ch := Check{Phases: map[v1alpha1.ApiTokenPhase]int{}, PhaseOf: map[string]v1alpha1.ApiTokenPhase{}}
	tokens := &v1alpha1.ApiTokenList{}
	if err := c.Admin.List(ctx, tokens, client.InNamespace(namespace)); err != nil {
		return ch, err
	}
	secrets := &corev1.SecretList{}
	if err := c.Admin.List(ctx, secrets, client.InNamespace(namespace), ManagedSecrets); err != nil {
		return ch, err
	}
	byName := map[string]*corev1.Secret{}
	for i := range secrets.Items {
		byName[secrets.Items[i].Name] = &secrets.Items[i]
	}
	for i := range tokens.Items {
		tok := &tokens.Items[i]
		st := &tok.Status
		ch.Phases[st.Phase]++
		ch.PhaseOf[tok.Name] = st.Phase
		switch {
		case st.ObservedGeneration != tok.Generation:
			ch.Unsettled = append(ch.Unsettled, tok.Name+": status behind spec")
			continue
		case st.Phase == v1alpha1.PhaseActive && st.Recreate != tok.Spec.Recreate:
			ch.Unsettled = append(ch.Unsettled, tok.Name+": recreate pending")
			continue
		case st.Phase == "" || st.Phase == v1alpha1.PhasePending:
			ch.Unsettled = append(ch.Unsettled, tok.Name+": pending")
			continue
		}
		secretName := tok.Name
		if tok.Spec.SecretName != "" {
			secretName = tok.Spec.SecretName
		}
		secret := byName[secretName]
		value := ""
		if secret != nil {
			value = string(secret.Data[v1alpha1.SecretTokenKey])
		}
		switch st.Phase {
		case v1alpha1.PhaseActive:
			if value == "" || !token.HashMatches(value, st.TokenHash) {
				ch.Lost = append(ch.Lost, tok.Name+": Active without a Secret holding its value")
			}
		case v1alpha1.PhaseInvalidated, v1alpha1.PhaseExpired:
			if value != "" {
				ch.Lost = append(ch.Lost, tok.Name+": "+string(st.Phase)+" with a value still delivered")
			}
		}
	}
	sort.Strings(ch.Unsettled)
	return ch, nil
}

// ErrNotSettled is WaitSettled's error when time ran out; the Check it
// returns says which tokens were not settled.
var ErrNotSettled = errors.New("tokens did not settle")

// WaitSettled polls CheckTokens until every token is settled and want,
// if given, names no token still to reach its expected phase.
func (c *Cluster) WaitSettled(ctx context.Context, namespace string, timeout time.Duration, want func(Check) []string) (Check, time.Duration, error) {
	start := time.Now()
	for {
		ch, err := c.CheckTokens(ctx, namespace)
		if err != nil && !apierrors.IsTimeout(err) {
			return ch, 0, err
		}
		if err == nil && want != nil {
			ch.Unsettled = append(ch.Unsettled, want(ch)...)
		}
		if err == nil && ch.Settled() {
			return ch, time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return ch, time.Since(start), fmt.Errorf("%w after %v: %d unsettled, %d lost", ErrNotSettled, timeout, len(ch.Unsettled), len(ch.Lost))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Values reads the delivered value of each named token's Secret.
func (c *Cluster) Values(ctx context.Context, namespace string, names []string) (map[string]string, error) {
	secrets := &corev1.SecretList{}
	if err := c.Admin.List(ctx, secrets, client.InNamespace(namespace), ManagedSecrets); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	values := map[string]string{}
	for i := range secrets.Items {
		if want[secrets.Items[i].Name] && len(secrets.Items[i].Data[v1alpha1.SecretTokenKey]) > 0 {
			values[secrets.Items[i].Name] = string(secrets.Items[i].Data[v1alpha1.SecretTokenKey])
		}
	}
	return values, nil
}

// WaitValues waits until every named token's Secret holds a value and
// returns them. A token is Active a moment before its Secret is written
// (status first), so a reader that saw it Active may have to wait.
func (c *Cluster) WaitValues(ctx context.Context, namespace string, names []string, timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		values, err := c.Values(ctx, namespace, names)
		if err != nil {
			return nil, err
		}
		if len(values) == len(names) {
			return values, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d values delivered after %v", len(values), len(names), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
