package eventsink

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// sink counts the Events created, failing the first failures calls with
// err; it keeps none of them.
type sink struct {
	mu       sync.Mutex
	created  int
	calls    int
	failures int
	err      error
}

func (s *sink) Create(_ context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls <= s.failures {
		return nil, s.err
	}
	s.created++
	return e, nil
}

func (s *sink) Update(context.Context, *eventsv1.Event) (*eventsv1.Event, error) {
	return nil, errors.New("not expected")
}

func (s *sink) Patch(context.Context, *eventsv1.Event, []byte) (*eventsv1.Event, error) {
	return nil, errors.New("not expected")
}

func (s *sink) counts() (created, calls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created, s.calls
}

func start(t *testing.T, s *sink) *Recorder {
	t.Helper()
	r := New(s, scheme.Scheme, "tokenwarden")
	r.retryAfter = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func pod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "u"}}
}

// TestRecordsEachEventOnce: the same Event twice is two Events, not a
// series: nothing is kept to count them by.
func TestRecordsEachEventOnce(t *testing.T) {
	g := NewWithT(t)
	s := &sink{}
	r := start(t, s)
	time.Sleep(50 * time.Millisecond) // the watcher is in place
	for range 2 {
		r.Eventf(pod("p"), nil, corev1.EventTypeNormal, "Issued", "Issued", "the value is in %s", "p-token")
	}
	g.Eventually(func() int { created, _ := s.counts(); return created }).Should(Equal(2))
}

func TestRetriesWhileTheServerCannotBeReachedOrIsBusy(t *testing.T) {
	for _, err := range []error{errors.New("connection refused"), apierrors.NewTooManyRequests("busy", 1)} {
		t.Run(err.Error(), func(t *testing.T) {
			g := NewWithT(t)
			s := &sink{failures: 3, err: err}
			r := start(t, s)
			time.Sleep(50 * time.Millisecond)
			r.Eventf(pod("p"), nil, corev1.EventTypeNormal, "Issued", "Issued", "note")
			g.Eventually(func() int { created, _ := s.counts(); return created }).Should(Equal(1))
			_, calls := s.counts()
			g.Expect(calls).To(Equal(4))
		})
	}
}

func TestGivesUpOnAnEventTheServerRefuses(t *testing.T) {
	g := NewWithT(t)
	s := &sink{failures: 1, err: apierrors.NewForbidden(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, "x", errors.New("namespace ns is being terminated"))}
	r := start(t, s)
	time.Sleep(50 * time.Millisecond)
	r.Eventf(pod("p"), nil, corev1.EventTypeNormal, "Issued", "Issued", "note")
	g.Eventually(func() int { _, calls := s.counts(); return calls }).Should(Equal(1))
	g.Consistently(func() int { _, calls := s.counts(); return calls }, 100*time.Millisecond).Should(Equal(1))
}

// TestKeepsNoEventOnceWritten: after 5,000 Events are written, the heap is
// back where it was. client-go's broadcaster keeps a copy of each for 6
// to 12 minutes, about 1 KB apiece.
func TestKeepsNoEventOnceWritten(t *testing.T) {
	g := NewWithT(t)
	const n = 5000
	s := &sink{}
	r := start(t, s)
	time.Sleep(50 * time.Millisecond)
	before := heapAlloc()
	for i := range n {
		r.Eventf(pod(fmt.Sprintf("p-%d", i)), nil, corev1.EventTypeNormal, "Issued", "Issued", "the value of token %d is in its Secret", i)
		if i%500 == 0 {
			// The broadcaster drops what its queue of 1,000 cannot hold.
			g.Eventually(func() int { created, _ := s.counts(); return created }).Should(BeNumerically(">=", i))
		}
	}
	g.Eventually(func() int { created, _ := s.counts(); return created }).Should(Equal(n))
	time.Sleep(100 * time.Millisecond) // the last writers return
	retained := heapAlloc() - before
	t.Logf("heap retained after %d Events: %d bytes", n, retained)
	g.Expect(retained).To(BeNumerically("<", n*200), "more than 200 bytes kept per Event written")
}

func heapAlloc() int64 {
	var m runtime.MemStats
	for range 2 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
