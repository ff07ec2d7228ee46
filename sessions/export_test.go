package sessions

import "time"

// SetClock replaces c's clock, for tests that step through expiries.
func SetClock(c *Cached, now func() time.Time) { c.now = now }
