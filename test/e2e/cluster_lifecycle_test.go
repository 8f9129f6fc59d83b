package e2e

import (
	"net/http"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
)

// lifecycleTimeout bounds how long the cluster's own controllers may take
// to finish a deletion: the namespace controller walks every resource type
// and the garbage collector works from its graph, both on a slow, shared
// machine. A healthy run takes seconds.
const lifecycleTimeout = 2 * time.Minute

// notFound reports whether kubectl's error output says the object does not
// exist.
func notFound(errOut string) bool {
	return strings.Contains(errOut, "(NotFound)") || strings.Contains(errOut, " not found")
}

var _ = Describe("Cluster lifecycle in local mode (kube-controller-manager)", Ordered, func() {
	var (
		stateDir string
		dev      *devProcess
	)

	BeforeAll(func() {
		stateDir = GinkgoT().TempDir()
		dev = startDev(stateDir)
		Expect(controlPlaneProcesses(stateDir)).To(ContainElement(ContainSubstring("kube-controller-manager")),
			"the local mode runs kube-controller-manager beside etcd and kube-apiserver")

		_, errOut, err := dev.kubectl("", "apply", "-f", "config/samples/")
		Expect(err).NotTo(HaveOccurred(), errOut)
		// A Team token created by a team owner, who is no admin: the
		// webhook refuses its deletion to anyone but its creator, an admin
		// and the cluster's lifecycle controllers.
		_, errOut, err = dev.kubectl(manifest("jane-ci", "type: Team\n  teams: [payments]\n  lifetime: 7d\n  scopes: [orders:read]"),
			"apply", "--as", "jane@example.com", "-f", "-")
		Expect(err).NotTo(HaveOccurred(), errOut)
		_, errOut, err = dev.kubectl(manifest("retired", "type: Wildcard\n  lifetime: 1d"), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred(), errOut)
		for _, name := range []string{"payments-ci", "oncall-tools", "platform-admin", "jane-ci", "retired"} {
			Eventually(func(g Gomega) {
				g.Expect(dev.token(name, "{.status.phase}")).To(Equal("Active"))
			}, time.Minute).Should(Succeed(), name)
			dev.recordIssued(name)
		}
	})

	AfterAll(func() {
		if dev != nil && dev.session.ExitCode() == -1 {
			dev.session.Signal(syscall.SIGINT)
			Eventually(dev.session, 60*time.Second).Should(gexec.Exit(0))
			Expect(controlPlaneProcesses(stateDir)).To(BeEmpty(), "Ctrl-C stops kube-controller-manager too")
		}
	})

	It("garbage collects an ApiToken's Secret through its owner reference once the ApiToken is deleted", func() {
		secret := dev.token("retired", "{.status.secretRef.name}")
		uid := dev.token("retired", "{.metadata.uid}")
		out, errOut, err := dev.kubectl("", "get", "secret", secret, "-n", "payments",
			"-o", "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].uid}/{.metadata.ownerReferences[0].controller}")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Expect(out).To(Equal("ApiToken/"+uid+"/true"), "the operator makes the ApiToken the Secret's controller")

		// Background is kubectl's default; said out loud because it is the
		// garbage collector, not the API server, that deletes the Secret.
		_, errOut, err = dev.kubectl("", "delete", "apitoken", "retired", "-n", "payments", "--cascade=background")
		Expect(err).NotTo(HaveOccurred(), errOut)
		deleted := time.Now()
		Eventually(func(g Gomega) {
			_, errOut, err := dev.kubectl("", "get", "secret", secret, "-n", "payments", "-o", "name")
			g.Expect(err).To(HaveOccurred(), "Secret payments/%s still exists", secret)
			g.Expect(notFound(errOut)).To(BeTrue(), errOut)
		}, lifecycleTimeout, 250*time.Millisecond).Should(Succeed())
		GinkgoWriter.Printf("ApiToken deleted -> Secret garbage collected in %v\n", time.Since(deleted))
	})

	It("deletes a namespace with Team, Wildcard and Admin tokens in it, and their values stop verifying", func() {
		eps := endpoints(stateDir)
		client := verifyClient(eps["TOKENWARDEN_CA_FILE"])
		values := map[string]string{}
		for _, name := range []string{"payments-ci", "oncall-tools", "jane-ci"} {
			values[name] = dev.secretValue(dev.token(name, "{.status.secretRef.name}"))
			resp, body := get(client, eps["TOKENWARDEN_VERIFY_URL"], map[string]string{"Authorization": "Bearer " + values[name]})
			Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s verifies before: %s", name, body)
		}
		out, errOut, err := dev.kubectl("", "get", "apitokens", "-n", "payments",
			"-o", "jsonpath={range .items[*]}{.spec.type}{\"\\n\"}{end}")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Expect(strings.Fields(out)).To(ContainElements("Team", "Wildcard", "Admin"))

		// --wait=false: kubectl's own wait has no bound; the spec bounds it.
		_, errOut, err = dev.kubectl("", "delete", "namespace", "payments", "--wait=false")
		Expect(err).NotTo(HaveOccurred(), errOut)
		deleted := time.Now()
		Eventually(func(g Gomega) {
			out, errOut, err := dev.kubectl("", "get", "namespace", "payments", "-o", "jsonpath={.status.phase}")
			g.Expect(err).To(HaveOccurred(), "namespace payments is still there, phase %q", out)
			g.Expect(notFound(errOut)).To(BeTrue(), errOut)
		}, lifecycleTimeout, 250*time.Millisecond).Should(Succeed())
		GinkgoWriter.Printf("namespace deleted -> gone in %v\n", time.Since(deleted))

		out, errOut, err = dev.kubectl("", "get", "apitokens,secrets", "-A", "--field-selector", "metadata.namespace=payments", "-o", "name")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Expect(strings.TrimSpace(out)).To(BeEmpty(), "nothing of the namespace is left")
		for name, value := range values {
			Eventually(func(g Gomega) {
				resp, _ := get(client, eps["TOKENWARDEN_VERIFY_URL"], map[string]string{"Authorization": "Bearer " + value})
				g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
				g.Expect(resp.Header.Get("X-Tokenwarden-Reason")).To(Equal("Unknown"))
			}, 30*time.Second, 100*time.Millisecond).Should(Succeed(), "%s stops verifying once its namespace is gone", name)
		}
	})
})
