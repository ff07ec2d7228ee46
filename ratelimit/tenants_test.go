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

func TestRuleOf(t *testing.T) {
	def := ratelimit.Rule{Name: "login_tenant", Limit: 6000, Window: time.Minute}
	for _, tc := range []struct {
		name   string
		def    ratelimit.Rule
		tenant store.Tenant
		limit  int
		window time.Duration
	}{
		{"free tier", def, store.Tenant{Tier: store.TierFree}, 600, time.Minute},
		{"growth tier", def, store.Tenant{Tier: store.TierGrowth}, 3000, time.Minute},
		{"enterprise tier", def, store.Tenant{Tier: store.TierEnterprise}, 12000, time.Minute},
		{"no tier: the deployment's rule", ratelimit.Rule{Name: "login_tenant", Limit: 7, Window: time.Hour}, store.Tenant{}, 7, time.Hour},
		{"override beats the tier", def, store.Tenant{Tier: store.TierEnterprise, SignInPerMinute: 5}, 5, time.Minute},
		{"override without a tier", def, store.Tenant{SignInPerMinute: 20000}, 20000, time.Minute},
		{"deployment's rule off, no tier", ratelimit.Rule{Name: "login_tenant"}, store.Tenant{}, 0, 0},
		{"deployment's rule off, a tier still limits", ratelimit.Rule{Name: "login_tenant"}, store.Tenant{Tier: store.TierFree}, 600, time.Minute},
		{"unnamed deployment rule", ratelimit.Rule{Limit: 6000, Window: time.Minute}, store.Tenant{Tier: store.TierGrowth}, 3000, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ratelimit.NewTenantLimits(tc.def).RuleOf(tc.tenant)
			if r.Limit != tc.limit || r.Window != tc.window || r.Name != "login_tenant" {
				t.Errorf("RuleOf = %+v, want login_tenant, %d per %v", r, tc.limit, tc.window)
			}
		})
	}
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

// TestCheckTenant: a caller that has just read the tenant's row (routing
// a sign-in) spends its budget against the row's tier or override in the
// limiter's one round trip; a change of override applies on every node
// from the next row read, in the same bucket; and a tenant no rule limits
// costs no round trip.
func TestCheckTenant(t *testing.T) {
	ctx := context.Background()
	db := storetest.Postgres(t)
	prefix := sessionstest.Prefix(t, sessionstest.Redis(t))
	// node is one broker node: its own Redis client over the shared
	// Redis, its own TenantLimits.
	type node struct {
		limits  *ratelimit.TenantLimits
		guard   *ratelimit.Guard
		limiter *recordingLimiter
		rt      *sessionstest.RoundTrips
	}
	nodeWith := func(def ratelimit.Rule) node {
		c := sessionstest.Redis(t)
		rt := &sessionstest.RoundTrips{}
		c.AddHook(rt)
		rec := &recordingLimiter{Limiter: sessions.NewRedis(c, sessions.RedisOptions{Prefix: prefix})}
		return node{ratelimit.NewTenantLimits(def), ratelimit.New(rec, ratelimit.Options{}), rec, rt}
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
	spend := func(n node, tn store.Tenant) (limit int, roundTrips int64) {
		t.Helper()
		before := n.rt.Count()
		n.limiter.last.Store(0)
		if ok, _ := n.limits.CheckTenant(ctx, n.guard, tn); !ok {
			t.Fatalf("a sign-in of %s was refused", tn.Name)
		}
		return int(n.limiter.last.Load()), n.rt.Count() - before
	}

	ent, err := db.CreateTenant(ctx, store.Tenant{Name: "Big", Tier: store.TierEnterprise})
	if err != nil {
		t.Fatal(err)
	}
	if limit, rt := spend(n1, row(ent.ID)); limit != 12000 || rt != 1 {
		t.Errorf("enterprise tenant: checked against %d in %d round trips, want 12000 in 1", limit, rt)
	}
	// The first sign-in's 5 ms (a 12,000th of the minute) must have passed
	// before five a minute apply: until then the bucket still holds it,
	// and the fifth of those five would find it just short of room.
	time.Sleep(20 * time.Millisecond)
	override := 5
	if _, err := db.UpdateTenant(store.WithTenant(ctx, ent.ID), store.TenantUpdate{SignInPerMinute: &override}); err != nil {
		t.Fatal(err)
	}
	for i, n := range []node{n2, n1} {
		if limit, rt := spend(n, row(ent.ID)); limit != 5 || rt != 1 {
			t.Errorf("node %d after the override: checked against %d in %d round trips, want 5 in 1", 2-i, limit, rt)
		}
	}
	// One bucket, whichever node: the two sign-ins at five a minute and
	// three more fill it, the next is refused.
	for range 3 {
		spend(n1, row(ent.ID))
	}
	if ok, wait := n2.limits.CheckTenant(ctx, n2.guard, row(ent.ID)); ok || wait <= 0 {
		t.Errorf("the sixth sign-in at 5 per minute: allowed %v, retry after %v; want refused with a wait", ok, wait)
	}
	// Clearing the override returns to the tier's default.
	zero := 0
	if _, err := db.UpdateTenant(store.WithTenant(ctx, ent.ID), store.TenantUpdate{SignInPerMinute: &zero}); err != nil {
		t.Fatal(err)
	}
	// Whether this one is allowed depends on how much of the minute the
	// five a minute still hold in the shared bucket (about all of it):
	// what matters is the rule it is checked against.
	n1.limiter.last.Store(0)
	n1.limits.CheckTenant(ctx, n1.guard, row(ent.ID))
	if limit := n1.limiter.last.Load(); limit != 12000 {
		t.Errorf("after clearing the override: checked against %d, want 12000", limit)
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
