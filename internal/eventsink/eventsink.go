// Package eventsink records the operator's Events (events.k8s.io/v1)
// without client-go's series cache. client-go's broadcaster keeps a copy
// of every Event it records for 6 to 12 minutes, to count repeats of it
// into a series; the operator records an Event per transition of a token,
// after the status write that makes it, never the same one on every retry,
// so there is nothing to count, and after issuing 100,000 tokens the
// copies held about 1 KB each for minutes (17% of the live heap of a
// 10,000-token run). Here the Events are built by client-go's own recorder
// and written as they come, each once, with retries while the API server
// cannot be reached.
package eventsink

import (
	"context"
	"errors"
	"fmt"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
)

// tries and retryAfter are how often and how far apart an Event is sent
// again while the API server cannot be reached: as client-go's
// broadcaster does, 12 times 10 seconds (jittered) apart.
const (
	tries      = 12
	retryAfter = 10 * time.Second
)

// Recorder is an events.EventRecorder whose Events are written while its
// Start runs. Add it to the manager, which runs it on every replica.
type Recorder struct {
	events.EventRecorder
	broadcaster events.EventBroadcaster
	sink        events.EventSink
	retryAfter  time.Duration
}

// New returns a Recorder reporting as controller that writes through sink.
func New(sink events.EventSink, scheme *runtime.Scheme, controller string) *Recorder {
	broadcaster := events.NewBroadcaster(sink)
	return &Recorder{
		EventRecorder: broadcaster.NewRecorder(scheme, controller),
		broadcaster:   broadcaster,
		sink:          sink,
		retryAfter:    retryAfter,
	}
}

// ForManager returns a Recorder writing through mgr's connection.
func ForManager(mgr ctrl.Manager, controller string) (*Recorder, error) {
	client, err := eventsv1client.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, fmt.Errorf("building the Events client: %w", err)
	}
	return New(&events.EventSinkImpl{Interface: client}, mgr.GetScheme(), controller), nil
}

// NeedLeaderElection says every replica writes its own Events: only the
// leader's reconcilers record any, and a replica that loses the lease
// still sends what it recorded.
func (r *Recorder) NeedLeaderElection() bool { return false }

// Start writes every Event recorded until ctx ends, each in a goroutine
// of its own so that one the API server is slow to take does not hold up
// the others.
func (r *Recorder) Start(ctx context.Context) error {
	stop, err := r.broadcaster.StartEventWatcher(func(obj runtime.Object) {
		if event, ok := obj.(*eventsv1.Event); ok {
			go r.write(ctx, event)
		}
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	stop()
	r.broadcaster.Shutdown()
	return nil
}

// write creates event, trying again while the failure is the connection's
// or a busy API server's rather than the Event's.
func (r *Recorder) write(ctx context.Context, event *eventsv1.Event) {
	for try := 1; ; try++ {
		_, err := r.sink.Create(ctx, event)
		if err == nil || apierrors.IsAlreadyExists(err) {
			return
		}
		if !transient(err) || try == tries {
			ctrl.LoggerFrom(ctx).WithName("events").Error(err, "Could not record an Event", "reason", event.Reason, "regarding", event.Regarding.Name, "namespace", event.Namespace)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait.Jitter(r.retryAfter, 0.25)):
		}
	}
}

// transient says whether sending the same Event again may succeed: the
// API server was not reached, or was too busy to answer. Any other answer
// (a namespace being deleted, an Event it finds invalid) would come again.
func transient(err error) bool {
	var status apierrors.APIStatus
	return !errors.As(err, &status) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err)
}
