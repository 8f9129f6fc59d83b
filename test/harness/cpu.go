package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's CPU
// times: 100 on every Linux architecture Go supports.
const clockTicks = 100

// CPUTimes is CPU time (user and system) spent so far by this process
// ("harness") and by its children, each under its command name
// (kube-apiserver, etcd, the operator's binary). Taken before and after a
// part of a run, their difference says which process the part's CPU went
// to, on a machine whose cores they share.
func CPUTimes() (map[string]time.Duration, error) {
	self := os.Getpid()
	out := map[string]time.Duration{}
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		name, ppid, cpu, err := parseStat(data)
		if err != nil {
			return nil, fmt.Errorf("%s/stat: %w", dir, err)
		}
		switch {
		case pid == self:
			out["harness"] += cpu
		case ppid == self:
			out[name] += cpu
		}
	}
	return out, nil
}

// parseStat reads the command name, the parent's pid and utime+stime from
// /proc/<pid>/stat. The name is in parentheses and may hold spaces, so the
// fields are counted from its closing one.
func parseStat(data []byte) (string, int, time.Duration, error) {
	open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return "", 0, 0, fmt.Errorf("no command name in %q", data)
	}
	// After ") ": state(3) ppid(4) ... utime(14) stime(15).
	fields := bytes.Fields(data[end+1:])
	if len(fields) < 13 {
		return "", 0, 0, fmt.Errorf("too few fields in %q", data)
	}
	ppid, err1 := strconv.Atoi(string(fields[1]))
	utime, err2 := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, err3 := strconv.ParseInt(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return "", 0, 0, fmt.Errorf("unreadable fields in %q", data)
	}
	return string(data[open+1 : end]), ppid, time.Duration(utime+stime) * time.Second / clockTicks, nil
}
