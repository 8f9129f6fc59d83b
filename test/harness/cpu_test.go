package harness

import (
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name may hold spaces and parentheses; the fields count
	// from its last ")".
	line := []byte("4242 (kube (api) server) S 17 4242 9960 0 -1 4194304 100 0 0 0 250 130 7 9 20 0 1 0 4569368 3133440 400\n")
	name, ppid, cpu, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if name != "kube (api) server" || ppid != 17 || cpu != 3800*time.Millisecond {
		t.Fatalf("got %q, ppid %d, %v; want \"kube (api) server\", 17, 3.8s", name, ppid, cpu)
	}
	if _, _, _, err := parseStat([]byte("4242 (short) S 1 2")); err == nil {
		t.Fatal("a truncated line must not parse")
	}
}

func TestCPUTimesCountsThisProcess(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) { //nolint:revive // burn CPU on purpose
	}
	times, err := CPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if times["harness"] <= 0 {
		t.Fatalf("no CPU time for this process: %v", times)
	}
}
