package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want result
	}{
		{"no command", nil, result{code: 2, stderr: usage}},
		{"help", []string{"help"}, result{stdout: usage}},
		{"--help", []string{"--help"}, result{stdout: usage}},
		{"-h", []string{"-h"}, result{stdout: usage}},
		{"help of a command", []string{"help", "whois"}, result{stdout: whoisCommand.help}},
		{"--help of a command", []string{"recreate", "--help"}, result{stdout: recreateCommand.help}},
		{"-h of a command, after an argument", []string{"disable", "jane-ci", "-h"}, result{stdout: disableCommand.help}},
		{"help of an unknown command", []string{"help", "rotate"}, result{code: 2,
			stderr: "error: unknown command \"rotate\"\nRun 'kubectl tokenwarden help' for usage.\n"}},
		{"unknown command", []string{"rotate", "jane-ci"}, result{code: 2,
			stderr: "error: unknown command \"rotate\"\nRun 'kubectl tokenwarden help' for usage.\n"}},
		{"a flag before the command", []string{"-n", "payments", "status"}, result{code: 2,
			stderr: "error: the command comes before flags: got \"-n\" where a command was expected\n" +
				"Run 'kubectl tokenwarden help' for usage.\n"}},
		{"a bad flag value", []string{"status", "-A=maybe"}, result{code: 2,
			stderr: "error: invalid boolean value \"maybe\" for -A: parse error\n" +
				"Run 'kubectl tokenwarden status --help' for usage.\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, runPlugin(fakeDeps(nil, "payments"), "", tc.args...), tc.want)
		})
	}
}

// TestHelpMentionsEveryFlag keeps the hand-written help in step with the
// flags each command registers.
func TestHelpMentionsEveryFlag(t *testing.T) {
	for _, cmd := range commands {
		fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
		cmd.flags(fs, &options{}, &env{deps: fakeDeps(nil, "")})
		fs.VisitAll(func(f *flag.Flag) {
			spelled := "--" + f.Name
			if len(f.Name) == 1 {
				spelled = "-" + f.Name + ","
			}
			if !strings.Contains(cmd.help, spelled) {
				t.Errorf("the help of %s does not mention %s", cmd.name, spelled)
			}
		})
		if !strings.Contains(usage, "  "+cmd.name) {
			t.Errorf("the usage does not list %s", cmd.name)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		wantArgs      []string
		wantNamespace string
		wantAll       bool
	}{
		{[]string{"a", "-n", "ns", "b"}, []string{"a", "b"}, "ns", false},
		{[]string{"-A", "a"}, []string{"a"}, "", true},
		{[]string{"a", "--", "-n", "x"}, []string{"a", "-n", "x"}, "", false},
		{[]string{"--namespace=ns", "--", "--"}, []string{"--"}, "ns", false},
		{nil, nil, "", false},
	} {
		var o options
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		addKubeFlags(fs, &o, true)
		fs.BoolVar(&o.allNamespaces, "A", false, "")
		got, err := parseInterspersed(fs, tc.args)
		if err != nil {
			t.Errorf("parseInterspersed(%q): %v", tc.args, err)
			continue
		}
		if !slices.Equal(got, tc.wantArgs) || o.kube.namespace != tc.wantNamespace || o.allNamespaces != tc.wantAll {
			t.Errorf("parseInterspersed(%q) = %q, -n %q, -A %t; want %q, %q, %t",
				tc.args, got, o.kube.namespace, o.allNamespaces, tc.wantArgs, tc.wantNamespace, tc.wantAll)
		}
	}
}

func TestErrorsCarryTheirExitCode(t *testing.T) {
	var stderr strings.Builder
	if code := report(&stderr, withCode(exitUnknown, errors.New("boom"))); code != exitUnknown || stderr.String() != "error: boom\n" {
		t.Errorf("report = %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := report(&stderr, errors.New("boom")); code != exitFailed {
		t.Errorf("report of a plain error = %d, want %d", code, exitFailed)
	}
}
