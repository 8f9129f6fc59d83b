package controlplane

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// StartGuarded starts env and then a watchdog that kills the processes it
// started (etcd and kube-apiserver) should this process end without
// stopping them; StartControllerManager guards kube-controller-manager the
// same way. A suite that fails in BeforeSuite, panics, is killed by
// `go test -timeout` or interrupted never runs envtest's Stop, and its
// kube-apiserver, orphaned, then holds ports and memory for ever.
func StartGuarded(env *envtest.Environment) (*rest.Config, error) {
	cfg, err := env.Start()
	if err != nil {
		return cfg, err
	}
	if err := guardChildren(os.Getpid()); err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("guarding the control plane processes: %w", err)
	}
	return cfg, nil
}

// watchdog is the shell loop that outlives its parent: while the parent
// lives it waits, and exits as soon as none of the guarded processes is
// left; once the parent is gone it kills what is left with SIGKILL
// (kube-apiserver may take its time over SIGTERM, and nobody waits for it
// any more). Each process is named by pid and start time, so a pid the
// kernel reused is never killed.
const watchdog = `parent=$1; shift
same() { [ "$(cut -d' ' -f22 /proc/${1%:*}/stat 2>/dev/null)" = "${1#*:}" ]; }
while kill -0 "$parent" 2>/dev/null; do
  alive=0
  for p in "$@"; do same "$p" && alive=1; done
  [ "$alive" = 1 ] || exit 0
  sleep 1
done
for p in "$@"; do same "$p" && kill -9 "${p%:*}" 2>/dev/null; done
exit 0`

// guardChildren starts the watchdog over parent's etcd and kube-apiserver
// children.
func guardChildren(parent int) error {
	children, err := controlPlaneChildren(parent)
	if err != nil {
		return err
	}
	return guardProcesses(parent, children)
}

// guardProcesses starts the watchdog over processes ("pid:starttime"), in a
// session of its own so that a signal to the test's process group does not
// take it down first.
func guardProcesses(parent int, processes []string) error {
	if len(processes) == 0 {
		return nil
	}
	args := append([]string{"-c", watchdog, "tokenwarden-watchdog", strconv.Itoa(parent)}, processes...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	// Reap it when it ends while this process lives (the control plane
	// was stopped normally).
	go func() { _ = cmd.Wait() }()
	return nil
}

// guardedNames are the command names (as /proc/<pid>/stat shows them: cut
// to 15 bytes) of the control plane processes a watchdog guards.
var guardedNames = map[string]bool{"etcd": true, "kube-apiserver": true, "kube-controller": true}

// controlPlaneChildren lists parent's etcd, kube-apiserver and
// kube-controller-manager children as "pid:starttime".
func controlPlaneChildren(parent int) ([]string, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return nil, err // not Linux: nothing to guard this way
	}
	var out []string
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		comm, ppid, start, ok := parseStat(data)
		if !ok || !guardedNames[comm] || ppid != parent {
			continue
		}
		out = append(out, filepath.Base(filepath.Dir(path))+":"+start)
	}
	return out, nil
}

// processID names a process by pid and start time, "pid:starttime", as the
// watchdog takes them; ok is false when it cannot be read (it ended, or
// this is not Linux).
func processID(pid int) (string, bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", false
	}
	_, _, start, ok := parseStat(data)
	return strconv.Itoa(pid) + ":" + start, ok
}

// parseStat reads the command name, parent pid and start time out of a
// /proc/<pid>/stat: "pid (comm) state ppid ... starttime" (field 22); comm
// is in parentheses and, for these binaries, has no spaces.
func parseStat(data []byte) (comm string, ppid int, start string, ok bool) {
	open, closing := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || closing < open {
		return "", 0, "", false
	}
	fields := bytes.Fields(data[closing+1:])
	if len(fields) < 20 {
		return "", 0, "", false
	}
	ppid, err := strconv.Atoi(string(fields[1]))
	if err != nil {
		return "", 0, "", false
	}
	return string(data[open+1 : closing]), ppid, string(fields[19]), true
}
