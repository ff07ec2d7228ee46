package sessions_test

import (
	"context"
	"testing"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestLedger: both ledgers number tombstones in the order written, a
// rewrite of a key renumbers it, Since returns only what is newer than
// the number given with the last number, Delete removes one; and Redis's
// survives a restart from its snapshot as any key does (the tombstones
// outlive a database restore because Redis is not restored with it, not
// because of any expiry: they have none).
func TestLedger(t *testing.T) {
	rs := sessionstest.StartServer(t)
	ctx := context.Background()
	for name, l := range map[string]sessions.Ledger{
		"redis":  sessions.NewRedisLedger(rs.Client(t), "t:"),
		"memory": sessions.NewMemoryLedger(),
	} {
		t.Run(name, func(t *testing.T) {
			since := func(seq int64) (map[string][]byte, int64) {
				t.Helper()
				m, last, err := l.Since(ctx, seq)
				if err != nil {
					t.Fatal(err)
				}
				return m, last
			}
			if m, last := since(0); len(m) != 0 || last != 0 {
				t.Fatalf("empty ledger: %v, last %d", m, last)
			}
			for _, k := range []string{"a", "b", "c"} {
				if err := l.Put(ctx, k, []byte("v"+k)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Put(ctx, "a", []byte("va2")); err != nil { // now 4
				t.Fatal(err)
			}
			if err := l.Delete(ctx, "b"); err != nil {
				t.Fatal(err)
			}
			m, last := since(2)
			if last != 4 || len(m) != 2 || string(m["a"]) != "va2" || string(m["c"]) != "vc" {
				t.Errorf("since 2: %q, last %d; want a=va2 and c, last 4", m, last)
			}
			if m, _ := since(4); len(m) != 0 {
				t.Errorf("since the last: %q", m)
			}
			if m, _ := since(0); len(m) != 2 {
				t.Errorf("since 0: %q; want a and c", m)
			}
		})
	}
	// Restarted from its snapshot, Redis keeps them.
	snap := rs.Snapshot()
	rs.RestartFrom(snap)
	l := sessions.NewRedisLedger(rs.Client(t), "t:")
	if m, last, err := l.Since(ctx, 0); err != nil || len(m) != 2 || last != 4 {
		t.Errorf("after a restart: %q, last %d, %v", m, last, err)
	}
}

// TestLedgerForget: Forget removes tombstones past the horizon and
// remembers the highest number removed, which an unknown key or a lower
// one never lowers; and erasing a tenant from the session store under the
// same prefix leaves the ledger, every tenant's tombstones, alone.
func TestLedgerForget(t *testing.T) {
	rdb := sessionstest.Redis(t)
	prefix := sessionstest.Prefix(t, rdb)
	ctx := context.Background()
	type forgetting interface {
		sessions.Ledger
		Forget(ctx context.Context, keys []string) error
		Forgotten(ctx context.Context) (int64, error)
	}
	for name, l := range map[string]forgetting{
		"redis":  sessions.NewRedisLedger(rdb, prefix),
		"memory": sessions.NewMemoryLedger(),
	} {
		t.Run(name, func(t *testing.T) {
			for _, k := range []string{"tenant:tnt_gone", "user:usr_1", "user:usr_2"} {
				if err := l.Put(ctx, k, []byte(`{"tenant_id":"tnt_gone"}`)); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := l.Forgotten(ctx); err != nil || n != 0 {
				t.Fatalf("forgotten before any: %d, %v", n, err)
			}
			if err := l.Forget(ctx, []string{"user:usr_2", "tenant:tnt_gone", "nope"}); err != nil {
				t.Fatal(err)
			}
			if n, err := l.Forgotten(ctx); err != nil || n != 3 {
				t.Errorf("forgotten: %d, %v; want 3", n, err)
			}
			if err := l.Forget(ctx, []string{"nope"}); err != nil {
				t.Fatal(err)
			}
			if n, _ := l.Forgotten(ctx); n != 3 {
				t.Errorf("an unknown key moved the mark to %d", n)
			}
			m, last, err := l.Since(ctx, 0)
			if err != nil || len(m) != 1 || m["user:usr_1"] == nil || last != 3 {
				t.Errorf("after forgetting: %q, last %d, %v", m, last, err)
			}
		})
	}
	// The session store under the same prefix erases the tenant's keys,
	// not the ledger that names it.
	cache := sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: prefix})
	if _, err := cache.EraseTenant(ctx, "tnt_gone"); err != nil {
		t.Fatal(err)
	}
	l := sessions.NewRedisLedger(rdb, prefix)
	if m, last, err := l.Since(ctx, 0); err != nil || len(m) != 1 || last != 3 {
		t.Errorf("the ledger after a tenant's erasure: %q, last %d, %v", m, last, err)
	}
	if n, _ := l.Forgotten(ctx); n != 3 {
		t.Errorf("the forgotten mark after a tenant's erasure: %d", n)
	}
}
