package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/redis/go-redis/v9"
)

func newCached(t testing.TB, s sessions.Store, ttl time.Duration, size int) *sessions.Cached {
	t.Helper()
	c, err := sessions.NewCached(context.Background(), s, ttl, size)
	if err != nil {
		t.Fatalf("NewCached: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestCachedConformance(t *testing.T) {
	t.Run("Memory", func(t *testing.T) {
		sessionstest.RunConformance(t, func(t *testing.T) sessionstest.Impl {
			m := sessions.NewMemory()
			return sessionstest.Impl{Store: newCached(t, m, 0, 0), Once: m, Limiter: m}
		})
	})
	t.Run("Redis", func(t *testing.T) {
		sessionstest.RunConformance(t, func(t *testing.T) sessionstest.Impl {
			r := sessionstest.NewRedis(t)
			return sessionstest.Impl{Store: newCached(t, r, 0, 0), Once: r, Limiter: r}
		})
	})
}

// countingStore is a real Store that counts the Gets reaching it, and can
// hold one Get after it has read its answer.
type countingStore struct {
	sessions.Store
	gets  atomic.Int32
	after func() // called after the wrapped Get, when set
}

func (s *countingStore) Get(ctx context.Context, id string) (sessions.Session, error) {
	s.gets.Add(1)
	got, err := s.Store.Get(ctx, id)
	if s.after != nil {
		s.after()
	}
	return got, err
}

func live(id string) sessions.Session {
	return sessions.Session{ID: id, TenantID: "tnt_a", UserID: "usr_1", ExpiresAt: time.Now().Add(time.Hour)}
}

func TestCachedServesHits(t *testing.T) {
	ctx := t.Context()
	mem := sessions.NewMemory()
	store := &countingStore{Store: mem}
	c := newCached(t, store, time.Minute, 0)
	s := live("ses_1")
	if err := mem.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Get(ctx, s.ID); err != nil {
			t.Fatalf("Get: %v", err)
		}
		if _, err := c.Get(ctx, "ses_unknown"); !errors.Is(err, sessions.ErrNotFound) {
			t.Fatalf("Get(unknown) = %v", err)
		}
	}
	if n := store.gets.Load(); n != 2 {
		t.Errorf("store saw %d Gets for 6 cached ones, want 2", n)
	}

	// A revocation that bypasses the cache (as one made on another node
	// does) reaches it through the subscription.
	if err := mem.Revoke(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, s.ID, 20*time.Second)

	// Creating through the cache replaces a cached not-found.
	if err := c.Create(ctx, live("ses_unknown")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "ses_unknown"); err != nil {
		t.Errorf("Get after Create = %v", err)
	}
}

func TestCachedRespectsExpiryAndTTL(t *testing.T) {
	ctx := t.Context()
	mem := sessions.NewMemory()
	store := &countingStore{Store: mem}
	c := newCached(t, store, 100*time.Millisecond, 0)
	// The cache's clock is stepped: on a loaded machine a real 50 ms
	// expiry can pass before the first Get.
	clk := &stepClock{t: time.Now()}
	sessions.SetClock(c, clk.Now)
	short := live("ses_short")
	short.ExpiresAt = clk.Now().Add(50 * time.Millisecond)
	long := live("ses_long")
	for _, s := range []sessions.Session{short, long} {
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.gets.Load(); n != 0 {
		t.Errorf("Create did not prime the cache: %d store Gets", n)
	}
	clk.Advance(60 * time.Millisecond)
	if _, err := c.Get(ctx, short.ID); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Get(expired, still cached) = %v, want ErrNotFound", err)
	}
	clk.Advance(60 * time.Millisecond)
	if _, err := c.Get(ctx, long.ID); err != nil {
		t.Fatal(err)
	}
	if n := store.gets.Load(); n != 1 {
		t.Errorf("after the cache TTL the store saw %d Gets, want 1", n)
	}
}

// TestCachedInFlightRevocation revokes a session while a Get that read it
// is still on its way back, and checks that the stale answer is not cached.
func TestCachedInFlightRevocation(t *testing.T) {
	ctx := t.Context()
	mem := sessions.NewMemory()
	store := &countingStore{Store: mem}
	c := newCached(t, store, time.Minute, 0)
	s := live("ses_1")
	if err := mem.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	store.after = func() {
		store.after = nil
		if err := c.Revoke(ctx, s.ID); err != nil {
			t.Error(err)
		}
	}
	if _, err := c.Get(ctx, s.ID); err != nil {
		t.Fatalf("in-flight Get = %v, want the session it read", err)
	}
	if _, err := c.Get(ctx, s.ID); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Get after revocation = %v, want ErrNotFound", err)
	}
}

func TestCachedBounded(t *testing.T) {
	ctx := t.Context()
	mem := sessions.NewMemory()
	c := newCached(t, mem, time.Minute, 100)
	for i := range 1000 {
		s := live(fmt.Sprintf("ses_%d", i))
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n > 100 {
		t.Errorf("cache holds %d entries, limit 100", n)
	}
}

func TestCachedClose(t *testing.T) {
	ctx := t.Context()
	mem := sessions.NewMemory()
	store := &countingStore{Store: mem}
	c := newCached(t, store, time.Minute, 0)
	s := live("ses_1")
	if err := c.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Without its subscription the cache cannot know about revocations,
	// so it must stop answering on its own.
	deadline := time.Now().Add(20 * time.Second)
	for c.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := mem.Revoke(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, s.ID); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Get after Close and revocation = %v, want ErrNotFound", err)
	}
}

// node is one broker node: its own Redis client, store and cache.
type node struct {
	store *countingStore
	cache *sessions.Cached
}

func newNode(t *testing.T, prefix string) node {
	t.Helper()
	c := sessionstest.Redis(t) // a separate client: its own connections
	st := &countingStore{Store: sessions.NewRedis(c, sessions.RedisOptions{Prefix: prefix})}
	return node{store: st, cache: newCached(t, st, time.Minute, 0)}
}

// TestCachedCrossNode is the promise the introspection endpoint relies on:
// a revocation on node A reaches node B's cache by message, long before
// the entry's TTL (a minute) would have dropped it. The contract's 100 ms
// is a latency target measured by the benchmarks; here the wait is
// generous, because a loaded machine can stall any one delivery, and the
// minute-long TTL still proves the message path did the work.
func TestCachedCrossNode(t *testing.T) {
	ctx := t.Context()
	prefix := sessionstest.Prefix(t, sessionstest.Redis(t))
	a, b := newNode(t, prefix), newNode(t, prefix)

	revocations := []struct {
		name   string
		revoke func(ids []string) error
	}{
		{"Revoke", func(ids []string) error { return a.cache.Revoke(ctx, ids[0]) }},
		{"RevokeUser", func([]string) error { _, err := a.cache.RevokeUser(ctx, "tnt_a", "usr_1"); return err }},
		{"RevokeTenant", func([]string) error { _, err := a.cache.RevokeTenant(ctx, "tnt_a"); return err }},
	}
	for i, tt := range revocations {
		t.Run(tt.name, func(t *testing.T) {
			ids := []string{fmt.Sprintf("ses_x%d_1", i), fmt.Sprintf("ses_x%d_2", i)}
			for _, id := range ids {
				if err := a.cache.Create(ctx, live(id)); err != nil {
					t.Fatal(err)
				}
			}
			other := sessions.Session{ID: fmt.Sprintf("ses_x%d_b", i), TenantID: "tnt_b", UserID: "usr_1", ExpiresAt: time.Now().Add(time.Hour)}
			if err := a.cache.Create(ctx, other); err != nil {
				t.Fatal(err)
			}
			// B reads the sessions twice; the second read is a cache hit.
			before := b.store.gets.Load()
			for range 2 {
				for _, id := range append(ids, other.ID) {
					if _, err := b.cache.Get(ctx, id); err != nil {
						t.Fatalf("B Get(%s): %v", id, err)
					}
				}
			}
			if n := b.store.gets.Load() - before; n != 3 {
				t.Errorf("B's store saw %d Gets for 6 cached ones, want 3", n)
			}

			if err := tt.revoke(ids); err != nil {
				t.Fatal(err)
			}
			revoked := ids
			if tt.name == "Revoke" {
				revoked = ids[:1]
			}
			for _, id := range revoked {
				waitGone(t, b.cache, id, 20*time.Second)
			}
			if _, err := b.cache.Get(ctx, other.ID); err != nil {
				t.Errorf("B Get(other tenant's session) = %v after revoking tnt_a", err)
			}
		})
	}
}

// TestCachedResyncAfterLostMessages breaks node B's subscription, revokes
// on node A while B may not be listening, and checks that B stops
// answering from its cache once it has resubscribed.
func TestCachedResyncAfterLostMessages(t *testing.T) {
	ctx := t.Context()
	admin := sessionstest.Redis(t)
	prefix := sessionstest.Prefix(t, admin)
	a := newNode(t, prefix)

	name := fmt.Sprintf("idbtest-resync-%d", time.Now().UnixNano())
	opts := *admin.(interface{ Options() *redis.Options }).Options()
	opts.ClientName = name
	bc := redis.NewClient(&opts)
	t.Cleanup(func() { bc.Close() })
	b := newCached(t, sessions.NewRedis(bc, sessions.RedisOptions{Prefix: prefix}), time.Minute, 0)

	s := live("ses_lost")
	if err := a.cache.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	ids := pubsubClients(t, admin, name)
	if len(ids) != 1 {
		t.Fatalf("found %d pub/sub connections for node B, want 1", len(ids))
	}
	if err := admin.Do(ctx, "CLIENT", "KILL", "ID", ids[0]).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.cache.Revoke(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	waitGone(t, b, s.ID, 20*time.Second)
}

// waitGone polls c until Get(id) answers ErrNotFound, failing after within.
func waitGone(t *testing.T, c sessions.Store, id string, within time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		_, err := c.Get(t.Context(), id)
		if errors.Is(err, sessions.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
		if time.Since(start) > within {
			t.Fatalf("Get(%s) still answers the session %v after it was revoked", id, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stepClock is a clock a test moves by hand.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestCachedCreateInFlight: creating a session through the cache while a
// Get is on its way back keeps that Get's answer cacheable when it is of
// another session (a creation is no revocation), and never lets a
// not-found read before the creation hide the new session, even when the
// new session's entry was evicted meanwhile.
func TestCachedCreateInFlight(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name    string
		size    int
		get     string   // the Get in flight
		creates []string // the sessions created while it is
		wantErr error    // its answer
		gets    int32    // Gets that reach the store, two Gets of get included
	}{
		{"another session's answer is cached", 0, "ses_1", []string{"ses_2"}, nil, 1},
		{"a not-found does not hide the created session", 0, "ses_new", []string{"ses_new"}, sessions.ErrNotFound, 1},
		{"nor once its entry is evicted", 1, "ses_new", []string{"ses_new", "ses_other"}, sessions.ErrNotFound, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := sessions.NewMemory()
			store := &countingStore{Store: mem}
			c := newCached(t, store, time.Minute, tc.size)
			if tc.get == "ses_1" {
				if err := mem.Create(ctx, live("ses_1")); err != nil {
					t.Fatal(err)
				}
			}
			store.after = func() {
				store.after = nil
				for _, id := range tc.creates {
					if err := c.Create(ctx, live(id)); err != nil {
						t.Error(err)
					}
				}
			}
			if _, err := c.Get(ctx, tc.get); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Get in flight = %v, want %v", err, tc.wantErr)
			}
			if _, err := c.Get(ctx, tc.get); err != nil {
				t.Fatalf("Get after the creations = %v, want the session", err)
			}
			if n := store.gets.Load(); n != tc.gets {
				t.Errorf("%d Gets reached the store, want %d", n, tc.gets)
			}
		})
	}
}
