// Package token is the format of Tokenwarden's token values, shared by the
// controller that issues them, the admission webhook and the verifier.
//
// A value is <prefix><random><checksum> with nothing in between, such as
// "twt_" and 49 base62 digits for a Team token. The prefix is a base ("tw" by
// default), a letter for the token type and an underscore. Random is 256 bits
// from crypto/rand, read as a big-endian number and written as 43 base62
// digits. Checksum is the CRC-32 (IEEE) of everything before it, written as
// 6 base62 digits. Both numbers are left-padded with "0", and the digits run
// 0-9, A-Z, a-z. Each part has a reason:
//
//   - The prefix makes leaked values findable: secret scanners (GitHub secret
//     scanning, gitleaks, trufflehog) match ScannerRegex rather than guessing
//     from entropy, and a human reading a log can tell a Tokenwarden admin
//     token from a team token at a glance.
//   - The checksum lets the verifier refuse typos, truncated copies and random
//     garbage before it looks anything up, so junk costs a few nanoseconds
//     instead of a cache or API lookup. It is not a secret and proves nothing
//     about authenticity: anyone can compute it.
//   - The fixed length (the prefix plus 49) keeps checks and the scanner
//     regex simple and exact, and does not vary with the random number.
//   - Base62 has no characters that need escaping in URLs, headers, shells or
//     YAML, and together with the underscore it is all "word" characters, so
//     a double click selects the whole value.
//
// Only Hash(value) is ever stored; DisplayPrefix(value) is the non-secret
// part safe to show and log. Errors from this package never contain the
// value, so they are safe to log too.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"unsafe"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// DefaultBase is the base of the prefix of every value unless configured
// otherwise; it stands for Tokenwarden.
const DefaultBase = "tw"

// ScannerRegex matches every valid value of DefaultBase and nothing shorter
// or longer, for secret scanners. It matches some invalid values too (a bad
// checksum), which is what a scanner wants: a mistyped leak is still a leak.
const ScannerRegex = `\btw[atw]_[0-9A-Za-z]{49}\b`

const (
	// randomBytes is the number of random bytes in a value: 256 bits, so
	// guessing is hopeless and a fast hash is safe to store.
	randomBytes = 32
	// randomLen is the number of base62 digits that hold 256 bits; 62^43 is
	// just above 2^256.
	randomLen = 43
	// checksumLen is the number of base62 digits that hold a CRC-32.
	checksumLen = 6
	// bodyLen is the length of a value after its prefix.
	bodyLen = randomLen + checksumLen
	// maxBaseLen is the longest base allowed, keeping the whole prefix short
	// enough for the status' tokenPrefix field and for people to read.
	maxBaseLen = 8
)

// alphabet holds the base62 digits in ascending order. It is also ASCII
// order, so comparing equal-length base62 strings compares their numbers.
const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// digitValue maps a byte to its base62 value, or -1 if it is not a digit.
var digitValue = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

// maxRandom is the random part of 2^256-1, the largest Generate can produce.
var maxRandom = func() string {
	var b [randomBytes]byte
	for i := range b {
		b[i] = 0xff
	}
	r := encodeRandom(b)
	return string(r[:])
}()

var (
	// ErrMalformed means a value does not have the shape of a token of the
	// expected format: wrong prefix, base or type letter, wrong length, or
	// characters outside base62.
	ErrMalformed = errors.New("token: malformed value")

	// ErrChecksum means a value has the right shape but its checksum does not
	// match, as with a typo or a value someone made up.
	ErrChecksum = errors.New("token: checksum mismatch")
)

// The errors Parse returns are allocated once, so refusing garbage does not
// allocate either.
var (
	errBase     = fmt.Errorf("%w: the format's base is not 1 to %d lowercase letters or digits", ErrMalformed, maxBaseLen)
	errPrefix   = fmt.Errorf("%w: unrecognised prefix", ErrMalformed)
	errLength   = fmt.Errorf("%w: wrong length", ErrMalformed)
	errCharset  = fmt.Errorf("%w: character outside [0-9A-Za-z]", ErrMalformed)
	errRange    = fmt.Errorf("%w: random part out of range", ErrMalformed)
	errChecksum = fmt.Errorf("%w", ErrChecksum)
)

// Format is the token format of one installation. Its zero value uses
// DefaultBase.
type Format struct {
	// Base starts every prefix: 1 to 8 lowercase letters or digits. Empty
	// means DefaultBase. Installations that must tell their tokens apart, for
	// secret scanning or by eye, give each its own base.
	Base string
}

// base returns f.Base, or DefaultBase if it is empty.
func (f Format) base() string {
	if f.Base == "" {
		return DefaultBase
	}
	return f.Base
}

// Prefix returns the prefix of values of type t: the base followed by "a_"
// for Admin, "t_" for Team and "w_" for Wildcard, such as "twt_". It returns
// "" if t is not a known type or the base is invalid.
func (f Format) Prefix(t v1alpha1.ApiTokenType) string {
	base := f.base()
	letter := typeLetter(t)
	if letter == 0 || !validBase(base) {
		return ""
	}
	return base + string(letter) + "_"
}

// Generate returns a new value of type t holding 256 bits from crypto/rand.
func (f Format) Generate(t v1alpha1.ApiTokenType) (string, error) {
	if !validBase(f.base()) {
		return "", fmt.Errorf("token: invalid base %q: want 1 to %d lowercase letters or digits", f.Base, maxBaseLen)
	}
	prefix := f.Prefix(t)
	if prefix == "" {
		return "", fmt.Errorf("token: unknown token type %q", t)
	}
	var b [randomBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: reading random bytes: %w", err)
	}
	return build(prefix, b), nil
}

// Parse checks that value is a well-formed value of this format and returns
// its type. It looks nothing up, so a nil error means only that the value
// could have been issued, not that it was: the caller still looks up its
// Hash. Parse refuses a wrong prefix or base, a wrong length, characters
// outside base62 and a bad checksum, with an error wrapping ErrMalformed or
// ErrChecksum. It does not allocate.
func (f Format) Parse(value string) (v1alpha1.ApiTokenType, error) {
	base := f.base()
	if !validBase(base) {
		return "", errBase
	}
	prefixLen := len(base) + 2
	if len(value) < prefixLen || value[:len(base)] != base || value[prefixLen-1] != '_' {
		return "", errPrefix
	}
	t := letterType(value[prefixLen-2])
	if t == "" {
		return "", errPrefix
	}
	if err := checkBody(value, prefixLen); err != nil {
		return "", err
	}
	return t, nil
}

// Hash returns the digest under which a value is stored and looked up:
// "sha256:" and the 64 lowercase hex digits of the SHA-256 of value. A fast
// hash suffices because values hold 256 random bits: there is nothing to
// brute-force, unlike a password, so no salt or slow hash is needed, and the
// digest can serve as the lookup key.
func Hash(value string) string {
	var buf [hashLen]byte
	hashInto(&buf, value)
	return string(buf[:])
}

// hashPrefix starts every digest Hash returns.
const hashPrefix = "sha256:"

// hashLen is the length of every digest Hash returns.
const hashLen = len(hashPrefix) + 2*sha256.Size

// hashInto writes Hash(value) into buf without allocating.
func hashInto(buf *[hashLen]byte, value string) {
	sum := SumOf(value)
	copy(buf[:], hashPrefix)
	hex.Encode(buf[len(hashPrefix):], sum[:])
}

// Sum is the SHA-256 a digest spells out: what Hash writes in hex, and
// what a lookup keyed by digest can use without formatting a string.
type Sum = [sha256.Size]byte

// SumOf returns the SHA-256 of value, the Sum of Hash(value), without
// allocating.
func SumOf(value string) Sum {
	// Converting a string to a []byte that escapes allocates, so a value of
	// usual length is copied to the stack instead.
	var stack [128]byte
	if len(value) <= len(stack) {
		return sha256.Sum256(stack[:copy(stack[:], value)])
	}
	return sha256.Sum256([]byte(value))
}

// ParseDigest returns the Sum a digest spells out, if it is spelled exactly
// as Hash spells it: "sha256:" and 64 lowercase hex digits. Any other
// spelling could never equal a value's Hash.
func ParseDigest(digest string) (sum Sum, ok bool) {
	hexSum, found := strings.CutPrefix(digest, hashPrefix)
	if !found || len(hexSum) != 2*len(sum) {
		return sum, false
	}
	for i := range sum {
		hi, ok1 := lowerHexDigit(hexSum[2*i])
		lo, ok2 := lowerHexDigit(hexSum[2*i+1])
		if !ok1 || !ok2 {
			return Sum{}, false
		}
		sum[i] = hi<<4 | lo
	}
	return sum, true
}

// lowerHexDigit returns the value of the lowercase hex digit c.
func lowerHexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// SumsEqual compares two Sums in constant time, so a caller cannot time
// how much of a stored digest a guess matched.
func SumsEqual(a, b *Sum) bool {
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// HashMatches reports whether digest is Hash(value). It compares in constant
// time, so how long it takes tells nothing about how much of a stored digest
// a guess got right.
func HashMatches(value, digest string) bool {
	var buf [hashLen]byte
	hashInto(&buf, value)
	if len(digest) != hashLen {
		return false
	}
	var diff byte
	for i := range hashLen {
		diff |= buf[i] ^ digest[i]
	}
	return subtle.ConstantTimeByteEq(diff, 0) == 1
}

// DigestsEqual reports whether two digests Hash returned are the same, in
// constant time, for the reason HashMatches gives.
func DigestsEqual(a, b string) bool {
	return len(a) == hashLen && len(b) == hashLen && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// DisplayPrefix returns the part of value that identifies it without giving
// it away: the type prefix and the first 4 characters of the random part,
// such as "twt_7Gq2". Those 4 characters narrow 256 random bits by fewer
// than 24, but tell apart the values an installation holds well enough to
// match a leaked value or a log line to its ApiToken. It accepts any valid
// base and does not check the checksum, so a mistyped value still shows
// which token it was meant to be. It returns "" when value has no
// recognised shape.
func DisplayPrefix(value string) string {
	// The underscore ends the prefix, after a base of 1 to maxBaseLen
	// characters and the type letter; neither base nor body contains one.
	prefixLen := 0
	for i := 2; i < len(value) && i <= maxBaseLen+1; i++ {
		if value[i] == '_' {
			prefixLen = i + 1
			break
		}
	}
	if prefixLen == 0 || !validBase(value[:prefixLen-2]) || letterType(value[prefixLen-2]) == "" {
		return ""
	}
	if err := checkShape(value, prefixLen); err != nil {
		return ""
	}
	return value[:prefixLen+4]
}

// checkBody checks the part of value after its prefixLen-byte prefix: shape,
// then checksum.
func checkBody(value string, prefixLen int) error {
	if err := checkShape(value, prefixLen); err != nil {
		return err
	}
	var sum uint64
	for i := len(value) - checksumLen; i < len(value); i++ {
		sum = sum*62 + uint64(digitValue[value[i]])
	}
	if sum != uint64(crcString(value[:len(value)-checksumLen])) {
		return errChecksum
	}
	return nil
}

// checkShape checks the length, alphabet and range of the part of value after
// its prefixLen-byte prefix.
func checkShape(value string, prefixLen int) error {
	if len(value) != prefixLen+bodyLen {
		return errLength
	}
	for i := prefixLen; i < len(value); i++ {
		if digitValue[value[i]] < 0 {
			return errCharset
		}
	}
	// Equal-length base62 strings compare like their numbers.
	if value[prefixLen:prefixLen+randomLen] > maxRandom {
		return errRange
	}
	return nil
}

// build returns the value with the given prefix and random bytes.
func build(prefix string, random [randomBytes]byte) string {
	buf := make([]byte, 0, len(prefix)+bodyLen)
	buf = append(buf, prefix...)
	r := encodeRandom(random)
	buf = append(buf, r[:]...)
	c := encodeChecksum(crcString(string(buf)))
	buf = append(buf, c[:]...)
	return string(buf)
}

// encodeRandom writes b, a big-endian number, as randomLen base62 digits,
// most significant first, by long division.
func encodeRandom(b [randomBytes]byte) (out [randomLen]byte) {
	for i := randomLen - 1; i >= 0; i-- {
		var rem uint
		for j := range b {
			acc := rem<<8 | uint(b[j])
			b[j] = byte(acc / 62)
			rem = acc % 62
		}
		out[i] = alphabet[rem]
	}
	return out
}

// encodeChecksum writes c as checksumLen base62 digits; 62^6 is above 2^32.
func encodeChecksum(c uint32) (out [checksumLen]byte) {
	n := uint64(c)
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = alphabet[n%62]
		n /= 62
	}
	return out
}

// crcString returns the CRC-32 (IEEE) of s. crc32.ChecksumIEEE takes a
// []byte, and converting s would allocate on every verification, so it is
// given a read-only view of s's bytes instead: crc32 only reads them. That
// uses the package's sliced or hardware-assisted CRC, several times faster
// than a byte-at-a-time loop on the verification path.
func crcString(s string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s))) //nolint:gosec // G103: read-only view, see above.
}

// validBase reports whether base is 1 to maxBaseLen lowercase letters or
// digits.
func validBase(base string) bool {
	if len(base) == 0 || len(base) > maxBaseLen {
		return false
	}
	for i := 0; i < len(base); i++ {
		c := base[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// typeLetter returns the prefix letter of t, or 0 if t is unknown.
func typeLetter(t v1alpha1.ApiTokenType) byte {
	switch t {
	case v1alpha1.AdminTokenType:
		return 'a'
	case v1alpha1.TeamTokenType:
		return 't'
	case v1alpha1.WildcardTokenType:
		return 'w'
	}
	return 0
}

// letterType returns the type whose prefix letter is c, or "" if none.
func letterType(c byte) v1alpha1.ApiTokenType {
	switch c {
	case 'a':
		return v1alpha1.AdminTokenType
	case 't':
		return v1alpha1.TeamTokenType
	case 'w':
		return v1alpha1.WildcardTokenType
	}
	return ""
}
