package token

import (
	"os"
	"regexp"
	"testing"

	. "github.com/onsi/gomega"
)

// TestSecretScanningDocs keeps the gitleaks rule in docs/secret-scanning.md
// equal to ScannerRegex, so a change of format cannot leave scanners
// looking for the old one.
func TestSecretScanningDocs(t *testing.T) {
	g := NewWithT(t)
	doc, err := os.ReadFile("../../docs/secret-scanning.md")
	g.Expect(err).NotTo(HaveOccurred())
	rules := regexp.MustCompile(`(?m)^regex = '''(.*)'''$`).FindAllSubmatch(doc, -1)
	g.Expect(rules).To(HaveLen(1), "one gitleaks regex line in the doc")
	g.Expect(string(rules[0][1])).To(Equal(ScannerRegex))
}
