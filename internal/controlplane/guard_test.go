package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// crashEnv makes the test binary, run again by TestCrashedSuiteLeavesNothingRunning,
// start a control plane and die without stopping it.
const crashEnv = "TOKENWARDEN_CONTROLPLANE_CRASH"

// TestCrashedSuiteLeavesNothingRunning runs a suite that starts a control
// plane and then dies, as a suite does when it panics or `go test -timeout`
// kills it, and checks that its etcd, kube-apiserver and
// kube-controller-manager are gone soon after.
func TestCrashedSuiteLeavesNothingRunning(t *testing.T) {
	if os.Getenv(crashEnv) == "1" {
		crashingSuite()
		return
	}
	g := NewWithT(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashedSuiteLeavesNothingRunning$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	g.Expect(errors.As(err, &exit)).To(BeTrue(), "the suite must die: %v\n%s", err, stderr.String())
	g.Expect(exit.ExitCode()).To(Equal(3), "%s", stderr.String())

	var children []string
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "children: "); ok {
			children = strings.Fields(rest)
		}
	}
	g.Expect(children).To(HaveLen(3), "etcd, kube-apiserver and kube-controller-manager were started: %s", out)
	g.Eventually(func() []string {
		var alive []string
		for _, child := range children {
			if running(child) {
				alive = append(alive, child)
			}
		}
		return alive
	}, 15*time.Second, 100*time.Millisecond).Should(BeEmpty(), "control plane processes outlived the suite that started them")
}

// crashingSuite starts a control plane with kube-controller-manager, as
// callers of New and StartGuarded do, prints its processes and exits
// without stopping it.
func crashingSuite() {
	env, err := New(Options{ControllerManager: true})
	if err == nil {
		_, err = StartGuarded(env)
	}
	if err == nil {
		err = StartControllerManager(env, nil)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	children, err := controlPlaneChildren(os.Getpid())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("children: " + strings.Join(children, " "))
	os.Exit(3)
}

// running reports whether the process "pid:starttime" still runs: it
// exists, with that start time, and is not a zombie waiting to be reaped.
func running(child string) bool {
	pid, start, _ := strings.Cut(child, ":")
	if _, err := strconv.Atoi(pid); err != nil {
		return false
	}
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	closing := bytes.LastIndexByte(data, ')')
	if closing < 0 {
		return false
	}
	fields := bytes.Fields(data[closing+1:])
	return len(fields) >= 20 && string(fields[0]) != "Z" && string(fields[19]) == start
}
