package ratelimit

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// ErrBusy is wrapped by the error a request refused by a Concurrency cap
// returns.
var ErrBusy = fmt.Errorf("%w: too many requests in flight", ErrLimited)

// ConcurrencyRetryAfter is the Retry-After of a request refused by a
// Concurrency cap. Requests in flight end within milliseconds to a few
// seconds (a group PATCH of thousands of members); Okta and Entra ID wait
// what the answer asks before they retry.
const ConcurrencyRetryAfter = time.Second

// ConcurrencyWait is how long a request finding every place of its key
// taken waits for one before it is refused, when the cap waits at all
// (Concurrency.Wait): a sync sending a few more requests at once than
// the cap then slows down instead of collecting a 429 for each.
const ConcurrencyWait = time.Second

// queuedPerPlace bounds the requests of one key waiting for a place, per
// place: past it a request is refused at once, so that a key's flood
// holds a bounded number of goroutines waiting, not one per request.
const queuedPerPlace = 4

// concurrencyShards spreads the counters over independent locks, so that
// tenants counting their requests seldom wait for one another.
const concurrencyShards = 64

// Concurrency caps how many requests of one key (a tenant) this node
// serves at once: the next one waits up to Wait for a place (holding no
// database connection while it waits), and is then refused, 429 with
// Retry-After. Where a rate limit bounds how many requests a key sends
// a minute, this bounds how much of the node's database connections (on
// SQLite, its one writer) the key's requests hold at any moment, however
// long each takes: an IdP's initial sync of one tenant, 32 writes at a
// time, some adding thousands of group members, then leaves room for
// every other tenant's requests instead of queuing them behind its own.
//
// The count is per node and in process: it guards this node's pool, and
// costs no round trip. Its zero value, or a Limit of 0, caps nothing.
type Concurrency struct {
	// Name identifies the cap in the rate_limited_total metric and in
	// answers ("scim_writes").
	Name string
	// Limit is the most requests of one key in flight at once.
	Limit int
	// Key returns the key a request counts against, or false to let it
	// through uncounted (no tenant yet).
	Key func(c echo.Context) (string, bool)
	// Counts, if set, picks the requests the cap applies to (writes, say);
	// nil counts every request.
	Counts func(c echo.Context) bool
	// OnLimited, if set, is called with Name for every refused request.
	OnLimited func(rule string)
	// OnWait, if set, is called with Name and the outcome of every
	// request that found its key's places all taken: WaitAdmitted (a
	// place came free within Wait), WaitRefused, or WaitPassed (Pace let
	// it through without a place). A request served at once calls
	// nothing: the hot path counts no metric.
	OnWait func(rule, outcome string)
	// Wait is how long a request waits for a place of its key before it
	// is refused (0: refused at once). At most queuedPerPlace×Limit
	// requests of a key wait at once; the next is refused at once.
	Wait time.Duration

	seed   maphash.Seed
	once   sync.Once
	shards [concurrencyShards]concurrencyShard
}

type concurrencyShard struct {
	mu     sync.Mutex
	n      map[string]int // keys with requests in flight; absent means none
	queued map[string]int // keys with requests waiting for a place
	// freed is closed, and forgotten, when a place of a key of this shard
	// is given back: the waiters look again.
	freed chan struct{}
}

// Enabled reports whether the cap limits anything.
func (l *Concurrency) Enabled() bool { return l != nil && l.Limit > 0 && l.Key != nil }

func (l *Concurrency) shard(key string) *concurrencyShard {
	l.once.Do(func() { l.seed = maphash.MakeSeed() })
	return &l.shards[maphash.String(l.seed, key)%concurrencyShards]
}

// Acquire takes one of key's places, reporting false when all Limit are
// taken. A true answer must be followed by one Release(key).
func (l *Concurrency) Acquire(key string) bool {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeLocked(key, l.Limit)
}

// AcquireWait is Acquire, waiting up to Wait for a place (or until ctx is
// done) when all are taken.
func (l *Concurrency) AcquireWait(ctx context.Context, key string) bool {
	s := l.shard(key)
	s.mu.Lock()
	if s.takeLocked(key, l.Limit) {
		s.mu.Unlock()
		return true
	}
	if l.Wait <= 0 || s.queued[key] >= queuedPerPlace*l.Limit {
		s.mu.Unlock()
		return false
	}
	if s.queued == nil {
		s.queued = map[string]int{}
	}
	s.queued[key]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if n := s.queued[key]; n > 1 {
			s.queued[key] = n - 1
		} else {
			delete(s.queued, key)
		}
		s.mu.Unlock()
	}()
	timer := time.NewTimer(l.Wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if s.takeLocked(key, l.Limit) {
			s.mu.Unlock()
			return true
		}
		if s.freed == nil {
			s.freed = make(chan struct{})
		}
		freed := s.freed
		s.mu.Unlock()
		select {
		case <-freed:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// Outcomes of a request that found its key's places all taken, for
// Concurrency.OnWait.
const (
	WaitAdmitted = "admitted"
	WaitRefused  = "refused"
	WaitPassed   = "passed"
)

// nothing is the release of a request that holds no place.
func nothing() {}

// Admit takes a place of key, waiting as AcquireWait does, for a handler
// that learns its key only once it has read the request (the tenant of
// an SSO connection). ok false means refused (OnLimited was called): the
// caller answers it in its surface's format. Otherwise release must be
// called once, however the request ends (defer it: a panic must give the
// place back too). A disabled cap admits everything.
func (l *Concurrency) Admit(ctx context.Context, key string) (release func(), ok bool) {
	if l == nil || l.Limit <= 0 || key == "" {
		return nothing, true
	}
	if l.Acquire(key) {
		return func() { l.Release(key) }, true
	}
	if !l.AcquireWait(ctx, key) {
		l.waited(WaitRefused)
		if l.OnLimited != nil {
			l.OnLimited(l.Name)
		}
		return nothing, false
	}
	l.waited(WaitAdmitted)
	return func() { l.Release(key) }, true
}

// Pace is Admit for a step that must not be refused (a token request
// whose authorization code is already spent: refused, the sign-in could
// not be retried): it waits as Admit does, then goes on without a place
// when none came free. It bounds a key's requests in flight to Limit
// while their number stays within what Wait absorbs, and slows the rest
// by Wait. release must be called once.
func (l *Concurrency) Pace(ctx context.Context, key string) (release func()) {
	if l == nil || l.Limit <= 0 || key == "" {
		return nothing
	}
	if l.Acquire(key) {
		return func() { l.Release(key) }
	}
	if !l.AcquireWait(ctx, key) {
		l.waited(WaitPassed)
		return nothing
	}
	l.waited(WaitAdmitted)
	return func() { l.Release(key) }
}

func (l *Concurrency) waited(outcome string) {
	if l.OnWait != nil {
		l.OnWait(l.Name, outcome)
	}
}

// takeLocked takes a place of key if one of limit is free.
func (s *concurrencyShard) takeLocked(key string, limit int) bool {
	if s.n[key] >= limit {
		return false
	}
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[key]++
	return true
}

// Release gives back a place Acquire took. A key with none left in flight
// is forgotten, so that the counters hold only the tenants busy now.
func (l *Concurrency) Release(key string) {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.n[key]; n > 1 {
		s.n[key] = n - 1
	} else {
		delete(s.n, key)
	}
	if s.freed != nil {
		close(s.freed)
		s.freed = nil
	}
}

// InFlight reports how many requests of key are in flight.
func (l *Concurrency) InFlight(key string) int {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[key]
}

// Waiting reports how many requests of key wait for a place.
func (l *Concurrency) Waiting(key string) int {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued[key]
}

// Middleware returns middleware enforcing the cap; it must run after the
// authentication that sets the key. A refused request gets Retry-After
// and an *echo.HTTPError of 429 wrapping ErrBusy (and so ErrLimited), for
// the surface to render in its own error format. A disabled cap returns
// middleware that does nothing.
func (l *Concurrency) Middleware() echo.MiddlewareFunc {
	if !l.Enabled() {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	retry := strconv.Itoa(retrySeconds(ConcurrencyRetryAfter))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if l.Counts != nil && !l.Counts(c) {
				return next(c)
			}
			key, ok := l.Key(c)
			if !ok || key == "" {
				return next(c)
			}
			release, ok := l.Admit(c.Request().Context(), key)
			if !ok {
				c.Response().Header().Set(HeaderRetryAfter, retry)
				return &echo.HTTPError{
					Code:     http.StatusTooManyRequests,
					Message:  fmt.Sprintf("too many requests at once: at most %d in flight; retry in %s s", l.Limit, retry),
					Internal: fmt.Errorf("%w (%s)", ErrBusy, l.Name),
				}
			}
			defer release()
			return next(c)
		}
	}
}
