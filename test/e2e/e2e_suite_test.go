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

	"github.com/tokenwarden/tokenwarden/internal/controlplane"
)

var (
	repoRoot  string
	binary    string
	assetsDir string
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end suite")
}

var _ = BeforeSuite(func() {
	var err error
	repoRoot, err = filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	assetsDir, err = controlplane.ResolveAssetsDir("")
	Expect(err).NotTo(HaveOccurred())

	binary = filepath.Join(GinkgoT().TempDir(), "tokenwarden")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = GinkgoWriter, GinkgoWriter
	Expect(build.Run()).To(Succeed(), "building the operator binary")
	Expect(os.Stat(binary)).NotTo(BeNil())
})
