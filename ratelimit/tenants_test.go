package ratelimit_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

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
