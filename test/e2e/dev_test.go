package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
)

// readyLine is what `make dev` prints once a newcomer can use it; the
// command it suggests is parsed out of it, so the line stays copy-pasteable.
var readyLine = regexp.MustCompile(`tokenwarden: ready: local control plane at (\S+); in another terminal: (\S+) --kubeconfig (\S+) apply -f config/samples/`)

// devProcess is one run of `tokenwarden --dev`.
type devProcess struct {
	session     *gexec.Session
	kubectlPath string
	kubeconfig  string
}

func startDev(stateDir string) *devProcess {
	GinkgoHelper()
	cmd := exec.Command(binary, "--dev", "--dev-dir", stateDir, "--control-plane-dir", assetsDir,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	cmd.Dir = repoRoot
	session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	Eventually(session.Out, 90*time.Second).Should(gbytes.Say(readyLine.String()))
	m := readyLine.FindSubmatch(session.Out.Contents())
	Expect(m).NotTo(BeNil())
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(repoRoot, p)
	}
	return &devProcess{session: session, kubectlPath: abs(string(m[2])), kubeconfig: abs(string(m[3]))}
}

// kubectl runs kubectl as the local admin and returns stdout, stderr and
// whether it succeeded.
func (d *devProcess) kubectl(stdin string, args ...string) (string, string, error) {
	cmd := exec.Command(d.kubectlPath, append([]string{"--kubeconfig", d.kubeconfig}, args...)...)
	cmd.Dir = repoRoot
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// controlPlaneProcesses lists the pids of processes whose command line
// names stateDir: the etcd and kube-apiserver of that local mode.
func controlPlaneProcesses(stateDir string) []string {
	var pids []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, path := range cmdlines {
		data, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(data, []byte(stateDir+"/")) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(filepath.Dir(path), "stat"))
		if err == nil && bytes.Contains(stat, []byte(") Z ")) {
			continue // a zombie has already exited
		}
		pids = append(pids, fmt.Sprintf("%s (%s)", filepath.Base(filepath.Dir(path)), firstArg(data)))
	}
	return pids
}

func firstArg(cmdline []byte) string {
	r := bufio.NewReader(bytes.NewReader(cmdline))
	s, _ := r.ReadString(0)
	return strings.TrimRight(s, "\x00")
}

var _ = Describe("Local mode (tokenwarden --dev)", Ordered, func() {
	var (
		stateDir string
		dev      *devProcess
	)

	BeforeAll(func() {
		stateDir = GinkgoT().TempDir()
		dev = startDev(stateDir)
		Expect(controlPlaneProcesses(stateDir)).To(HaveLen(2), "etcd and kube-apiserver run under the state directory")
	})

	AfterAll(func() {
		if dev != nil && dev.session.ExitCode() == -1 {
			dev.session.Kill()
		}
	})

	It("accepts the samples: a Team and ApiTokens of every type", func() {
		out, errOut, err := dev.kubectl("", "apply", "-f", "config/samples/")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Expect(out).To(ContainSubstring("team.auth.tokenwarden.io/payments created"))

		out, errOut, err = dev.kubectl("", "get", "apitokens", "-n", "payments",
			"-o", "jsonpath={range .items[*]}{.spec.type}{\"\\n\"}{end}")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Expect(strings.Fields(out)).To(ConsistOf("Team", "Wildcard", "Admin"))
	})

	It("shows the printer columns and short names", func() {
		out, errOut, err := dev.kubectl("", "get", "tok", "-n", "payments")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Expect(strings.Fields(strings.SplitN(out, "\n", 2)[0])).To(Equal(
			[]string{"NAME", "TYPE", "TEAMS", "PHASE", "EXPIRES", "LAST-USED", "AGE"}))
	})

	It("runs the operator: the sample Team becomes Ready", func() {
		Eventually(func(g Gomega) {
			out, _, err := dev.kubectl("", "get", "team", "payments", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(Equal("True"))
		}, 30*time.Second).Should(Succeed())
	})

	It("refuses an invalid manifest with messages naming each field", func() {
		_, errOut, err := dev.kubectl(`
apiVersion: auth.tokenwarden.io/v1alpha1
kind: ApiToken
metadata: {name: broken, namespace: payments}
spec:
  type: Team
  lifetime: 30days
  scopes: ["read orders"]
`, "apply", "-f", "-")
		Expect(err).To(HaveOccurred())
		Expect(errOut).To(ContainSubstring("spec.teams: Required value: teams is required when type is Team"))
		Expect(errOut).To(ContainSubstring("spec.lifetime: Invalid value"))
		Expect(errOut).To(ContainSubstring("spec.scopes[0]: Invalid value"))
	})

	It("stops everything it started on Ctrl-C", func() {
		dev.session.Signal(syscall.SIGINT)
		Eventually(dev.session, 60*time.Second).Should(gexec.Exit(0))
		Expect(controlPlaneProcesses(stateDir)).To(BeEmpty())
	})

	It("keeps its data across restarts", func() {
		dev = startDev(stateDir)
		out, errOut, err := dev.kubectl("", "get", "team", "payments", "-o", "name")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Expect(out).To(ContainSubstring("team.auth.tokenwarden.io/payments"))
	})

	It("cleans up after a run that was killed outright", func() {
		// SIGKILL gives the operator no chance to stop etcd and kube-apiserver.
		dev.session.Kill()
		Eventually(dev.session, 10*time.Second).Should(gexec.Exit())
		Expect(controlPlaneProcesses(stateDir)).To(HaveLen(2), "the orphans this spec is about")

		dev = startDev(stateDir)
		Expect(string(dev.session.Err.Contents())).To(ContainSubstring("Stopped control plane processes left by an earlier run"))
		Expect(controlPlaneProcesses(stateDir)).To(HaveLen(2), "only the new run's etcd and kube-apiserver")
		dev.session.Signal(syscall.SIGINT)
		Eventually(dev.session, 60*time.Second).Should(gexec.Exit(0))
		Expect(controlPlaneProcesses(stateDir)).To(BeEmpty())
	})
})
