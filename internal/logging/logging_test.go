package logging

import (
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
)

func TestCapped(t *testing.T) {
	g := NewWithT(t)
	var lines []string
	base := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{Verbosity: 10})
	log := Capped(base).WithName("x").WithValues("k", "v")

	for v := 0; v <= 10; v++ {
		log.V(v).Info("line")
	}
	g.Expect(lines).To(HaveLen(MaxVerbosity+1), "levels 0..7 only")
	g.Expect(log.V(8).Enabled()).To(BeFalse())
	g.Expect(log.V(MaxVerbosity).Enabled()).To(BeTrue())
	g.Expect(Capped(logr.Discard()).Enabled()).To(BeFalse())
}
