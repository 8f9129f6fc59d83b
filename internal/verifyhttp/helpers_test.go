package verifyhttp

import "time"

// t0 is the instant every test starts at.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
