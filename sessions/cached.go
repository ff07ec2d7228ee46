package sessions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for NewCached.
const (
	DefaultCacheTTL  = 5 * time.Second
	DefaultCacheSize = 100_000
)

// Cached is a Store that answers Get from a bounded local cache, so that
// the hot path (token introspection, every request carrying a session)
// usually stays in process. It stays correct across nodes by subscribing to
// revocations: an entry is dropped as soon as any node revokes its session,
// and everything is dropped when the subscription reports a ReasonResync.
// The TTL only bounds how long an entry may be stale should a revocation
// message be lost without the subscription noticing.
//
// Not-found answers are cached too: session IDs are never reused, so a
// revoked or unknown ID asked about again and again (a client retrying with
// a dead token) costs no round trip.
//
// Writes go straight to the wrapped Store and update the cache on their way
// back, so a node always sees its own revocations at once.
type Cached struct {
	store Store
	ttl   time.Duration
	max   int
	stop  context.CancelFunc
	done  atomic.Bool // subscription over: pass everything through
	// down is set while the subscription is interrupted (a Redis outage):
	// revocations made elsewhere go unheard, so answers are not cached
	// until it is back.
	down atomic.Bool
	// held is set by Hold while revocations are committed but not yet
	// acknowledged by the store underneath: nothing is cached then.
	held atomic.Bool
	// suspended is set by Suspend while the store underneath is not known
	// to hold every revocation: nothing is cached then either.
	suspended atomic.Bool

	mu      sync.RWMutex
	entries map[string]cacheEntry
	// gen counts invalidations. A Get that missed records it before asking
	// the store and caches the answer only if it is unchanged, so that a
	// revocation arriving while the answer was in flight is not undone by
	// caching the session it just revoked.
	gen uint64

	// now is the clock of entry lifetimes and session expiry: time.Now,
	// but a test sets its own so that an expiry is a step, not a sleep.
	now func() time.Time
}

type cacheEntry struct {
	s       Session
	missing bool      // cached ErrNotFound
	until   time.Time // end of this entry's TTL
}

var _ Store = (*Cached)(nil)

// NewCached wraps s with a cache of at most size sessions, each kept for at
// most ttl (zero values pick DefaultCacheTTL and DefaultCacheSize). It
// subscribes to s's revocations until ctx is done or Close is called;
// after that every call goes straight to s.
func NewCached(ctx context.Context, s Store, ttl time.Duration, size int) (*Cached, error) {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	if size <= 0 {
		size = DefaultCacheSize
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &Cached{store: s, ttl: ttl, max: size, stop: cancel, entries: make(map[string]cacheEntry), now: time.Now}
	if err := s.Subscribe(ctx, c.invalidate); err != nil {
		cancel()
		return nil, fmt.Errorf("sessions: cache: %w", err)
	}
	context.AfterFunc(ctx, func() {
		c.done.Store(true)
		c.invalidate(Revocation{Reason: ReasonResync})
	})
	return c, nil
}

// Close ends the subscription and empties the cache. The wrapped Store is
// not closed.
func (c *Cached) Close() { c.stop() }

// Hold(true) empties the cache and keeps it empty, every call going to
// the wrapped Store, until Hold(false). It is for the time revocations are
// known to be committed but not acknowledged by the session store (a
// revocation queue that is not empty): a Redis that is frozen rather than
// gone breaks no subscription for many seconds, so no revocation message
// and no resync would tell this node to forget the sessions being ended,
// and its cache would keep vouching for them.
func (c *Cached) Hold(on bool) {
	if !on {
		c.held.Store(false)
		return
	}
	if c.held.Swap(true) {
		return
	}
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}

// Len returns how many entries the cache holds, for metrics.
func (c *Cached) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

func (c *Cached) invalidate(r Revocation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if r.Reason == ReasonResync {
		c.down.Store(r.Down)
		clear(c.entries)
		return
	}
	for _, id := range r.SessionIDs {
		delete(c.entries, id)
	}
}

// Get implements Store.
func (c *Cached) Get(ctx context.Context, id string) (Session, error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.entries[id]
	gen := c.gen
	c.mu.RUnlock()
	if ok && now.Before(e.until) {
		if e.missing || !now.Before(e.s.ExpiresAt) {
			return Session{}, ErrNotFound
		}
		return e.s.clone(), nil
	}
	if c.done.Load() {
		return c.store.Get(ctx, id)
	}
	s, err := c.store.Get(ctx, id)
	switch {
	case err == nil:
		c.put(gen, id, cacheEntry{s: s.clone(), until: now.Add(c.ttl)})
	case errors.Is(err, ErrNotFound):
		c.put(gen, id, cacheEntry{missing: true, until: now.Add(c.ttl)})
	}
	return s, err
}

func (c *Cached) put(gen uint64, id string, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.done.Load() || c.down.Load() || c.held.Load() || c.suspended.Load() {
		return
	}
	// A not-found must not replace a session created through this cache
	// while it was in flight (see create): IDs are never reused, so the
	// session is the newer news.
	if old, ok := c.entries[id]; ok && e.missing && !old.missing && c.now().Before(old.until) {
		return
	}
	c.putLocked(id, e)
}

// putLocked stores e, evicting a few entries when the cache is full.
func (c *Cached) putLocked(id string, e cacheEntry) {
	if len(c.entries) >= c.max {
		// Evict a few arbitrary entries: map iteration starts at a random
		// place, which is as good as LRU for a cache this short-lived and
		// keeps hits free of bookkeeping. Answers in flight are refused
		// (gen), as after an invalidation: one of them could be the
		// not-found of a session created meanwhile whose entry, which put
		// checks for, was just evicted.
		c.gen++
		n := 0
		for k := range c.entries {
			delete(c.entries, k)
			if n++; n >= 16 {
				break
			}
		}
	}
	c.entries[id] = e
}

func (c *Cached) forget(ids ...string) {
	c.invalidate(Revocation{SessionIDs: ids})
}

// Create implements Store.
func (c *Cached) Create(ctx context.Context, s Session) error {
	return c.create(s, func() error { return c.store.Create(ctx, s) })
}

// create runs create, which creates s in the wrapped Store, and caches s.
func (c *Cached) create(s Session, create func() error) error {
	c.mu.RLock()
	gen := c.gen
	c.mu.RUnlock()
	if err := create(); err != nil {
		return err
	}
	// The new session is likely to be read next: it replaces whatever is
	// cached for its ID (a not-found, someone guessing). This is no
	// invalidation, so the answers in flight for other sessions are still
	// cached: at c=8 every login's creation used to throw away the
	// others' (a Redis round trip each time). An answer in flight for this
	// ID can only be a not-found older than the creation, which put
	// refuses. Only when something was invalidated since the creation
	// began (perhaps this very session, revoked already) is nothing cached
	// and the answers in flight refused, as before.
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.done.Load() || c.down.Load() || c.held.Load() || c.suspended.Load() {
		c.gen++
		delete(c.entries, s.ID)
		return nil
	}
	c.putLocked(s.ID, cacheEntry{s: s.clone(), until: c.now().Add(c.ttl)})
	return nil
}

// Revoke implements Store.
func (c *Cached) Revoke(ctx context.Context, id string) error {
	err := c.store.Revoke(ctx, id)
	c.forget(id)
	return err
}

// RevokeSession implements Store.
func (c *Cached) RevokeSession(ctx context.Context, id string) ([]Session, error) {
	out, err := c.store.RevokeSession(ctx, id)
	c.forget(id)
	return out, err
}

// RevokeClient implements Store: the session stays, so its cached copy,
// which lacks the revocation, is forgotten here at once (and on every
// other node when the announcement arrives).
func (c *Cached) RevokeClient(ctx context.Context, id, clientID string, at time.Time) error {
	err := c.store.RevokeClient(ctx, id, clientID, at)
	c.forget(id)
	return err
}

// AddApp implements Store; cached copies need not know the apps, which
// only revocations report.
func (c *Cached) AddApp(ctx context.Context, id, clientID string) error {
	return c.store.AddApp(ctx, id, clientID)
}

// RevokeUser implements Store.
func (c *Cached) RevokeUser(ctx context.Context, tenantID, userID string) ([]Session, error) {
	return c.forgetAll(c.store.RevokeUser(ctx, tenantID, userID))
}

// RevokeTenant implements Store.
func (c *Cached) RevokeTenant(ctx context.Context, tenantID string) ([]Session, error) {
	return c.forgetAll(c.store.RevokeTenant(ctx, tenantID))
}

// RevokeConnection implements Store.
func (c *Cached) RevokeConnection(ctx context.Context, tenantID, connectionID string) ([]Session, error) {
	return c.forgetAll(c.store.RevokeConnection(ctx, tenantID, connectionID))
}

// EraseTenant erases the tenant from the store underneath (an error when
// it cannot) and forgets its cached sessions.
func (c *Cached) EraseTenant(ctx context.Context, tenantID string) (int, error) {
	er, ok := c.store.(TenantEraser)
	if !ok {
		return 0, fmt.Errorf("sessions: %T cannot erase a tenant", c.store)
	}
	n, err := er.EraseTenant(ctx, tenantID)
	c.mu.Lock()
	c.gen++
	for id, e := range c.entries {
		if e.s.TenantID == tenantID {
			delete(c.entries, id)
		}
	}
	c.mu.Unlock()
	return n, err
}

func (c *Cached) forgetAll(revoked []Session, err error) ([]Session, error) {
	ids := make([]string, len(revoked))
	for i, s := range revoked {
		ids[i] = s.ID
	}
	c.forget(ids...)
	return revoked, err
}

// ListUser implements Store; it is not cached.
func (c *Cached) ListUser(ctx context.Context, tenantID, userID string) ([]Session, error) {
	return c.store.ListUser(ctx, tenantID, userID)
}

// Subscribe implements Store by subscribing to the wrapped Store.
func (c *Cached) Subscribe(ctx context.Context, fn func(Revocation)) error {
	return c.store.Subscribe(ctx, fn)
}
