// Package duration reads and writes v1alpha1.Duration strings such as "30d",
// "12h", "1d12h", "90m" and "1h30m15s": whole days, hours, minutes and
// seconds, in that order, each optional but at least one present.
//
// Go's time.ParseDuration is not used because it has no days, which token
// lifetimes are usually counted in, and accepts fractions, signs and units
// below a second that would make expiry inexact or negative.
package duration

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// day is the length of the "d" unit: always 24 hours, as lifetimes are
// counted in elapsed time, not calendar days.
const day = 24 * time.Hour

// units are the units of a Duration, in the order they must appear.
var units = [...]struct {
	name string
	size time.Duration
}{
	{"d", day},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
}

// Parse returns the length of time s stands for. It refuses, with an error
// that quotes s and says what is wrong: an empty string, a number without a
// unit or a unit without a number, units other than d, h, m and s, units out
// of order or repeated, fractions, signs, spaces, a zero total, and totals
// too large for a time.Duration (over 106751d23h47m16s). Leading zeros, zero
// components and components of any size, such as "007h", "0d1h" or "90m",
// are accepted; the API server's validation limits their digits.
func Parse(s v1alpha1.Duration) (time.Duration, error) {
	str := string(s)
	fail := func(format string, args ...any) (time.Duration, error) {
		return 0, fmt.Errorf("invalid duration %q: %s", str, fmt.Sprintf(format, args...))
	}
	if str == "" {
		return fail(`empty; want whole days, hours, minutes and seconds in that order, such as "30d", "12h" or "1h30m"`)
	}

	var total time.Duration
	next := 0 // index in units of the first unit still allowed.
	var seen [len(units)]bool
	for pos := 0; pos < len(str); {
		start := pos
		for pos < len(str) && isDigit(str[pos]) {
			pos++
		}
		number := str[start:pos]
		if number == "" {
			if isLetter(str[pos]) {
				return fail("unit %q at offset %d has no number before it", letters(str, pos), pos)
			}
			return fail("%s", unexpected(str, pos))
		}
		if pos == len(str) {
			return fail("number %s at offset %d has no unit; end it with d, h, m or s", number, start)
		}
		if !isLetter(str[pos]) {
			return fail("%s", unexpected(str, pos))
		}
		name := letters(str, pos)
		k := unitIndex(name)
		switch {
		case k < 0:
			return fail("unknown unit %q at offset %d; use d, h, m or s", name, pos)
		case seen[k]:
			return fail("unit %q appears more than once", name)
		case k < next:
			return fail("unit %q at offset %d comes after %q; the units must come in the order d, h, m, s", name, pos, units[next-1].name)
		}
		seen[k] = true
		next = k + 1
		pos += len(name)

		n, ok := atoi(number)
		if !ok || n > math.MaxInt64/int64(units[k].size) {
			return fail("too large; the most is %s", Format(math.MaxInt64))
		}
		part := time.Duration(n) * units[k].size
		if total > math.MaxInt64-part {
			return fail("too large; the most is %s", Format(math.MaxInt64))
		}
		total += part
	}
	if total == 0 {
		return fail("must be positive")
	}
	return total, nil
}

// Format returns d in the canonical form Parse reads: each unit below the
// size of the one before it and zero units left out, such as "1d12h" for 36
// hours, "1h30m" for 90 minutes, and "0s" for zero. It truncates d toward
// zero to whole seconds, since Duration has no smaller unit. A negative d is
// written with a leading "-" so it is not silently changed; Parse refuses it,
// as it refuses "0s". Days above 99999 (some 273 years) are written in full,
// although a Duration in an object may hold at most five digits of days.
func Format(d time.Duration) v1alpha1.Duration {
	// Work in uint64 so that the negation of math.MinInt64 fits.
	magnitude := uint64(d)
	if d < 0 {
		magnitude = -magnitude
	}
	secs := magnitude / uint64(time.Second)
	if secs == 0 {
		return "0s"
	}
	buf := make([]byte, 0, len("-106751d23h47m16s"))
	if d < 0 {
		buf = append(buf, '-')
	}
	for _, u := range units {
		size := uint64(u.size / time.Second)
		if n := secs / size; n > 0 {
			buf = strconv.AppendUint(buf, n, 10)
			buf = append(buf, u.name...)
			secs %= size
		}
	}
	return v1alpha1.Duration(buf)
}

// unexpected describes the character of s at pos, which belongs to no number
// or unit, with a hint for the usual mistakes.
func unexpected(s string, pos int) string {
	var hint string
	switch s[pos] {
	case '.', ',':
		hint = "; fractions are not allowed, use a smaller unit instead (1h30m, not 1.5h)"
	case '-', '+':
		hint = "; signs are not allowed, a duration is always positive"
	case ' ', '\t', '\n', '\r':
		hint = "; spaces are not allowed (1d12h, not 1d 12h)"
	}
	r, _ := utf8.DecodeRuneInString(s[pos:])
	return fmt.Sprintf("unexpected %q at offset %d%s", r, pos, hint)
}

// letters returns the run of ASCII letters at the start of s[pos:].
func letters(s string, pos int) string {
	end := pos
	for end < len(s) && isLetter(s[end]) {
		end++
	}
	return s[pos:end]
}

// unitIndex returns the index in units of name, or -1.
func unitIndex(name string) int {
	for i, u := range units {
		if u.name == name {
			return i
		}
	}
	return -1
}

// atoi converts a run of ASCII digits, reporting false if it exceeds
// math.MaxInt64.
func atoi(digits string) (int64, bool) {
	var n int64
	for i := 0; i < len(digits); i++ {
		d := int64(digits[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
