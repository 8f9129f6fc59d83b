package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// HandoverReport is what a leader handover showed.
type HandoverReport struct {
	// Took is from the signal to the other replica leading.
	Took time.Duration
	// Verifications and VerifyFailures count the requests sent to the
	// surviving replica meanwhile, and those not answered 200.
	Verifications, VerifyFailures int64
	// Check is the tokens' state once the new leader settled them.
	Check Check
}

// Pair is two replicas of the operator with leader election.
type Pair struct {
	c      *Cluster
	binary string
	Ops    [2]*Operator
}

// StartPair starts two replicas and waits until both are ready and one
// leads.
func StartPair(ctx context.Context, c *Cluster, binary string) (*Pair, error) {
	p := &Pair{c: c, binary: binary}
	for i := range p.Ops {
		if err := p.start(ctx, i); err != nil {
			p.Stop()
			return nil, err
		}
	}
	if _, err := p.Leader(ctx, 30*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Pair) start(ctx context.Context, i int) error {
	op, err := p.c.StartOperator(p.binary, OperatorOptions{Name: fmt.Sprintf("replica-%d", i), LeaderElect: true})
	if err != nil {
		return err
	}
	p.Ops[i] = op
	_, err = op.WaitReady(ctx, time.Minute)
	return err
}

// Stop stops both replicas.
func (p *Pair) Stop() {
	for _, op := range p.Ops {
		if op != nil && !op.Exited() {
			op.Stop()
		}
	}
}

// Leader waits until a replica leads and returns its index.
func (p *Pair) Leader(ctx context.Context, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for i, op := range p.Ops {
			if op.Exited() {
				continue
			}
			if leads, err := op.IsLeader(ctx); err == nil && leads {
				return i, nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return -1, errors.New("no replica leads")
}

// KillLeader kills the leading replica with SIGKILL and returns the other.
// A killed leader releases no lease, so no replica leads until the lease
// runs out (15 s by default): meanwhile the survivor is a standby and
// nothing reconciles, which shows what verification does on its own.
func (p *Pair) KillLeader(ctx context.Context) (*Operator, error) {
	leader, err := p.Leader(ctx, 10*time.Second)
	if err != nil {
		return nil, err
	}
	p.Ops[leader].Kill()
	return p.Ops[1-leader], nil
}

// Handover stops the leader (SIGTERM when graceful, else SIGKILL) while a
// good token is verified against the other replica in a loop, waits for the
// other replica to lead, has it issue a batch of tokens in namespace, and
// restarts the stopped replica as the new standby.
func (p *Pair) Handover(ctx context.Context, graceful bool, namespace, good string, batch int) (HandoverReport, error) {
	var report HandoverReport
	leader, err := p.Leader(ctx, 10*time.Second)
	if err != nil {
		return report, err
	}
	survivor := p.Ops[1-leader]

	var verifications, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			code, _, err := survivor.Verify(ctx, good, "")
			verifications.Add(1)
			if err != nil || code != http.StatusOK {
				failures.Add(1)
			}
			// 50 a second: within the per-token limit, which would
			// otherwise answer 429 by design.
			time.Sleep(20 * time.Millisecond)
		}
	}()

	start := time.Now()
	if graceful {
		p.Ops[leader].Stop()
	} else {
		p.Ops[leader].Kill()
	}
	for {
		leads, err := survivor.IsLeader(ctx)
		if err == nil && leads {
			break
		}
		if time.Since(start) > time.Minute {
			close(stop)
			wg.Wait()
			return report, errors.New("the surviving replica never took the lead")
		}
		time.Sleep(10 * time.Millisecond)
	}
	report.Took = time.Since(start)

	// The new leader must do the leader's work: issue tokens made now.
	prefix := fmt.Sprintf("handover-%d", time.Now().UnixNano())
	if _, err := p.c.CreateTokens(ctx, namespace, prefix, namespace, batch, 8); client.IgnoreAlreadyExists(err) != nil {
		close(stop)
		wg.Wait()
		return report, err
	}
	report.Check, _, err = p.c.WaitSettled(ctx, namespace, 30*time.Second, nil)
	close(stop)
	wg.Wait()
	report.Verifications, report.VerifyFailures = verifications.Load(), failures.Load()
	if err != nil {
		return report, err
	}
	return report, p.start(ctx, leader)
}
