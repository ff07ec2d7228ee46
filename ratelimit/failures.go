package ratelimit

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// maxBlocked bounds the addresses a FailureLimit remembers on one node; a
// flood from more is cleared and learnt again, one round trip each.
const maxBlocked = 10_000

// FailureLimit is a budget spent only by refused credentials (a wrong API
// key, say), per the rule's key (a client address). A budget spent by every
// request would be shared by all the honest callers behind one address; one
// spent by none lets anyone try keys, each a database lookup, as fast as it
// can. Once an address has used it up, this node refuses that address with
// a 429 before looking anything up, until the budget refills; other nodes
// learn it at their next failure from that address.
type FailureLimit struct {
	guard *Guard
	rule  Rule
	now   func() time.Time

	mu      sync.Mutex
	blocked map[string]time.Time
}

// FailureLimit returns the failure budget of rule, or nil (which checks
// nothing) when the rule or the Guard is not set up.
func (g *Guard) FailureLimit(rule Rule) *FailureLimit {
	if g == nil || g.limiter == nil || !rule.Enabled() || rule.Key == nil {
		return nil
	}
	return &FailureLimit{guard: g, rule: rule, now: time.Now, blocked: make(map[string]time.Time)}
}

// Check returns the 429 of a request whose key this node knows to have
// used up its budget, or nil. It asks nothing of the limiter.
func (f *FailureLimit) Check(c echo.Context) error {
	if f == nil {
		return nil
	}
	key, ok := f.rule.Key(c)
	if !ok || key == "" {
		return nil
	}
	now := f.now()
	f.mu.Lock()
	until, found := f.blocked[key]
	if found && !now.Before(until) {
		delete(f.blocked, key)
		found = false
	}
	f.mu.Unlock()
	if !found {
		return nil
	}
	return f.refuse(c, until.Sub(now))
}

// Failed spends one failure of the request's key and returns the 429 to
// answer instead of the caller's own refusal once the budget is used up,
// or nil. The limiter failing lets the failure go uncounted.
func (f *FailureLimit) Failed(c echo.Context) error {
	if f == nil {
		return nil
	}
	key, ok := f.rule.Key(c)
	if !ok || key == "" {
		return nil
	}
	allowed, retry := f.guard.Check(c.Request().Context(), f.rule, key)
	if allowed {
		return nil
	}
	f.mu.Lock()
	if len(f.blocked) >= maxBlocked {
		clear(f.blocked)
	}
	f.blocked[key] = f.now().Add(retry)
	f.mu.Unlock()
	return f.refuse(c, retry)
}

func (f *FailureLimit) refuse(c echo.Context, retry time.Duration) error {
	secs := retrySeconds(retry)
	c.Response().Header().Set(HeaderRetryAfter, strconv.Itoa(secs))
	return &echo.HTTPError{
		Code: http.StatusTooManyRequests,
		Message: fmt.Sprintf("too many refused credentials from your address: at most %d per %s; retry in %d s",
			f.rule.Limit, f.rule.Window, secs),
		Internal: fmt.Errorf("%w (%s)", ErrLimited, f.rule.Name),
	}
}
