package duration

import (
	"math"
	mathrand "math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// maxDuration is the largest whole-second time.Duration.
const maxDuration = math.MaxInt64 / time.Second * time.Second

func TestParse(t *testing.T) {
	tests := []struct {
		in   v1alpha1.Duration
		want time.Duration
	}{
		{"30d", 30 * day},
		{"12h", 12 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"90m", 90 * time.Minute},
		{"1h30m15s", time.Hour + 30*time.Minute + 15*time.Second},
		{"1s", time.Second},
		{"1d1h1m1s", day + time.Hour + time.Minute + time.Second},
		{"1d1s", day + time.Second},
		{"36h", 36 * time.Hour},
		{"100s", 100 * time.Second},
		{"0d1h", time.Hour},
		{"0d0h0m1s", time.Second},
		{"007h", 7 * time.Hour},
		{"00000000000000000000000000001s", time.Second},
		{"99999d", 99999 * day},
		{"99999d99999h", 99999*day + 99999*time.Hour},
		{"106751d", 106751 * day},
		{"106751d23h47m16s", maxDuration},
		{"9223372036s", maxDuration},
		{"153722867m16s", maxDuration},
	}
	for _, tt := range tests {
		t.Run(string(tt.in), func(t *testing.T) {
			g := NewWithT(t)
			got, err := Parse(tt.in)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		in   v1alpha1.Duration
		want string
	}{
		{"empty", "", "empty"},
		{"zero days", "0d", "must be positive"},
		{"zero seconds", "0s", "must be positive"},
		{"all zero", "0d0h0m0s", "must be positive"},
		{"fraction", "1.5h", `unexpected '.' at offset 1; fractions are not allowed`},
		{"decimal comma", "1,5h", "fractions are not allowed"},
		{"words", "30 days", `unexpected ' ' at offset 2; spaces are not allowed`},
		{"word unit", "30days", `unknown unit "days" at offset 2`},
		{"space between units", "1d 12h", "spaces are not allowed"},
		{"leading space", " 1h", "spaces are not allowed"},
		{"trailing newline", "1h\n", "spaces are not allowed"},
		{"out of order", "1h1d", `unit "d" at offset 3 comes after "h"; the units must come in the order d, h, m, s`},
		{"seconds before minutes", "1s1m", `unit "m" at offset 3 comes after "s"`},
		{"repeated", "1h2h", `unit "h" appears more than once`},
		{"repeated later", "1h1m1h", `unit "h" appears more than once`},
		{"negative", "-1h", `unexpected '-' at offset 0; signs are not allowed`},
		{"plus sign", "+1h", "signs are not allowed"},
		{"negative part", "1d-1h", "signs are not allowed"},
		{"no unit", "30", "number 30 at offset 0 has no unit; end it with d, h, m or s"},
		{"no unit at end", "1h30", "number 30 at offset 2 has no unit"},
		{"no number", "h", `unit "h" at offset 0 has no number before it`},
		{"no number later", "1hm", `unknown unit "hm" at offset 1`},
		{"weeks", "2w", `unknown unit "w"`},
		{"milliseconds", "1ms", `unknown unit "ms"`},
		{"uppercase unit", "1H", `unknown unit "H"`},
		{"exponent", "1e3s", `unknown unit "e"`},
		{"Go duration", "1h0m0.5s", "fractions are not allowed"},
		{"microseconds", "1µs", `unexpected 'µ' at offset 1`},
		{"fullwidth digit", "１h", `unexpected '１' at offset 0`},
		{"NUL", "1h\x00", `unexpected '\x00' at offset 2`},
		{"invalid UTF-8", "1h\xff", `unexpected '�' at offset 2`},
		{"ISO 8601", "P1D", `unit "P" at offset 0 has no number before it`},
		{"huge number", "99999999999999999999999s", "too large; the most is 106751d23h47m16s"},
		{"huge days", "106752d", "too large"},
		{"seconds just over", "9223372037s", "too large"},
		{"sum just over", "106751d23h47m17s", "too large"},
		{"sum of days and hours", "99999d999999h", "too large"},
		{"sum of limits", "99999d999999h99999999m999999999s", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := Parse(tt.in)
			g.Expect(err).To(HaveOccurred())
			g.Expect(got).To(BeZero())
			g.Expect(err.Error()).To(HavePrefix("invalid duration " + strconv.Quote(string(tt.in)) + ": "))
			g.Expect(err.Error()).To(ContainSubstring(tt.want))
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want v1alpha1.Duration
	}{
		{0, "0s"},
		{time.Second, "1s"},
		{36 * time.Hour, "1d12h"},
		{90 * time.Minute, "1h30m"},
		{30 * day, "30d"},
		{time.Hour + time.Second, "1h1s"},
		{day + time.Minute, "1d1m"},
		{day - time.Second, "23h59m59s"},
		{100 * time.Second, "1m40s"},
		{1500 * time.Millisecond, "1s"},
		{999 * time.Millisecond, "0s"},
		{time.Nanosecond, "0s"},
		{-time.Hour, "-1h"},
		{-90 * time.Second, "-1m30s"},
		{-500 * time.Millisecond, "0s"},
		{math.MaxInt64, "106751d23h47m16s"},
		{math.MinInt64, "-106751d23h47m16s"},
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Format(tt.in)).To(Equal(tt.want))
		})
	}
}

// TestRoundTrip checks that Parse reads back what Format writes for any
// positive whole number of seconds, and that Format writes the same canonical
// form for every way of writing a length of time.
func TestRoundTrip(t *testing.T) {
	g := NewWithT(t)
	rng := mathrand.New(mathrand.NewPCG(3, 4))
	durations := []time.Duration{time.Second, time.Minute, time.Hour, day, day - time.Second, maxDuration, maxDuration - time.Second}
	for range 5000 {
		// Spread the magnitudes: seconds, hours, years, centuries.
		limit := int64(maxDuration / time.Second)
		limit >>= rng.IntN(33) // limit is some 2^33.
		durations = append(durations, time.Duration(rng.Int64N(limit)+1)*time.Second)
	}
	for _, d := range durations {
		s := Format(d)
		got, err := Parse(s)
		g.Expect(err).NotTo(HaveOccurred(), "Parse(Format(%d))", d)
		g.Expect(got).To(Equal(d), "Parse(%q)", s)
	}

	for range 5000 {
		var b strings.Builder
		var want time.Duration
		for _, u := range units {
			if rng.IntN(2) == 0 {
				continue
			}
			n := rng.Int64N(1000)
			b.WriteString(strconv.FormatInt(n, 10) + u.name)
			want += time.Duration(n) * u.size
		}
		s := v1alpha1.Duration(b.String())
		got, err := Parse(s)
		if want == 0 {
			g.Expect(err).To(HaveOccurred(), "Parse(%q)", s)
			continue
		}
		g.Expect(err).NotTo(HaveOccurred(), "Parse(%q)", s)
		g.Expect(got).To(Equal(want), "Parse(%q)", s)
		canonical := Format(got)
		again, err := Parse(canonical)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(again).To(Equal(got))
		g.Expect(Format(again)).To(Equal(canonical))
	}
}

// crdRule is the validation the API server applies to a Duration field,
// read from the kubebuilder markers on v1alpha1.Duration so that this test
// notices when they change.
type crdRule struct {
	minLen, maxLen int
	pattern        *regexp.Regexp
	nonZero        *regexp.Regexp
}

func loadCRDRule(tb testing.TB) crdRule {
	tb.Helper()
	src, err := os.ReadFile("../../api/v1alpha1/common_types.go")
	if err != nil {
		tb.Fatal(err)
	}
	text := string(src)
	end := strings.Index(text, "\ntype Duration string")
	if end < 0 {
		tb.Fatal("type Duration not found in common_types.go")
	}
	start := strings.LastIndex(text[:end], "\n\n")
	markers := text[start:end]
	find := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(markers)
		if m == nil {
			tb.Fatalf("marker %s not found on type Duration", re)
		}
		return m[1]
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			tb.Fatal(err)
		}
		return n
	}
	return crdRule{
		minLen:  atoi(find(`\+kubebuilder:validation:MinLength=(\d+)`)),
		maxLen:  atoi(find(`\+kubebuilder:validation:MaxLength=(\d+)`)),
		pattern: regexp.MustCompile(find("\\+kubebuilder:validation:Pattern=`([^`]*)`")),
		nonZero: regexp.MustCompile(find(`XValidation:rule="self\.matches\('([^']*)'\)"`)),
	}
}

// accepts reports whether the API server would accept s.
func (r crdRule) accepts(s string) bool {
	n := len([]rune(s))
	return n >= r.minLen && n <= r.maxLen && r.pattern.MatchString(s) && r.nonZero.MatchString(s)
}

// grammar is the syntax Parse accepts, before the checks on the total.
var grammar = regexp.MustCompile(`^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$`)

// checkAgreesWithCRD fails if the API server would accept s but Parse
// refuses it for any reason but size, or if Parse accepts what its grammar
// does not allow.
func checkAgreesWithCRD(g Gomega, rule crdRule, s string) {
	d, err := Parse(v1alpha1.Duration(s))
	if rule.accepts(s) && err != nil {
		g.ExpectWithOffset(1, err).To(MatchError(ContainSubstring("too large")), "the CRD accepts %q", s)
	}
	if err == nil {
		g.ExpectWithOffset(1, s).To(MatchRegexp(grammar.String()))
		g.ExpectWithOffset(1, d).To(BeNumerically(">", 0))
		g.ExpectWithOffset(1, d%time.Second).To(BeZero())
		again, err := Parse(Format(d))
		g.ExpectWithOffset(1, err).NotTo(HaveOccurred(), "Parse(Format(Parse(%q)))", s)
		g.ExpectWithOffset(1, again).To(Equal(d), "Parse(Format(Parse(%q)))", s)
	}
}

func TestAgreesWithCRD(t *testing.T) {
	rule := loadCRDRule(t)
	inputs := []string{
		"30d", "12h", "1d12h", "90m", "1h30m15s", "0d1h", "0s", "0d", "1h1d", "1.5h", "",
		"99999d999999h99999999m999999999s", "99999d", "100000d", "1d 1h", "s", "1",
	}
	for _, s := range inputs {
		t.Run(s, func(t *testing.T) {
			checkAgreesWithCRD(NewWithT(t), rule, s)
		})
	}
	t.Run("the CRD accepts the documented examples", func(t *testing.T) {
		g := NewWithT(t)
		for _, s := range []string{"30d", "12h", "1d12h", "90m", "1h30m15s"} {
			g.Expect(rule.accepts(s)).To(BeTrue(), s)
		}
	})
}

// FuzzParse checks that Parse never panics, that whatever it accepts is a
// positive whole number of seconds written in its grammar that Format writes
// back, and that it accepts every value the API server would unless too
// large.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"30d", "12h", "1d12h", "90m", "1h30m15s", "0d", "", "1.5h", "30 days", "1h1d", "-1h",
		"106751d23h47m16s", "106751d23h47m17s", "99999999999999999999s", "1ms", "1µs", "h",
	} {
		f.Add(s)
	}
	rule := loadCRDRule(f)
	f.Fuzz(func(t *testing.T, s string) {
		g := NewWithT(t)
		checkAgreesWithCRD(g, rule, s)
		if _, err := Parse(v1alpha1.Duration(s)); err != nil {
			g.Expect(err.Error()).To(HavePrefix("invalid duration " + strconv.Quote(s) + ": "))
		}
	})
}
