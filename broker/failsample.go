package broker

import (
	"sync"
	"time"
)

// Recording failed sign-ins is bounded per connection: at most
// failureRecordBurst a failureRecordWindow on each node.
const (
	failureRecordWindow = time.Minute
	failureRecordBurst  = 60
)

// failureSample decides which failed sign-ins are written (the
// authentication.failed event, its webhook deliveries and the audit row).
// A connection's ACS and callback take posts from anyone, and a response
// that parses but fails verification (unsigned, an unknown InResponseTo, a
// bad signature) is recorded as the tenant's failure: unbounded, each such
// post from anyone wrote two rows and a webhook delivery, within only the
// per-address limit. A real IdP's failures come in the same few kinds, so
// a minute's first ones tell the admin what is wrong; the rest are still
// logged and counted. The map holds only the connections that failed in
// the current window.
type failureSample struct {
	mu     sync.Mutex
	start  time.Time
	counts map[string]int
}

// allow reports whether a failure of connection id at now is recorded,
// and whether it is the window's first that is not (worth a log line).
func (s *failureSample) allow(id string, now time.Time) (record, first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil || now.Sub(s.start) >= failureRecordWindow || now.Before(s.start) {
		s.start, s.counts = now, map[string]int{}
	}
	n := s.counts[id]
	if n > failureRecordBurst {
		return false, false
	}
	s.counts[id] = n + 1
	return n < failureRecordBurst, n == failureRecordBurst
}
