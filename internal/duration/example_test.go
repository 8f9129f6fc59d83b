package duration_test

import (
	"fmt"
	"time"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/duration"
)

func ExampleParse() {
	for _, s := range []v1alpha1.Duration{"1d12h", "90m", "0d", "1.5h", "30 days", "1h1d", "99999999999s"} {
		d, err := duration.Parse(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(d)
	}
	// Output:
	// 36h0m0s
	// 1h30m0s
	// invalid duration "0d": must be positive
	// invalid duration "1.5h": unexpected '.' at offset 1; fractions are not allowed, use a smaller unit instead (1h30m, not 1.5h)
	// invalid duration "30 days": unexpected ' ' at offset 2; spaces are not allowed (1d12h, not 1d 12h)
	// invalid duration "1h1d": unit "d" at offset 3 comes after "h"; the units must come in the order d, h, m, s
	// invalid duration "99999999999s": too large; the most is 106751d23h47m16s
}

func ExampleFormat() {
	fmt.Println(duration.Format(36 * time.Hour))
	fmt.Println(duration.Format(90 * time.Minute))
	fmt.Println(duration.Format(0))
	// Output:
	// 1d12h
	// 1h30m
	// 0s
}
