package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tokenwarden/tokenwarden/internal/token"
)

// runPlugin runs kubectl-tokenwarden against the local mode with args and
// stdin, and extra environment variables; it returns stdout, stderr and the
// exit code.
func runPlugin(d *devProcess, stdin string, env []string, args ...string) (string, string, int) {
	GinkgoHelper()
	cmd := exec.Command(plugin, append(args, "--kubeconfig", d.kubeconfig)...)
	cmd.Dir = repoRoot
	// The runner's own KUBECONFIG or verify endpoint must not leak in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "TOKENWARDEN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), errOut.String(), exit.ExitCode()
	}
	Expect(err).NotTo(HaveOccurred())
	return out.String(), errOut.String(), 0
}

// pluginSpecs are the specs of `kubectl tokenwarden`, run while the local
// mode is up and the samples are Active; the Ordered container they sit in
// provides the running process and its state directory.
func pluginSpecs(dev func() *devProcess, stateDir func() string) {
	// replaced is the value the recreate spec replaced.
	var replaced string

	It("lists the tokens with `kubectl tokenwarden status -A`, the soonest to expire first", func() {
		out, errOut, code := runPlugin(dev(), "", nil, "status", "-A")
		Expect(code).To(Equal(0), errOut)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		Expect(strings.Fields(lines[0])).To(Equal([]string{"NAMESPACE", "NAME", "TYPE", "PHASE", "EXPIRES", "LAST", "USED", "SECRET", "REASON"}))
		var names []string
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			Expect(f).To(HaveLen(8), "payments NAME TYPE Active in DURATION never SECRET, no reason: %q", line)
			Expect(f[0]).To(Equal("payments"))
			Expect(f[3]).To(Equal("Active"))
			Expect(f[4]).To(Equal("in"))
			names = append(names, f[1]+"/"+f[2]+"/"+f[7])
		}
		// 12h, then 30d, then 2030-01-01.
		Expect(names).To(Equal([]string{"platform-admin/Admin/platform-admin-token", "payments-ci/Team/payments-ci", "oncall-tools/Wildcard/oncall-tools"}))
	})

	It("issues a new value with `kubectl tokenwarden recreate`", func() {
		d := dev()
		replaced = d.secretValue("oncall-tools")
		counter := func() int64 {
			n, err := strconv.ParseInt(d.token("oncall-tools", "{.status.recreate}"), 10, 64)
			if err != nil {
				return 0 // omitted while zero
			}
			return n
		}
		was := counter()
		out, errOut, code := runPlugin(d, "", nil, "recreate", "oncall-tools", "-n", "payments")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(ContainSubstring("apitoken payments/oncall-tools: recreate requested"))
		Eventually(counter, 10*time.Second).Should(Equal(was + 1))
		Eventually(func(g Gomega) {
			value := d.secretValueOrEmpty("oncall-tools")
			// Digests, not values, so a failure prints no token.
			g.Expect(value).NotTo(BeEmpty())
			g.Expect(token.Hash(value)).NotTo(Equal(token.Hash(replaced)), "the Secret still holds the old value")
			g.Expect(token.Hash(value)).To(Equal(d.token("oncall-tools", "{.status.tokenHash}")))
		}, 10*time.Second).Should(Succeed())
	})

	It("tells who owns a token on stdin with `kubectl tokenwarden whois`, never printing it", func() {
		d := dev()
		eps := endpoints(stateDir())
		// As the plugin's help suggests: endpoints.env sourced into the
		// environment.
		env := []string{"TOKENWARDEN_VERIFY_URL=" + eps["TOKENWARDEN_VERIFY_URL"], "TOKENWARDEN_CA_FILE=" + eps["TOKENWARDEN_CA_FILE"]}
		value := d.secretValue("oncall-tools")
		out, errOut, code := runPlugin(d, value+"\n", env, "whois")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(MatchRegexp(`(?m)^ApiToken:\s+payments/oncall-tools$`))
		Expect(out).To(MatchRegexp(`(?m)^Type:\s+Wildcard$`))
		// Not ContainSubstring: its failure message would print the value.
		Expect(strings.Contains(out+errOut, value)).To(BeFalse(), "whois printed the token")

		// The same through flags, with the value the recreate replaced.
		Expect(replaced).NotTo(BeEmpty())
		_, errOut, code = runPlugin(d, "\n"+replaced+"\n", nil, "whois",
			"--verify-url", eps["TOKENWARDEN_VERIFY_URL"], "--ca-file", eps["TOKENWARDEN_CA_FILE"])
		Expect(code).To(Equal(1), "a replaced value without overlap no longer verifies")
		Expect(errOut).To(ContainSubstring("not a valid token"))
	})
}
