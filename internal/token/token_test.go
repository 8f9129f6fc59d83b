package token

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	mathrand "math/rand/v2"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

var allTypes = []v1alpha1.ApiTokenType{
	v1alpha1.AdminTokenType,
	v1alpha1.TeamTokenType,
	v1alpha1.WildcardTokenType,
}

// refEncode writes n as width base62 digits with math/big, independently of
// encodeRandom and encodeChecksum.
func refEncode(n *big.Int, width int) string {
	n = new(big.Int).Set(n)
	out := make([]byte, width)
	base, rem := big.NewInt(62), new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, rem)
		out[i] = alphabet[rem.Int64()]
	}
	if n.Sign() != 0 {
		panic(fmt.Sprintf("%d does not fit %d digits", n, width))
	}
	return string(out)
}

// refDecode reads base62 digits with math/big.
func refDecode(s string) *big.Int {
	n := new(big.Int)
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(alphabet, s[i])
		if d < 0 {
			panic(fmt.Sprintf("%q is not base62", s))
		}
		n.Mul(n, big.NewInt(62))
		n.Add(n, big.NewInt(int64(d)))
	}
	return n
}

// refValue builds a value from its parts with the reference encoder and
// hash/crc32, independently of build.
func refValue(prefix string, random []byte) string {
	s := prefix + refEncode(new(big.Int).SetBytes(random), randomLen)
	return s + refEncode(big.NewInt(int64(crc32.ChecksumIEEE([]byte(s)))), checksumLen)
}

// checkValid fails unless value is exactly what the reference builds from
// prefix and the random bytes value holds.
func checkValid(g Gomega, value, prefix string) {
	g.ExpectWithOffset(1, value).To(HaveLen(len(prefix)+49), "length")
	g.ExpectWithOffset(1, value).To(HavePrefix(prefix), "prefix")
	n := refDecode(value[len(prefix) : len(prefix)+randomLen])
	g.ExpectWithOffset(1, n.BitLen()).To(BeNumerically("<=", 256), "random part fits 256 bits")
	random := n.FillBytes(make([]byte, randomBytes))
	g.ExpectWithOffset(1, value).To(Equal(refValue(prefix, random)), "checksum and padding")
}

// value returns a value built from prefix and the given random bytes.
func value(prefix string, fill func(i int) byte) string {
	var b [randomBytes]byte
	for i := range b {
		b[i] = fill(i)
	}
	return build(prefix, b)
}

func TestPrefix(t *testing.T) {
	tests := []struct {
		name string
		base string
		typ  v1alpha1.ApiTokenType
		want string
	}{
		{"admin", "tw", v1alpha1.AdminTokenType, "twa_"},
		{"team", "tw", v1alpha1.TeamTokenType, "twt_"},
		{"wildcard", "tw", v1alpha1.WildcardTokenType, "tww_"},
		{"zero base is DefaultBase", "", v1alpha1.TeamTokenType, "twt_"},
		{"other base", "acme1", v1alpha1.AdminTokenType, "acme1a_"},
		{"one-character base", "x", v1alpha1.WildcardTokenType, "xw_"},
		{"eight-character base", "abcd1234", v1alpha1.TeamTokenType, "abcd1234t_"},
		{"unknown type", "tw", "Root", ""},
		{"empty type", "tw", "", ""},
		{"type in wrong case", "tw", "team", ""},
		{"base too long", "abcde12345", v1alpha1.TeamTokenType, ""},
		{"uppercase base", "TW", v1alpha1.TeamTokenType, ""},
		{"base with underscore", "t_w", v1alpha1.TeamTokenType, ""},
		{"base with dash", "t-w", v1alpha1.TeamTokenType, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Format{Base: tt.base}.Prefix(tt.typ)).To(Equal(tt.want))
		})
	}
}

func TestGenerateParseRoundTrip(t *testing.T) {
	for _, base := range []string{"", DefaultBase, "acme", "x", "abcd1234", "t", "twt", "0"} {
		for _, typ := range allTypes {
			t.Run(fmt.Sprintf("%s/%s", base, typ), func(t *testing.T) {
				g := NewWithT(t)
				f := Format{Base: base}
				prefix := f.Prefix(typ)
				g.Expect(prefix).NotTo(BeEmpty())

				v, err := f.Generate(typ)
				g.Expect(err).NotTo(HaveOccurred())
				checkValid(g, v, prefix)

				got, err := f.Parse(v)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(got).To(Equal(typ))
				g.Expect(DisplayPrefix(v)).To(Equal(v[:len(prefix)+4]))
			})
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name string
		base string
		typ  v1alpha1.ApiTokenType
		want string
	}{
		{"unknown type", "tw", "Root", `unknown token type "Root"`},
		{"empty type", "tw", "", `unknown token type ""`},
		{"invalid base", "Acme", v1alpha1.TeamTokenType, `invalid base "Acme"`},
		{"base too long", "abcdefghi", v1alpha1.TeamTokenType, `invalid base "abcdefghi"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			v, err := Format{Base: tt.base}.Generate(tt.typ)
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
			g.Expect(v).To(BeEmpty())
		})
	}
}

func TestGenerateUnique(t *testing.T) {
	g := NewWithT(t)
	const n = 20000
	seen := make(map[string]bool, n)
	var digits [256]int
	for range n {
		v, err := Format{}.Generate(v1alpha1.TeamTokenType)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(seen[v]).To(BeFalse(), "generated twice")
		seen[v] = true
		for i := len("twt_"); i < len(v); i++ {
			digits[v[i]]++
		}
	}
	// Each digit should appear about n*49/62, some 15800 times; a broken
	// encoder (only digits, a stuck position) falls far short.
	for i := 0; i < len(alphabet); i++ {
		g.Expect(digits[alphabet[i]]).To(BeNumerically(">", n*49/62/2), "digit %q", alphabet[i])
	}
}

func TestParseRejects(t *testing.T) {
	f := Format{}
	valid := value("twt_", func(i int) byte { return byte(i * 7) })
	withCRC := func(s string) string {
		c := encodeChecksum(crcString(s))
		return s + string(c[:])
	}
	replace := func(s string, i int, c byte) string {
		return s[:i] + string(c) + s[i+1:]
	}
	other, err := Format{Base: "acme"}.Generate(v1alpha1.TeamTokenType)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		format Format
		value  string
		want   error
	}{
		{"empty", f, "", ErrMalformed},
		{"prefix only", f, "twt_", ErrMalformed},
		{"short base", f, "t", ErrMalformed},
		{"another base", f, other, ErrMalformed},
		{"base changed", f, "tx" + valid[2:], ErrMalformed},
		{"uppercase prefix", f, "TWT_" + valid[4:], ErrMalformed},
		{"unknown type letter", f, replace(valid, 2, 'x'), ErrMalformed},
		{"uppercase type letter", f, replace(valid, 2, 'T'), ErrMalformed},
		{"no underscore", f, replace(valid, 3, '-'), ErrMalformed},
		{"underscore missing", f, "twt" + valid[4:], ErrMalformed},
		{"one character short", f, valid[:len(valid)-1], ErrMalformed},
		{"one character long", f, valid + "0", ErrMalformed},
		{"trailing newline", f, valid + "\n", ErrMalformed},
		{"leading space", f, " " + valid, ErrMalformed},
		{"Bearer scheme left on", f, "Bearer " + valid, ErrMalformed},
		{"twice", f, valid + valid, ErrMalformed},
		{"dash in random part", f, replace(valid, 10, '-'), ErrMalformed},
		{"underscore in random part", f, replace(valid, 10, '_'), ErrMalformed},
		{"plus in checksum", f, replace(valid, len(valid)-1, '+'), ErrMalformed},
		{"NUL byte", f, replace(valid, 20, 0), ErrMalformed},
		{"high byte", f, replace(valid, 20, 0xff), ErrMalformed},
		{"multi-byte character", f, valid[:20] + "é" + valid[22:], ErrMalformed},
		{"random part above 2^256-1", f, withCRC("twt_" + strings.Repeat("z", randomLen)), ErrMalformed},
		{"random part just above 2^256-1", f, withCRC("twt_" + maxRandom[:randomLen-1] + string(maxRandom[randomLen-1]+1)), ErrMalformed},
		{"invalid format base", Format{Base: "TW"}, valid, ErrMalformed},
		{"format base too long", Format{Base: "abcdefghi"}, valid, ErrMalformed},
		{"random character changed", f, replace(valid, 10, valid[10]^1), ErrChecksum},
		{"checksum character changed", f, replace(valid, len(valid)-1, valid[len(valid)-1]^1), ErrChecksum},
		{"checksum all zeros", f, valid[:len(valid)-checksumLen] + "000000", ErrChecksum},
		{"checksum above 2^32", f, valid[:len(valid)-checksumLen] + "zzzzzz", ErrChecksum},
		{"type letter changed", f, replace(valid, 2, 'a'), ErrChecksum},
		{"base of another format with this checksum", Format{Base: "twx"}, "twxt_" + valid[4:], ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			typ, err := tt.format.Parse(tt.value)
			g.Expect(err).To(MatchError(tt.want))
			g.Expect(typ).To(BeEmpty())
			other := ErrChecksum
			if errors.Is(tt.want, ErrChecksum) {
				other = ErrMalformed
			}
			g.Expect(errors.Is(err, other)).To(BeFalse(), "wraps only %v", tt.want)
			if len(tt.value) > 8 {
				g.Expect(err.Error()).NotTo(ContainSubstring(tt.value[4:]), "error leaks the value")
			}
		})
	}
}

// TestParseDetectsSingleEdits checks that every one-character substitution
// and every swap of neighbours is refused: CRC-32 catches any error confined
// to 32 consecutive bits, and a changed checksum digit changes its number.
func TestParseDetectsSingleEdits(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(string(typ), func(t *testing.T) {
			g := NewWithT(t)
			v, err := Format{}.Generate(typ)
			g.Expect(err).NotTo(HaveOccurred())
			b := []byte(v)
			for i := range b {
				orig := b[i]
				for c := 0; c < 256; c++ {
					if byte(c) == orig {
						continue
					}
					b[i] = byte(c)
					_, err := Format{}.Parse(string(b))
					g.Expect(err).To(HaveOccurred(), "byte %d set to %q", i, c)
				}
				b[i] = orig
			}
			for i := 0; i+1 < len(b); i++ {
				if b[i] == b[i+1] {
					continue
				}
				b[i], b[i+1] = b[i+1], b[i]
				_, err := Format{}.Parse(string(b))
				g.Expect(err).To(HaveOccurred(), "bytes %d and %d swapped", i, i+1)
				b[i], b[i+1] = b[i+1], b[i]
			}
		})
	}
}

// TestKnownValues pins the format: the controller, webhook and verifier may
// run different versions, so any change here breaks issued tokens. The
// values are assembled from pieces so that secret scanners do not flag this
// file.
func TestKnownValues(t *testing.T) {
	tests := []struct {
		name     string
		prefix   string
		fill     func(i int) byte
		random   string
		checksum string
	}{
		{"zero", "twt_", func(int) byte { return 0 }, strings.Repeat("0", 43), "1SpWa8"},
		{"one", "twa_", func(i int) byte { return byte(i / 31) }, strings.Repeat("0", 42) + "1", "1CGitD"},
		{"maximum", "tww_", func(int) byte { return 0xff }, "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1", "41UH1B"},
		{"counting", "acmet_", func(i int) byte { return byte(i) }, "003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf", "2jp6NK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			want := tt.prefix + tt.random + tt.checksum
			g.Expect(value(tt.prefix, tt.fill)).To(Equal(want))
			var b [randomBytes]byte
			for i := range b {
				b[i] = tt.fill(i)
			}
			g.Expect(refValue(tt.prefix, b[:])).To(Equal(want))
		})
	}
}

func TestEncodingMatchesReference(t *testing.T) {
	g := NewWithT(t)
	g.Expect(maxRandom).To(Equal(refEncode(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)), randomLen)))
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	for range 2000 {
		var b [randomBytes]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		// Leading zero bytes exercise the padding.
		for i := range rng.IntN(randomBytes) {
			b[i] = 0
		}
		r := encodeRandom(b)
		g.Expect(string(r[:])).To(Equal(refEncode(new(big.Int).SetBytes(b[:]), randomLen)))

		c := rng.Uint32()
		e := encodeChecksum(c)
		g.Expect(string(e[:])).To(Equal(refEncode(big.NewInt(int64(c)), checksumLen)))

		s := string(b[:rng.IntN(randomBytes+1)])
		g.Expect(crcString(s)).To(Equal(crc32.ChecksumIEEE([]byte(s))))
	}
	for _, c := range []uint32{0, 1, 61, 62, 1<<32 - 1} {
		e := encodeChecksum(c)
		g.Expect(string(e[:])).To(Equal(refEncode(big.NewInt(int64(c)), checksumLen)))
	}
}

func TestHash(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{"empty", "", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "abc", "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Hash(tt.value)).To(Equal(tt.want))
		})
	}

	t.Run("generated value", func(t *testing.T) {
		g := NewWithT(t)
		v, err := Format{}.Generate(v1alpha1.AdminTokenType)
		g.Expect(err).NotTo(HaveOccurred())
		sum := sha256.Sum256([]byte(v))
		g.Expect(Hash(v)).To(Equal("sha256:" + hex.EncodeToString(sum[:])))
		// The status field's validation pattern.
		g.Expect(Hash(v)).To(MatchRegexp(`^sha256:[0-9a-f]{64}$`))
	})
}

func TestHashMatches(t *testing.T) {
	v, err := Format{}.Generate(v1alpha1.TeamTokenType)
	if err != nil {
		t.Fatal(err)
	}
	digest := Hash(v)
	tests := []struct {
		name   string
		value  string
		digest string
		want   bool
	}{
		{"match", v, digest, true},
		{"empty value", "", Hash(""), true},
		{"other value", otherLast(v), digest, false},
		{"empty digest", v, "", false},
		{"uppercase hex", v, "sha256:" + strings.ToUpper(digest[7:]), false},
		{"no algorithm", v, digest[7:], false},
		{"other algorithm", v, "sha512:" + digest[7:], false},
		{"truncated", v, digest[:len(digest)-1], false},
		{"extended", v, digest + "0", false},
		{"last digit changed", v, digest[:len(digest)-1] + string(digest[len(digest)-1]^1), false},
		{"value in place of digest", v, v, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(HashMatches(tt.value, tt.digest)).To(Equal(tt.want))
		})
	}
}

func TestDisplayPrefix(t *testing.T) {
	valid := value("twt_", func(i int) byte { return byte(i*13 + 5) })
	acme := value("acme1234w_", func(i int) byte { return byte(i * 3) })
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{"default base", valid, valid[:8]},
		{"eight-character base", acme, acme[:14]},
		{"one-character base", value("xa_", func(i int) byte { return 0xff }), "xa_yhjs"},
		{"bad checksum still shows", valid[:len(valid)-1] + string(valid[len(valid)-1]^1), valid[:8]},
		{"empty", "", ""},
		{"prefix only", "twt_", ""},
		{"short", valid[:len(valid)-1], ""},
		{"long", valid + "0", ""},
		{"no underscore", "twtx" + valid[4:], ""},
		{"no base", "t_" + valid[4:] + "00", ""},
		{"base too long", "abcdefghit_" + valid[4:], ""},
		{"uppercase base", "TWt_" + valid[4:], ""},
		{"unknown type letter", "twx_" + valid[4:], ""},
		{"character outside base62", valid[:20] + "-" + valid[21:], ""},
		{"random part out of range", "twt_" + strings.Repeat("z", 49), ""},
		{"Bearer scheme left on", "Bearer " + valid, ""},
		{"underscore early", "_" + valid[1:], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(DisplayPrefix(tt.value)).To(Equal(tt.want))
		})
	}
}

func TestDisplayPrefixFitsStatus(t *testing.T) {
	g := NewWithT(t)
	v, err := Format{Base: "abcd1234"}.Generate(v1alpha1.WildcardTokenType)
	g.Expect(err).NotTo(HaveOccurred())
	// status.tokenPrefix has MaxLength 32.
	g.Expect(len(DisplayPrefix(v))).To(BeNumerically("<=", 32))
}

func TestScannerRegex(t *testing.T) {
	re := regexp.MustCompile(ScannerRegex)
	for _, typ := range allTypes {
		t.Run(string(typ), func(t *testing.T) {
			g := NewWithT(t)
			v, err := Format{}.Generate(typ)
			g.Expect(err).NotTo(HaveOccurred())
			for _, text := range []string{
				v,
				"Authorization: Bearer " + v + "\r\n",
				"TOKEN=" + v + "\n",
				`{"token":"` + v + `"}`,
				"token: '" + v + "'",
				"https://api.example.com/?access_token=" + v + "&x=1",
			} {
				g.Expect(re.FindString(text)).To(Equal(v), "in %q", text)
			}
			for _, text := range []string{
				v[:len(v)-1],
				v + "0",
				"x" + v,
				"acme" + v,
			} {
				g.Expect(re.MatchString(text)).To(BeFalse(), "in %q", text)
			}
		})
	}
	t.Run("other base", func(t *testing.T) {
		g := NewWithT(t)
		v, err := Format{Base: "acme"}.Generate(v1alpha1.TeamTokenType)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(re.MatchString(v)).To(BeFalse())
	})
}

func TestParseDoesNotAllocate(t *testing.T) {
	g := NewWithT(t)
	v, err := Format{}.Generate(v1alpha1.TeamTokenType)
	g.Expect(err).NotTo(HaveOccurred())
	for _, s := range []string{v, "", "garbage", v[:len(v)-1] + "!", v[:len(v)-1] + string(v[len(v)-1]^1)} {
		g.Expect(testing.AllocsPerRun(100, func() { _, _ = Format{}.Parse(s) })).To(BeZero(), "Parse(%q)", s)
		g.Expect(testing.AllocsPerRun(100, func() { _ = DisplayPrefix(s) })).To(BeZero(), "DisplayPrefix(%q)", s)
		g.Expect(testing.AllocsPerRun(100, func() { _ = HashMatches(s, "sha256:00") })).To(BeZero(), "HashMatches(%q)", s)
	}
}

// FuzzParse checks that Parse never panics and accepts exactly the values
// Generate could produce, and that building a value from any random bytes
// round-trips.
func FuzzParse(f *testing.F) {
	for _, base := range []string{"", "acme"} {
		for _, typ := range allTypes {
			v, err := Format{Base: base}.Generate(typ)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(v)
			f.Add(v[:len(v)-1])
			f.Add(v + "0")
			f.Add(v[:len(v)-1] + string(v[len(v)-1]^1))
		}
	}
	for _, s := range []string{"", "twt_", "tw", "_", "twx_", "twt_" + strings.Repeat("z", 49), "twt_" + strings.Repeat("\xff", 49), "Bearer x"} {
		f.Add(s)
	}
	formats := []Format{{}, {Base: "acme"}}
	f.Fuzz(func(t *testing.T, s string) {
		g := NewWithT(t)
		for _, format := range formats {
			typ, err := format.Parse(s)
			if err != nil {
				g.Expect(errors.Is(err, ErrMalformed)).NotTo(Equal(errors.Is(err, ErrChecksum)), "wraps exactly one: %v", err)
				g.Expect(typ).To(BeEmpty())
				continue
			}
			prefix := format.Prefix(typ)
			g.Expect(prefix).NotTo(BeEmpty())
			checkValid(g, s, prefix)
			g.Expect(DisplayPrefix(s)).To(Equal(s[:len(prefix)+4]))
		}
		if d := DisplayPrefix(s); d != "" {
			g.Expect(s).To(HavePrefix(d))
		}

		// Build a value from bytes the fuzzer chose and check it round-trips.
		random := sha256.Sum256([]byte(s))
		typ := allTypes[len(s)%len(allTypes)]
		prefix := Format{}.Prefix(typ)
		v := build(prefix, random)
		g.Expect(v).To(Equal(refValue(prefix, random[:])))
		got, err := Format{}.Parse(v)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(typ))
	})
}

func BenchmarkParseAndHash(b *testing.B) {
	v, err := Format{}.Generate(v1alpha1.TeamTokenType)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (Format{}).Parse(v); err != nil {
			b.Fatal(err)
		}
		_ = Hash(v)
	}
}

func BenchmarkParseGarbage(b *testing.B) {
	v, err := Format{}.Generate(v1alpha1.TeamTokenType)
	if err != nil {
		b.Fatal(err)
	}
	v = v[:len(v)-1] + string(v[len(v)-1]^1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (Format{}).Parse(v); err == nil {
			b.Fatal("accepted a bad checksum")
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (Format{}).Generate(v1alpha1.TeamTokenType); err != nil {
			b.Fatal(err)
		}
	}
}

// otherLast changes the last character of v, whatever it is.
func otherLast(v string) string {
	last := "0"
	if strings.HasSuffix(v, "0") {
		last = "1"
	}
	return v[:len(v)-1] + last
}

func TestSumOf(t *testing.T) {
	value, err := Format{}.Generate(v1alpha1.TeamTokenType)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		value string
	}{
		{"a value", value},
		{"empty", ""},
		{"longer than the stack buffer", strings.Repeat("x", 200)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			sum, ok := ParseDigest(Hash(tt.value))
			g.Expect(ok).To(BeTrue(), "Hash's spelling parses")
			g.Expect(SumOf(tt.value)).To(Equal(sum))
			g.Expect(SumOf(tt.value)).To(Equal(sha256.Sum256([]byte(tt.value))))
		})
	}
}

func TestParseDigest(t *testing.T) {
	digest := Hash("x")
	hexPart := digest[len("sha256:"):]
	for _, tt := range []struct {
		name   string
		digest string
		want   bool
	}{
		{"as Hash spells it", digest, true},
		{"uppercase hex", "sha256:" + strings.ToUpper(hexPart), false},
		{"another algorithm", "sha512:" + hexPart, false},
		{"no prefix", hexPart, false},
		{"one digit short", digest[:len(digest)-1], false},
		{"one digit long", digest + "0", false},
		{"not hex", digest[:len(digest)-1] + "g", false},
		{"empty", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			sum, ok := ParseDigest(tt.digest)
			g.Expect(ok).To(Equal(tt.want))
			if tt.want {
				g.Expect(sum).To(Equal(SumOf("x")))
			}
		})
	}
}

func TestSumsEqual(t *testing.T) {
	sum := SumOf("x")
	lastDiffers, firstDiffers := sum, sum
	lastDiffers[len(sum)-1] ^= 1
	firstDiffers[0] ^= 0x80
	for _, tt := range []struct {
		name string
		a, b Sum
		want bool
	}{
		{"equal", sum, sum, true},
		{"last byte differs", sum, lastDiffers, false},
		{"first byte differs", sum, firstDiffers, false},
		{"zero", Sum{}, Sum{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(SumsEqual(&tt.a, &tt.b)).To(Equal(tt.want))
		})
	}
}
