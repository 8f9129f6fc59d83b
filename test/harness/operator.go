package harness

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokenwarden/tokenwarden/internal/controlplane"
)

// Build compiles the operator binary from the repository at root into dir.
func Build(root, dir string) (string, error) {
	binary := filepath.Join(dir, "tokenwarden")
	cmd := exec.Command("go", "build", "-o", binary, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the operator: %w\n%s", err, out)
	}
	return binary, nil
}

// OperatorOptions configure one operator process.
type OperatorOptions struct {
	// Name tells replicas apart in file names.
	Name string
	// LeaderElect runs with leader election, in namespace "default".
	LeaderElect bool
	// Webhooks serves admission; only one process may, on the cluster's
	// webhook port.
	Webhooks bool
	// Args are added to the command line.
	Args []string
}

// Operator is one running operator process.
type Operator struct {
	Name string
	// LogPath receives the process's output; every start appends.
	LogPath string
	// MetricsURL, ProbeURL and VerifyURL are where it serves.
	MetricsURL, ProbeURL, VerifyURL string

	cmd    *exec.Cmd
	done   chan struct{}
	client *http.Client
}

// StartOperator starts binary against c.
func (c *Cluster) StartOperator(binary string, o OperatorOptions) (*Operator, error) {
	ports, err := controlplane.FreePorts(3)
	if err != nil {
		return nil, err
	}
	op := &Operator{
		Name:       o.Name,
		LogPath:    filepath.Join(c.dir, "operator-"+o.Name+".log"),
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0]),
		ProbeURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		VerifyURL:  fmt.Sprintf("https://127.0.0.1:%d", ports[2]),
	}
	args := []string{
		"--kubeconfig", c.Kubeconfig,
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		// Plain HTTP on loopback: Metric reads the series without a token
		// many times a second; the install's HTTPS endpoint has its own
		// test in internal/metrics.
		"--metrics-secure=false",
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--verify-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[2]),
		"--verify-cert-dir", c.CertDir,
		// The harness speaks for many clients through loopback, naming
		// them with X-Forwarded-For (see the flood).
		"--verify-trusted-proxies", "127.0.0.1/32",
		"--leader-elect=" + strconv.FormatBool(o.LeaderElect),
		"--leader-election-namespace", "default",
		"--enable-webhooks=" + strconv.FormatBool(o.Webhooks && c.Webhooks),
		"--webhook-port", strconv.Itoa(c.WebhookPort),
		"--webhook-cert-dir", c.CertDir,
	}
	args = append(args, o.Args...)
	log, err := os.OpenFile(op.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	op.cmd = exec.Command(binary, args...)
	op.cmd.Stdout, op.cmd.Stderr = log, log
	if err := op.cmd.Start(); err != nil {
		_ = log.Close()
		return nil, err
	}
	op.done = make(chan struct{})
	go func() {
		_ = op.cmd.Wait()
		_ = log.Close()
		close(op.done)
	}()
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, err
	}
	pool.AppendCertsFromPEM(ca)
	op.client = &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 64,
		},
	}
	return op, nil
}

// PID is the process id.
func (op *Operator) PID() int { return op.cmd.Process.Pid }

// Kill stops the process with SIGKILL: no deferred function, no lease
// release, no flush.
func (op *Operator) Kill() {
	_ = op.cmd.Process.Signal(syscall.SIGKILL)
	<-op.done
}

// Stop stops the process with SIGTERM, as Kubernetes does, and waits.
func (op *Operator) Stop() {
	_ = op.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-op.done:
	case <-time.After(30 * time.Second):
		op.Kill()
	}
}

// Exited reports whether the process has ended.
func (op *Operator) Exited() bool {
	select {
	case <-op.done:
		return true
	default:
		return false
	}
}

// WaitReady waits until /readyz answers 200 and says how long that took.
func (op *Operator) WaitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	plain := &http.Client{Timeout: time.Second}
	for {
		if op.Exited() {
			return 0, fmt.Errorf("operator %s exited; see %s", op.Name, op.LogPath)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, op.ProbeURL+"/readyz", nil)
		if resp, err := plain.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("operator %s not ready after %v; see %s", op.Name, timeout, op.LogPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Verify asks GET /verify about value, as the client at address forwardedFor
// behind the trusted loopback proxy, and returns the status code and the
// refusal reason header.
func (op *Operator) Verify(ctx context.Context, value, forwardedFor string) (int, string, error) {
	code, header, err := op.VerifyHeaders(ctx, value, forwardedFor)
	return code, header.Get("X-Tokenwarden-Reason"), err
}

// VerifyHeaders is Verify returning every response header.
func (op *Operator) VerifyHeaders(ctx context.Context, value, forwardedFor string) (int, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, op.VerifyURL+"/verify", nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+value)
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	resp, err := op.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, nil
}

// AwaitAnswer asks /verify about value every millisecond, as the client at
// forwardedFor, until it is answered code, and returns how long after since
// that was and the refusal reason it came with. It gives up after timeout.
func (op *Operator) AwaitAnswer(ctx context.Context, value, forwardedFor string, code int, since time.Time, timeout time.Duration) (time.Duration, string, error) {
	deadline := time.Now().Add(timeout)
	for {
		got, reason, err := op.Verify(ctx, value, forwardedFor)
		if err == nil && got == code {
			return time.Since(since), reason, nil
		}
		if op.Exited() {
			return time.Since(since), "", fmt.Errorf("operator %s exited while /verify was awaited; see %s", op.Name, op.LogPath)
		}
		if time.Now().After(deadline) {
			if err != nil {
				return time.Since(since), "", fmt.Errorf("/verify of %s never answered %d in %v: %w (log: %s)", op.Name, code, timeout, err, op.LogPath)
			}
			return time.Since(since), "", fmt.Errorf("/verify of %s never answered %d in %v (last %d %s)", op.Name, code, timeout, got, reason)
		}
		select {
		case <-ctx.Done():
			return time.Since(since), "", ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// IsLeader reads controller-runtime's leader gauge from the metrics.
func (op *Operator) IsLeader(ctx context.Context) (bool, error) {
	v, err := op.Metric(ctx, "leader_election_master_status")
	return v == 1, err
}

// Metric returns the sum of a metric's samples from the metrics endpoint.
func (op *Operator) Metric(ctx context.Context, name string) (float64, error) {
	values, err := op.Metrics(ctx, name)
	if err != nil {
		return 0, err
	}
	v, ok := values[name]
	if !ok {
		return 0, errors.New("no metric " + name)
	}
	return v, nil
}

// Metrics reads the metrics endpoint once and returns the sum of each
// named metric's samples; a metric the endpoint does not serve is absent.
func (op *Operator) Metrics(ctx context.Context, names ...string) (map[string]float64, error) {
	samples, err := op.Samples(ctx, names...)
	if err != nil {
		return nil, err
	}
	values := map[string]float64{}
	for series, v := range samples {
		name, _, _ := strings.Cut(series, "{")
		values[name] += v
	}
	return values, nil
}

// Samples reads the metrics endpoint once and returns every sample of the
// named metrics, by series as the endpoint writes it (name{labels}).
func (op *Operator) Samples(ctx context.Context, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, op.MetricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	samples := map[string]float64{}
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		cut := strings.LastIndexByte(line, ' ')
		if cut < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		series := line[:cut]
		name, _, _ := strings.Cut(series, "{")
		if !want[name] {
			continue
		}
		v, err := strconv.ParseFloat(line[cut+1:], 64)
		if err != nil {
			return nil, err
		}
		samples[series] += v
	}
	return samples, scanner.Err()
}

// TeamsUpdated is when the operator's verification last took a Team change
// in (tokenwarden_verification_teams_updated_timestamp_seconds): from then
// on it judges every token by the changed Team. Zero until its Team
// informer has synced.
func (op *Operator) TeamsUpdated(ctx context.Context) (time.Time, error) {
	seconds, err := op.Metric(ctx, "tokenwarden_verification_teams_updated_timestamp_seconds")
	if err != nil || seconds == 0 {
		return time.Time{}, err
	}
	return time.Unix(0, int64(seconds*1e9)), nil
}

// GoMemory is the Go runtime's own account of the process's memory, from
// the go_* series controller-runtime registers on the metrics endpoint.
type GoMemory struct {
	// HeapLive is the heap the last garbage collection found reachable
	// (go_gc_heap_live_bytes); 0 when the endpoint does not serve it.
	HeapLive int64
	// HeapAlloc is the heap in allocated objects: the live ones and those
	// not yet swept (go_memstats_heap_alloc_bytes).
	HeapAlloc int64
	// HeapInuse is the heap in spans holding at least one object
	// (go_memstats_heap_inuse_bytes).
	HeapInuse int64
	// HeapIdleUnreleased is the heap in empty spans not yet returned to
	// the OS (go_memstats_heap_idle_bytes - go_memstats_heap_released_bytes):
	// resident until the scavenger returns it.
	HeapIdleUnreleased int64
	// StackInuse is the goroutine stacks (go_memstats_stack_inuse_bytes).
	StackInuse int64
	// Sys is all the memory the runtime obtained from the OS
	// (go_memstats_sys_bytes), resident or not.
	Sys int64
}

// GoMemory reads the runtime's memory figures in one scrape.
func (op *Operator) GoMemory(ctx context.Context) (GoMemory, error) {
	names := []string{"go_gc_heap_live_bytes", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes",
		"go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes"}
	v, err := op.Metrics(ctx, names...)
	if err != nil {
		return GoMemory{}, err
	}
	for _, n := range names[1:] {
		if _, ok := v[n]; !ok {
			return GoMemory{}, fmt.Errorf("the metrics endpoint of %s serves no %s", op.Name, n)
		}
	}
	return GoMemory{
		HeapLive:           int64(v["go_gc_heap_live_bytes"]),
		HeapAlloc:          int64(v["go_memstats_heap_alloc_bytes"]),
		HeapInuse:          int64(v["go_memstats_heap_inuse_bytes"]),
		HeapIdleUnreleased: int64(v["go_memstats_heap_idle_bytes"] - v["go_memstats_heap_released_bytes"]),
		StackInuse:         int64(v["go_memstats_stack_inuse_bytes"]),
		Sys:                int64(v["go_memstats_sys_bytes"]),
	}, nil
}

// RSSBytes is the process's resident set size.
func (op *Operator) RSSBytes() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", op.PID()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// RSSParts is the resident set by kind, from /proc/<pid>/status.
type RSSParts struct {
	// Anon is anonymous memory: the Go heap, stacks and the runtime's own
	// (RssAnon).
	Anon int64
	// File is pages mapped from files, the binary's code and data above
	// all (RssFile).
	File int64
	// Shmem is shared memory (RssShmem).
	Shmem int64
}

// RSSParts reads the resident set by kind.
func (op *Operator) RSSParts() (RSSParts, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", op.PID()))
	if err != nil {
		return RSSParts{}, err
	}
	var p RSSParts
	fields := map[string]*int64{"RssAnon:": &p.Anon, "RssFile:": &p.File, "RssShmem:": &p.Shmem}
	found := 0
	for _, line := range strings.Split(string(data), "\n") {
		key, rest, ok := strings.Cut(line, "\t")
		if !ok {
			key, rest, _ = strings.Cut(line, " ")
		}
		dst, ok := fields[key]
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return RSSParts{}, err
		}
		*dst = kb * 1024
		found++
	}
	if found != len(fields) {
		return RSSParts{}, errors.New("no RssAnon, RssFile or RssShmem")
	}
	return p, nil
}
