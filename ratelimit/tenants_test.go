package ratelimit_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// node is one broker node's view of tenant limits: its own Redis client
// and TenantLimits over the shared Redis and database.
type node struct {
	limits  *ratelimit.TenantLimits
	guard   *ratelimit.Guard
	limiter *recordingLimiter
}

// recordingLimiter is the real Redis limiter, noting the limit each
// request was checked against.
type recordingLimiter struct {
	sessions.Limiter
	last atomic.Int64
}

func (l *recordingLimiter) Allow(ctx context.Context, key string, limit int, window time.Duration) (sessions.Decision, error) {
	l.last.Store(int64(limit))
	return l.Limiter.Allow(ctx, key, limit, window)
}

func newNode(t *testing.T, db *store.DB, prefix string) node {
	t.Helper()
	cache := sessions.NewRedis(sessionstest.Redis(t), sessions.RedisOptions{Prefix: prefix})
	l, err := ratelimit.NewTenantLimits(ratelimit.TenantLimitsConfig{
		Cache:   cache,
		Store:   db,
		Default: ratelimit.Rule{Name: "login_tenant", Limit: 6000, Window: time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingLimiter{Limiter: cache}
	return node{limits: l, guard: ratelimit.New(rec, ratelimit.Options{}), limiter: rec}
}

// checkedAgainst spends one sign-in of tenantID's budget and returns the
// limit the shared limiter applied.
func (nd node) checkedAgainst(t *testing.T, ctx context.Context, tenantID string) int {
	t.Helper()
	if ok, _ := nd.limits.Check(ctx, nd.guard, tenantID); !ok {
		t.Fatalf("the first sign-in of %s was refused", tenantID)
	}
	return int(nd.limiter.last.Load())
}

func TestTenantLimitsByTierAndOverride(t *testing.T) {
	ctx := context.Background()
	db := storetest.Postgres(t)
	prefix := sessionstest.Prefix(t, sessionstest.Redis(t))
	n1, n2 := newNode(t, db, prefix), newNode(t, db, prefix)

	create := func(name, tier string) store.Tenant {
		tn, err := db.CreateTenant(ctx, store.Tenant{Name: name, Tier: tier})
		if err != nil {
			t.Fatal(err)
		}
		return tn
	}
	free, ent, none := create("Free", store.TierFree), create("Big", store.TierEnterprise), create("Old", "")

	for _, tc := range []struct {
		tenant store.Tenant
		limit  int
		window time.Duration
	}{
		{free, 600, time.Minute},
		{ent, 12000, time.Minute},
		{none, 6000, time.Minute},
	} {
		for i, nd := range []node{n1, n2} {
			if r := nd.limits.Rule(ctx, tc.tenant.ID); r.Limit != tc.limit || r.Window != tc.window || r.Name != "login_tenant" {
				t.Errorf("node %d: %s's rule = %+v, want %d per %v", i+1, tc.tenant.Name, r, tc.limit, tc.window)
			}
		}
	}
	// And the shared limiter spends each tenant's sign-ins against it.
	if got := n1.checkedAgainst(t, ctx, free.ID); got != 600 {
		t.Errorf("free tenant checked against %d, want 600", got)
	}
	if got := n2.checkedAgainst(t, ctx, ent.ID); got != 12000 {
		t.Errorf("enterprise tenant checked against %d, want 12000", got)
	}

	// An override, made through the store and forgotten on one node (as
	// the operator API does), applies on both at once, though both cached
	// the tier's limit a moment ago.
	override := 5
	if _, err := db.UpdateTenant(store.WithTenant(ctx, ent.ID), store.TenantUpdate{SignInPerMinute: &override}); err != nil {
		t.Fatal(err)
	}
	if r := n2.limits.Rule(ctx, ent.ID); r.Limit != 12000 {
		t.Fatalf("before Forget, the cached limit should still hold: %+v", r)
	}
	if err := n1.limits.Forget(ctx, ent.ID); err != nil {
		t.Fatal(err)
	}
	for i, nd := range []node{n2, n1} {
		if r := nd.limits.Rule(ctx, ent.ID); r.Limit != 5 || r.Window != time.Minute {
			t.Errorf("node %d after the override: %+v, want 5 per minute", 2-i, r)
		}
	}
	if got := n1.checkedAgainst(t, ctx, ent.ID); got != 5 {
		t.Errorf("after the override, checked against %d, want 5", got)
	}
	// Clearing the override returns to the tier's default.
	zero := 0
	if _, err := db.UpdateTenant(store.WithTenant(ctx, ent.ID), store.TenantUpdate{SignInPerMinute: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := n2.limits.Forget(ctx, ent.ID); err != nil {
		t.Fatal(err)
	}
	if r := n1.limits.Rule(ctx, ent.ID); r.Limit != 12000 {
		t.Errorf("after clearing the override: %+v", r)
	}
	// An unknown tenant gets the default, and is not an error.
	if r := n1.limits.Rule(ctx, "tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV"); r.Limit != 6000 {
		t.Errorf("unknown tenant: %+v", r)
	}
}

// commands counts what a go-redis client sends: a command alone or a
// pipeline is one round trip.
type commands struct{ n atomic.Int64 }

func (h *commands) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *commands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *commands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestCheckTenantFromTheRow: a caller that has just read the tenant's row
// (routing a sign-in) spends its budget against the row's tier or
// override in the limiter's one round trip, with no read of the cached
// rule; a change of override applies on every node from the next row
// read, without Forget; and a tenant no rule limits costs no round trip.
func TestCheckTenantFromTheRow(t *testing.T) {
	ctx := context.Background()
	db := storetest.Postgres(t)
	shared := sessionstest.Redis(t)
	prefix := sessionstest.Prefix(t, shared)
	type counted struct {
		node
		rt *commands
	}
	nodeWith := func(def ratelimit.Rule) counted {
		c := sessionstest.Redis(t)
		rt := &commands{}
		c.AddHook(rt)
		cache := sessions.NewRedis(c, sessions.RedisOptions{Prefix: prefix})
		l, err := ratelimit.NewTenantLimits(ratelimit.TenantLimitsConfig{Cache: cache, Store: db, Default: def})
		if err != nil {
			t.Fatal(err)
		}
		rec := &recordingLimiter{Limiter: cache}
		return counted{node{limits: l, guard: ratelimit.New(rec, ratelimit.Options{}), limiter: rec}, rt}
	}
	def := ratelimit.Rule{Name: "login_tenant", Limit: 6000, Window: time.Minute}
	n1, n2 := nodeWith(def), nodeWith(def)
	row := func(id string) store.Tenant {
		tn, err := db.Tenant(store.WithTenant(ctx, id))
		if err != nil {
			t.Fatal(err)
		}
		return tn
	}
	spend := func(n counted, tn store.Tenant) (limit int, roundTrips int64) {
		t.Helper()
		before := n.rt.n.Load()
		n.limiter.last.Store(0)
		if ok, _ := n.limits.CheckTenant(ctx, n.guard, tn); !ok {
			t.Fatalf("a sign-in of %s was refused", tn.Name)
		}
		return int(n.limiter.last.Load()), n.rt.n.Load() - before
	}

	ent, err := db.CreateTenant(ctx, store.Tenant{Name: "Big", Tier: store.TierEnterprise})
	if err != nil {
		t.Fatal(err)
	}
	if limit, rt := spend(n1, row(ent.ID)); limit != 12000 || rt != 1 {
		t.Errorf("enterprise tenant: checked against %d in %d round trips, want 12000 in 1", limit, rt)
	}
	override := 5
	if _, err := db.UpdateTenant(store.WithTenant(ctx, ent.ID), store.TenantUpdate{SignInPerMinute: &override}); err != nil {
		t.Fatal(err)
	}
	for i, n := range []counted{n2, n1} {
		if limit, rt := spend(n, row(ent.ID)); limit != 5 || rt != 1 {
			t.Errorf("node %d after the override, no Forget: checked against %d in %d round trips, want 5 in 1", 2-i, limit, rt)
		}
	}
	// The budget is the one Check spends: shared by both ways in.
	for range 3 {
		n1.limits.Check(ctx, n1.guard, ent.ID) // cache miss: the row's 5 per minute
	}
	if ok, _ := n2.limits.CheckTenant(ctx, n2.guard, row(ent.ID)); ok {
		t.Error("the sixth sign-in within a minute was allowed under 5 per minute")
	}

	// With the deployment's rule off, a tenant without tier or override
	// is not limited and costs nothing; its tier still limits it.
	off := nodeWith(ratelimit.Rule{Name: "login_tenant"})
	old, err := db.CreateTenant(ctx, store.Tenant{Name: "Old"})
	if err != nil {
		t.Fatal(err)
	}
	if limit, rt := spend(off, row(old.ID)); limit != 0 || rt != 0 {
		t.Errorf("unlimited tenant: checked against %d in %d round trips, want no check", limit, rt)
	}
	free, err := db.CreateTenant(ctx, store.Tenant{Name: "Free", Tier: store.TierFree})
	if err != nil {
		t.Fatal(err)
	}
	if limit, rt := spend(off, row(free.ID)); limit != 600 || rt != 1 {
		t.Errorf("free tenant, deployment rule off: checked against %d in %d round trips, want 600 in 1", limit, rt)
	}
}
