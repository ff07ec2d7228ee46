package ratelimit_test

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/ratelimit"
)

// recorder collects a cap's OnLimited and OnWait calls.
type recorder struct {
	mu      sync.Mutex
	limited []string
	waits   []string
}

func (r *recorder) onLimited(rule string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limited = append(r.limited, rule)
}

func (r *recorder) onWait(rule, outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, rule+":"+outcome)
}

func (r *recorder) got() (limited, waits []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.limited), slices.Clone(r.waits)
}

// waitFor yields until n requests of key wait for a place.
func waitFor(t *testing.T, c *ratelimit.Concurrency, key string, n int) {
	t.Helper()
	for c.Waiting(key) < n {
		if t.Context().Err() != nil {
			t.Fatalf("%d of key %q never waited", n, key)
		}
		runtime.Gosched()
	}
}

// TestAdmitAndPace: what a request gets from Admit (refusable) and Pace
// (never refused) with its key under its share, at it, after a place
// comes free, after its context ends, and with the cap off; and what the
// cap counts and reports each time.
func TestAdmitAndPace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		wait  time.Duration
		held  int  // places of key "a" taken before the request
		pace  bool // Pace instead of Admit
		// during, if set, runs while the request waits (after it is
		// counted as waiting): it frees a place or cancels the request.
		during      func(c *ratelimit.Concurrency, cancel context.CancelFunc)
		frees       bool // during gives back one of the held places
		key         string
		wantOK      bool // admitted (Admit) / holding a place (Pace)
		wantLimited []string
		wantWaits   []string
	}{
		{name: "under its share: at once, nothing reported", limit: 2, held: 1, key: "a", wantOK: true},
		{name: "another key beside a full one", limit: 1, held: 1, key: "b", wantOK: true},
		{name: "no cap", limit: 0, held: 5, key: "a", wantOK: true},
		{name: "no key", limit: 1, held: 1, key: "", wantOK: true},
		{name: "full, no wait: refused", limit: 1, held: 1, key: "a",
			wantLimited: []string{"signin"}, wantWaits: []string{"signin:refused"}},
		{name: "full, a place comes free while it waits", limit: 1, wait: time.Hour, held: 1, key: "a",
			during: func(c *ratelimit.Concurrency, _ context.CancelFunc) { c.Release("a") }, frees: true,
			wantOK: true, wantWaits: []string{"signin:admitted"}},
		{name: "full, the browser leaves while it waits", limit: 1, wait: time.Hour, held: 1, key: "a",
			during:      func(_ *ratelimit.Concurrency, cancel context.CancelFunc) { cancel() },
			wantLimited: []string{"signin"}, wantWaits: []string{"signin:refused"}},
		{name: "pace under its share", pace: true, limit: 2, held: 1, key: "a", wantOK: true},
		{name: "pace full, no wait: goes on without a place", pace: true, limit: 1, held: 1, key: "a",
			wantWaits: []string{"signin:passed"}},
		{name: "pace full, a place comes free", pace: true, limit: 1, wait: time.Hour, held: 1, key: "a",
			during: func(c *ratelimit.Concurrency, _ context.CancelFunc) { c.Release("a") }, frees: true,
			wantOK: true, wantWaits: []string{"signin:admitted"}},
		{name: "pace full, the client leaves", pace: true, limit: 1, wait: time.Hour, held: 1, key: "a",
			during:    func(_ *ratelimit.Concurrency, cancel context.CancelFunc) { cancel() },
			wantWaits: []string{"signin:passed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			c := &ratelimit.Concurrency{Name: "signin", Limit: tc.limit, Wait: tc.wait, OnLimited: rec.onLimited, OnWait: rec.onWait}
			for range min(tc.held, tc.limit) {
				if !c.Acquire("a") {
					t.Fatal("a place under the limit refused")
				}
			}
			heldAfter := min(tc.held, tc.limit)
			if tc.frees {
				heldAfter--
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			type answer struct {
				release func()
				ok      bool
			}
			done := make(chan answer, 1)
			go func() {
				if tc.pace {
					done <- answer{c.Pace(ctx, tc.key), true}
					return
				}
				release, ok := c.Admit(ctx, tc.key)
				done <- answer{release, ok}
			}()
			if tc.during != nil {
				waitFor(t, c, tc.key, 1)
				tc.during(c, cancel)
			}
			got := <-done
			if got.release == nil {
				t.Fatal("nil release")
			}
			if !tc.pace && got.ok != tc.wantOK {
				t.Fatalf("admitted %v, want %v", got.ok, tc.wantOK)
			}
			limited, waits := rec.got()
			if !slices.Equal(limited, tc.wantLimited) || !slices.Equal(waits, tc.wantWaits) {
				t.Errorf("reported limited %v, waits %v; want %v, %v", limited, waits, tc.wantLimited, tc.wantWaits)
			}
			if n := c.Waiting(tc.key); n != 0 {
				t.Errorf("%d still counted as waiting", n)
			}
			before := c.InFlight(tc.key)
			got.release()
			own := before - c.InFlight(tc.key)
			// A place is taken only where the cap counts: a key, a limit.
			wantOwn := 0
			if tc.wantOK && tc.limit > 0 && tc.key != "" {
				wantOwn = 1
			}
			if own != wantOwn {
				t.Errorf("the request held %d places, want %d", own, wantOwn)
			}
			others := 0
			if tc.key == "a" {
				others = heldAfter
			}
			if n := c.InFlight(tc.key); n != others {
				t.Errorf("after release: %d of %q in flight, want %d", n, tc.key, others)
			}
		})
	}
}

// TestAdmitReleaseOnPanic: a handler that panics with its place deferred
// gives it back; the key's next request is admitted at once.
func TestAdmitReleaseOnPanic(t *testing.T) {
	c := &ratelimit.Concurrency{Name: "signin", Limit: 1}
	for range 3 {
		func() {
			defer func() { _ = recover() }()
			release, ok := c.Admit(t.Context(), "a")
			if !ok {
				t.Fatal("refused: an earlier request's place was not given back")
			}
			defer release()
			panic("boom")
		}()
	}
	if n := c.InFlight("a"); n != 0 {
		t.Fatalf("%d in flight after the panics", n)
	}
}

// TestAdmitFairAcrossKeys: one key holding its whole share, with its
// queue full of waiters, delays no request of other keys, whichever
// shard they share; each waiter of the busy key gets a place given back
// to it, and none is lost.
func TestAdmitFairAcrossKeys(t *testing.T) {
	const limit = 2
	c := &ratelimit.Concurrency{Name: "signin", Limit: limit, Wait: time.Hour}
	var held []func()
	for range limit {
		release, ok := c.Admit(t.Context(), "a")
		if !ok {
			t.Fatal("refused under the share")
		}
		held = append(held, release)
	}
	const waiters = 4 * limit // the queue's bound
	admitted := make(chan func(), waiters)
	for range waiters {
		go func() {
			release, ok := c.Admit(t.Context(), "a")
			if !ok {
				t.Error("a waiter was refused though places were given back")
			}
			admitted <- release
		}()
	}
	waitFor(t, c, "a", waiters)
	// Past the queue: refused at once, not queued.
	if _, ok := c.Admit(t.Context(), "a"); ok {
		t.Fatal("a request past the queue's bound was admitted")
	}
	// Many other keys (so some share "a"'s shard): each admitted at
	// once, up to its own share, and not counted against "a".
	for i := range 200 {
		key := "t" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		var rel []func()
		for range limit {
			release, ok := c.Admit(t.Context(), key)
			if !ok {
				t.Fatalf("key %q refused while only %q is at its cap", key, "a")
			}
			rel = append(rel, release)
		}
		for _, r := range rel {
			r()
		}
	}
	if n := c.InFlight("a"); n != limit {
		t.Fatalf("%q has %d in flight, want %d", "a", n, limit)
	}
	// Giving "a"'s places back lets every waiter through, limit at a time.
	for _, r := range held {
		r()
	}
	for range waiters {
		release := <-admitted
		if n := c.InFlight("a"); n > limit {
			t.Fatalf("%d of %q in flight, over its cap of %d", n, "a", limit)
		}
		release()
	}
	if n, w := c.InFlight("a"), c.Waiting("a"); n != 0 || w != 0 {
		t.Fatalf("%d in flight, %d waiting after all ended", n, w)
	}
}

// BenchmarkAdmit is the cost the cap adds to a sign-in under its share:
// one place taken and given back, by requests of many tenants on all
// cores (shards) and of one tenant (one shard's lock).
func BenchmarkAdmit(b *testing.B) {
	for _, bc := range []struct {
		name string
		keys int
	}{{"tenants=1000", 1000}, {"tenants=1", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			c := &ratelimit.Concurrency{Name: "signin", Limit: 1 << 20, Wait: time.Second}
			keys := make([]string, bc.keys)
			for i := range keys {
				keys[i] = "tnt_" + strconv.Itoa(i)
			}
			ctx := context.Background()
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1))
				for pb.Next() {
					release, ok := c.Admit(ctx, keys[i%len(keys)])
					if !ok {
						b.Error("refused")
					}
					release()
					i++
				}
			})
		})
	}
}
