package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/tokenwarden/tokenwarden/internal/logging"
	"github.com/tokenwarden/tokenwarden/internal/token"
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

// devRuns counts the runs of `tokenwarden --dev` per state directory; each
// run's logs are named after its number, which starts at 1 in each
// directory whichever Describe ran first.
var devRuns = map[string]int{}

// startDev runs `tokenwarden --dev` at the highest verbosity its logger
// allows (logging.MaxVerbosity), so that the leak scan covers every line it
// can ever write. Its output goes to GinkgoWriter and to operator-<run>.log
// in stateDir; the previous run's controlplane.log, which devenv truncates
// on start, is kept as controlplane-<run>.log.
func startDev(stateDir string) *devProcess {
	GinkgoHelper()
	devRuns[stateDir]++
	run := devRuns[stateDir]
	controlPlaneLog := filepath.Join(stateDir, "controlplane.log")
	if _, err := os.Stat(controlPlaneLog); err == nil {
		// Renamed rather than copied: orphans of a killed run keep writing
		// to it until this run reaps them.
		Expect(os.Rename(controlPlaneLog, filepath.Join(stateDir, fmt.Sprintf("controlplane-%d.log", run-1)))).To(Succeed())
	}
	cmd := exec.Command(binary, "--dev", "--dev-dir", stateDir, "--control-plane-dir", assetsDir,
		"--health-probe-bind-address", "0", "--last-used-flush-interval", "1s",
		"--zap-log-level="+strconv.Itoa(logging.MaxVerbosity))
	cmd.Dir = repoRoot
	output := io.MultiWriter(GinkgoWriter, appendFile(filepath.Join(stateDir, fmt.Sprintf("operator-%d.log", run))))
	session, err := gexec.Start(cmd, output, output)
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

// apiServerURL is where the local mode's kube-apiserver listens.
func apiServerURL(d *devProcess) string {
	GinkgoHelper()
	m := readyLine.FindSubmatch(d.session.Out.Contents())
	Expect(m).NotTo(BeNil())
	return string(m[1])
}

// token reads one JSONPath of an ApiToken in the payments namespace as the
// local admin.
func (d *devProcess) token(name, path string) string {
	GinkgoHelper()
	out, errOut, err := d.kubectl("", "get", "apitoken", name, "-n", "payments", "-o", "jsonpath="+path)
	Expect(err).NotTo(HaveOccurred(), errOut)
	return out
}

// secretValueOrEmpty is the token value in a Secret of the payments
// namespace, "" when there is none. Every value read is recorded for the
// leak scan.
func (d *devProcess) secretValueOrEmpty(name string) string {
	out, _, err := d.kubectl("", "get", "secret", name, "-n", "payments", "-o", "jsonpath={.data.token}")
	if err != nil || out == "" {
		return ""
	}
	value, err := base64.StdEncoding.DecodeString(out)
	Expect(err).NotTo(HaveOccurred())
	issued.add(string(value), "Secret payments/"+name)
	return string(value)
}

// secretValue is the token value in a Secret of the payments namespace,
// which must hold one.
func (d *devProcess) secretValue(name string) string {
	GinkgoHelper()
	value := d.secretValueOrEmpty(name)
	Expect(value).NotTo(BeEmpty(), "Secret payments/%s holds no value", name)
	return value
}

// recordIssued reads the value of ApiToken name, so that the leak scan
// covers a value that is removed (expired, invalidated) before the end.
// The status is written a moment before the Secret, so it waits for the
// value rather than reading once.
func (d *devProcess) recordIssued(name string) {
	GinkgoHelper()
	secret := d.token(name, "{.status.secretRef.name}")
	Eventually(func() string { return d.secretValueOrEmpty(secret) }, 10*time.Second, 20*time.Millisecond).
		ShouldNot(BeEmpty(), "Secret payments/%s holds no value", secret)
}

// manifest is an ApiToken in the payments namespace with spec lines.
func manifest(name, spec string) string {
	return fmt.Sprintf("apiVersion: auth.tokenwarden.io/v1alpha1\nkind: ApiToken\nmetadata: {name: %s, namespace: payments}\nspec:\n  %s\n", name, spec)
}

// controlPlaneProcesses lists the pids of processes whose command line
// names stateDir: the etcd, kube-apiserver and kube-controller-manager of
// that local mode.
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

// watchdogsOf finds the watchdogs internal/controlplane started for the
// process parent: shells named tokenwarden-watchdog whose first argument is
// parent's pid.
func watchdogsOf(parent int) []int {
	var pids []int
	needle := []byte(fmt.Sprintf("\x00tokenwarden-watchdog\x00%d\x00", parent))
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, path := range cmdlines {
		data, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(data, needle) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
			pids = append(pids, pid)
		}
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
		Expect(controlPlaneProcesses(stateDir)).To(HaveLen(3), "etcd, kube-apiserver and kube-controller-manager run under the state directory")
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

	It("issues every sample token into its Secret, keeping only the digest", func() {
		for _, name := range []string{"payments-ci", "oncall-tools", "platform-admin"} {
			Eventually(func(g Gomega) {
				g.Expect(dev.token(name, "{.status.phase}")).To(Equal("Active"))
			}, 30*time.Second).Should(Succeed(), name)
			secret := dev.token(name, "{.status.secretRef.name}")
			value := dev.secretValue(secret)
			Expect(token.Hash(value)).To(Equal(dev.token(name, "{.status.tokenHash}")))
		}
	})

	pluginSpecs(func() *devProcess { return dev }, func() string { return stateDir })

	It("refuses a stranger any token, and a team owner an Admin token", func() {
		for _, typ := range []string{"Team", "Wildcard", "Admin"} {
			spec := "type: " + typ
			if typ == "Team" {
				spec += "\n  teams: [payments]\n  lifetime: 1d"
			}
			_, errOut, err := dev.kubectl(manifest("stranger-"+strings.ToLower(typ), spec), "apply", "--as", "eve@example.com", "-f", "-")
			Expect(err).To(HaveOccurred(), typ)
			Expect(errOut).To(ContainSubstring("only admins"))
		}
		_, errOut, err := dev.kubectl(manifest("owner-admin", "type: Admin"), "apply", "--as", "jane@example.com", "-f", "-")
		Expect(err).To(HaveOccurred())
		Expect(errOut).To(ContainSubstring(`spec.type: Forbidden: "jane@example.com" is not a Tokenwarden admin: only admins may hold Admin tokens`))
	})

	It("keeps the value through disable and enable, and repairs a deleted Secret", func() {
		before := dev.secretValue("payments-ci")
		_, errOut, err := dev.kubectl("", "patch", "apitoken", "payments-ci", "-n", "payments", "--type", "merge", "-p", `{"spec":{"disabled":true}}`)
		Expect(err).NotTo(HaveOccurred(), errOut)
		Eventually(func() string { return dev.token("payments-ci", "{.status.phase}") }).Should(Equal("Disabled"))
		Expect(dev.secretValue("payments-ci")).To(Equal(before))
		_, errOut, err = dev.kubectl("", "patch", "apitoken", "payments-ci", "-n", "payments", "--type", "merge", "-p", `{"spec":{"disabled":false}}`)
		Expect(err).NotTo(HaveOccurred(), errOut)
		Eventually(func() string { return dev.token("payments-ci", "{.status.phase}") }).Should(Equal("Active"))
		Expect(dev.secretValue("payments-ci")).To(Equal(before))

		_, errOut, err = dev.kubectl("", "delete", "secret", "payments-ci", "-n", "payments")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Eventually(func(g Gomega) {
			value := dev.secretValueOrEmpty("payments-ci")
			g.Expect(value).NotTo(BeEmpty())
			g.Expect(value).NotTo(Equal(before))
			g.Expect(token.Hash(value)).To(Equal(dev.token("payments-ci", "{.status.tokenHash}")))
		}, 10*time.Second).Should(Succeed())
	})

	It("expires a token on the second", func() {
		expiresAt := time.Now().Add(4 * time.Second).UTC().Truncate(time.Second)
		_, errOut, err := dev.kubectl(manifest("short-lived", "type: Wildcard\n  expiresAt: "+expiresAt.Format(time.RFC3339)), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Eventually(func() string { return dev.token("short-lived", "{.status.phase}") }).Should(Equal("Active"))
		dev.recordIssued("short-lived")
		Eventually(func() string { return dev.token("short-lived", "{.status.phase}") }, 10*time.Second, 50*time.Millisecond).Should(Equal("Expired"))
		expiredAt := time.Now()
		Expect(expiredAt).To(BeTemporally(">=", expiresAt), "not a moment early")
		Expect(expiredAt).To(BeTemporally("<", expiresAt.Add(time.Second)), "nor a second late")
		Eventually(func() string { return dev.secretValueOrEmpty("short-lived") }).Should(BeEmpty())
	})

	It("warns before a Team change invalidates tokens, then invalidates them", func() {
		_, errOut, err := dev.kubectl(manifest("jane-ci", "type: Team\n  teams: [payments]\n  lifetime: 7d\n  scopes: [orders:read]"),
			"apply", "--as", "jane@example.com", "-f", "-")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Eventually(func() string { return dev.token("jane-ci", "{.status.phase}") }, 10*time.Second).Should(Equal("Active"))
		dev.recordIssued("jane-ci")

		_, errOut, err = dev.kubectl("", "patch", "team", "payments", "--type", "json",
			"-p", `[{"op":"remove","path":"/spec/owners/0"}]`)
		Expect(err).NotTo(HaveOccurred(), errOut)
		changed := time.Now()
		Expect(errOut).To(ContainSubstring("Warning: this change invalidates 1 token(s), finally: payments/jane-ci (CreatorNotOwner)"))
		Eventually(func() string { return dev.token("jane-ci", "{.status.phase}") }, 2*time.Second, 20*time.Millisecond).Should(Equal("Invalidated"))
		GinkgoWriter.Printf("owner removed -> Invalidated in %v\n", time.Since(changed))
		Eventually(func() string { return dev.secretValueOrEmpty("jane-ci") }).Should(BeEmpty())
	})

	It("invalidates an Admin token when RBAC demotes its creator", func() {
		_, errOut, err := dev.kubectl("", "create", "clusterrolebinding", "ops-admin", "--clusterrole", "tokenwarden-admin", "--user", "ops@example.com")
		Expect(err).NotTo(HaveOccurred(), errOut)
		_, errOut, err = dev.kubectl(manifest("ops-admin", "type: Admin"), "apply", "--as", "ops@example.com", "-f", "-")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Eventually(func() string { return dev.token("ops-admin", "{.status.phase}") }, 10*time.Second).Should(Equal("Active"))
		dev.recordIssued("ops-admin")

		_, errOut, err = dev.kubectl("", "delete", "clusterrolebinding", "ops-admin")
		Expect(err).NotTo(HaveOccurred(), errOut)
		demoted := time.Now()
		Eventually(func() string {
			return dev.token("ops-admin", `{.status.phase}/{.status.conditions[?(@.type=="Ready")].reason}`)
		}, 2*time.Second, 20*time.Millisecond).Should(Equal("Invalidated/CreatorNotAdmin"))
		GinkgoWriter.Printf("RBAC demotion -> Invalidated in %v\n", time.Since(demoted))
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

	Describe("verification", func() {
		var (
			eps    map[string]string
			client *http.Client
			value  string
			// user is the token's user name, which ends in its uid.
			user string
		)
		BeforeAll(func() {
			eps = endpoints(stateDir)
			Expect(eps).To(HaveKey("TOKENWARDEN_VERIFY_URL"))
			Expect(eps).To(HaveKey("TOKENWARDEN_METRICS_URL"))
			client = verifyClient(eps["TOKENWARDEN_CA_FILE"])
			value = dev.secretValue("platform-admin-token")
			uid := dev.token("platform-admin", "{.metadata.uid}")
			Expect(uid).NotTo(BeEmpty())
			user = "tokenwarden:payments:platform-admin:" + uid
		})

		It("answers /verify for every header form, with the identity as JSON and headers", func() {
			for _, h := range []map[string]string{
				{"Authorization": "Bearer " + value},
				{"Authorization": "accessToken " + value},
				{"Authorization": "apiToken " + value},
				{"Token": value},
			} {
				resp, body := get(client, eps["TOKENWARDEN_VERIFY_URL"], h)
				Expect(resp.StatusCode).To(Equal(http.StatusOK), body)
				Expect(body).To(ContainSubstring(`"name":"platform-admin"`))
				Expect(body).To(ContainSubstring(`"type":"Admin"`))
				Expect(resp.Header.Get("X-Tokenwarden-User")).To(Equal(user))
				Expect(body).NotTo(ContainSubstring(value))
			}
		})

		It("refuses missing, garbage and unknown tokens with 401 and a reason", func() {
			unknown, err := token.Format{Base: token.DefaultBase}.Generate("Admin")
			Expect(err).NotTo(HaveOccurred())
			// Never issued, but presented: a verifier must not log it either.
			issued.add(unknown, "an unknown value sent to /verify")
			for header, reason := range map[string]string{"": "Missing", "Bearer garbage": "Malformed", "Bearer " + unknown: "Unknown"} {
				h := map[string]string{}
				if header != "" {
					h["Authorization"] = header
				}
				resp, _ := get(client, eps["TOKENWARDEN_VERIFY_URL"], h)
				Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
				Expect(resp.Header.Get("WWW-Authenticate")).To(HavePrefix(`Bearer realm="tokenwarden"`))
				Expect(resp.Header.Get("X-Tokenwarden-Reason")).To(Equal(reason))
			}
		})

		It("lets kube-apiserver authenticate the token through TokenReview", func() {
			out, errOut, err := dev.kubectl("", "--token", value, "--kubeconfig", "/dev/null", "--server", apiServerURL(dev),
				"--insecure-skip-tls-verify", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}")
			Expect(err).NotTo(HaveOccurred(), errOut)
			Expect(out).To(HavePrefix(user + " "))
			Expect(out).To(ContainSubstring("tokenwarden:type:Admin"))
		})

		It("records lastUsedAt without a write per request", func() {
			Eventually(func() string { return dev.token("platform-admin", "{.status.lastUsedAt}") }, 10*time.Second).ShouldNot(BeEmpty())
		})

		It("stops verifying a disabled token at once", func() {
			_, errOut, err := dev.kubectl("", "patch", "apitoken", "platform-admin", "-n", "payments", "--type", "merge", "-p", `{"spec":{"disabled":true}}`)
			Expect(err).NotTo(HaveOccurred(), errOut)
			disabled := time.Now()
			Eventually(func() int {
				resp, _ := get(client, eps["TOKENWARDEN_VERIFY_URL"], map[string]string{"Authorization": "Bearer " + value})
				return resp.StatusCode
			}, 5*time.Second, 10*time.Millisecond).Should(Equal(http.StatusUnauthorized))
			GinkgoWriter.Printf("disable -> /verify refuses in %v\n", time.Since(disabled))
			_, errOut, err = dev.kubectl("", "patch", "apitoken", "platform-admin", "-n", "payments", "--type", "merge", "-p", `{"spec":{"disabled":false}}`)
			Expect(err).NotTo(HaveOccurred(), errOut)
			Eventually(func() int {
				resp, _ := get(client, eps["TOKENWARDEN_VERIFY_URL"], map[string]string{"Authorization": "Bearer " + value})
				return resp.StatusCode
			}, 5*time.Second, 10*time.Millisecond).Should(Equal(http.StatusOK))
		})

		It("serves the token and verification metrics", func() {
			resp, body := get(http.DefaultClient, eps["TOKENWARDEN_METRICS_URL"], nil)
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(body).To(ContainSubstring("tokenwarden_verification_results_total"))
			Expect(body).To(ContainSubstring(`tokenwarden_tokens{namespace="payments",phase="Active",type="Admin"} 1`))
			Expect(body).To(ContainSubstring(`tokenwarden_token_expiry_timestamp_seconds{name="platform-admin",namespace="payments",type="Admin"}`))
			Expect(body).To(ContainSubstring(`tokenwarden_token_issuances_total{reason="FirstIssue"}`))
			Expect(body).To(ContainSubstring("tokenwarden_token_invalidations_total"))
		})

		It("guards a backend behind a real nginx with auth_request: 200, 401, then 429", func() {
			nginx := startNginx(eps["TOKENWARDEN_VERIFY_URL"], eps["TOKENWARDEN_CA_FILE"])
			plain := &http.Client{Timeout: 5 * time.Second}
			resp, body := get(plain, nginx, map[string]string{"Authorization": "Bearer " + value})
			Expect(resp.StatusCode).To(Equal(http.StatusOK), body)
			Expect(body).To(Equal("hello " + user))

			resp, _ = get(plain, nginx, map[string]string{"Authorization": "Bearer garbage"})
			Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))

			// Failed attempts from one address are limited: keep failing until refused.
			Eventually(func(g Gomega) {
				resp, _ := get(plain, nginx, map[string]string{"Authorization": "Bearer garbage"})
				g.Expect(resp.StatusCode).To(Equal(http.StatusTooManyRequests))
				g.Expect(resp.Header.Get("Retry-After")).NotTo(BeEmpty())
				g.Expect(resp.Header.Get("RateLimit-Limit")).NotTo(BeEmpty())
				g.Expect(resp.Header.Get("RateLimit-Remaining")).To(Equal("0"))
				g.Expect(resp.Header.Get("RateLimit-Reset")).NotTo(BeEmpty())
			}, 10*time.Second, time.Millisecond).Should(Succeed())
		})
	})

	It("stops everything it started on Ctrl-C", func() {
		dev.session.Signal(syscall.SIGINT)
		Eventually(dev.session, 60*time.Second).Should(gexec.Exit(0))
		Expect(controlPlaneProcesses(stateDir)).To(BeEmpty())
	})

	It("keeps its data across restarts", func() {
		dev = startDev(stateDir)
		// Discovery of the CRDs' group settles just after the restart.
		Eventually(func(g Gomega) {
			out, errOut, err := dev.kubectl("", "get", "team", "payments", "-o", "name")
			g.Expect(err).NotTo(HaveOccurred(), errOut)
			g.Expect(out).To(ContainSubstring("team.auth.tokenwarden.io/payments"))
		}, 30*time.Second, time.Second).Should(Succeed())
	})

	It("cleans up after a run that was killed outright", func() {
		// SIGKILL gives the operator no chance to stop its control plane.
		// Its watchdogs go first: they would kill the orphans within a
		// second (internal/controlplane's TestCrashedSuiteLeavesNothingRunning
		// shows that), which would race the next start. This is the case
		// nothing but the next start cleans up: everything of the
		// operator's killed at once, as by the OOM killer or kill -9 -1.
		watchdogs := watchdogsOf(dev.session.Command.Process.Pid)
		Expect(watchdogs).NotTo(BeEmpty(), "the control plane runs guarded")
		for _, pid := range watchdogs {
			Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		}
		dev.session.Kill()
		Eventually(dev.session, 10*time.Second).Should(gexec.Exit())
		Expect(controlPlaneProcesses(stateDir)).To(HaveLen(3), "the orphans this spec is about")

		dev = startDev(stateDir)
		Expect(string(dev.session.Err.Contents())).To(ContainSubstring("Stopped control plane processes left by an earlier run"))
		Expect(controlPlaneProcesses(stateDir)).To(HaveLen(3), "only the new run's etcd, kube-apiserver and kube-controller-manager")
		dev.session.Signal(syscall.SIGINT)
		Eventually(dev.session, 60*time.Second).Should(gexec.Exit(0))
		Expect(controlPlaneProcesses(stateDir)).To(BeEmpty())
	})

	// Last, so that the logs of every run are complete: one more run
	// serves the objects, then stops.
	It("leaks no value into any log, Event or object but its Secret, at the highest verbosity", func() {
		dev = startDev(stateDir)
		objects := clusterObjects(dev)
		dev.session.Signal(syscall.SIGINT)
		Eventually(dev.session, 60*time.Second).Should(gexec.Exit(0))
		logs := logSources(stateDir)
		values := issued.snapshot()

		AddReportEntry("leak scan", scanSummary(values, logs, objects))
		Expect(len(values)).To(BeNumerically(">=", minScannedValues), "too few values collected for the scan to mean anything")
		// Every run's logs, and Events among the objects, or the scan
		// would pass for want of material.
		Expect(wheres(logs)).To(ContainElements("log operator-1.log", fmt.Sprintf("log operator-%d.log", devRuns[stateDir]),
			"log controlplane-1.log", fmt.Sprintf("log controlplane-%d.log", devRuns[stateDir]-1), "log controlplane.log"))
		Expect(wheres(objects)).To(ContainElement(HavePrefix("Event ")))
		Expect(leaks(values, append(logs, objects...))).To(BeEmpty(), "issued values found outside their Secrets")
	})
})
