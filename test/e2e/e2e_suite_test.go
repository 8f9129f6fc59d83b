// Package e2e drives the real tokenwarden binary and kubectl, as a newcomer
// would after `make dev`.
package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tokenwarden/tokenwarden/internal/controlplane"
)

var (
	repoRoot  string
	binary    string
	plugin    string
	assetsDir string
	// logsDir holds the logs of helpers other than the operator (nginx), so
	// that the leak scan at the end of the suite can read them after the
	// specs that wrote them have cleaned up.
	logsDir string
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end suite")
}

var _ = BeforeSuite(func() {
	// The harness's clients log through controller-runtime: into the
	// spec's output, not a warning with a stack trace.
	ctrllog.SetLogger(GinkgoLogr)
	var err error
	repoRoot, err = filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	assetsDir, err = controlplane.ResolveAssetsDir("")
	Expect(err).NotTo(HaveOccurred())

	binDir := GinkgoT().TempDir()
	logsDir = GinkgoT().TempDir()
	binary = filepath.Join(binDir, "tokenwarden")
	plugin = filepath.Join(binDir, "kubectl-tokenwarden")
	for out, pkg := range map[string]string{binary: ".", plugin: "./cmd/kubectl-tokenwarden/"} {
		build := exec.Command("go", "build", "-o", out, pkg)
		build.Dir = repoRoot
		build.Stdout, build.Stderr = GinkgoWriter, GinkgoWriter
		Expect(build.Run()).To(Succeed(), "building %s", pkg)
		Expect(os.Stat(out)).NotTo(BeNil())
	}
})
