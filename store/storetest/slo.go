package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

func testTenantTierAndLimits(t *testing.T, db *store.DB) {
	ctx := context.Background()
	_, err := db.CreateTenant(ctx, store.Tenant{Name: "x", Tier: "platinum"})
	wantErr(t, err, store.ErrInvalid)
	tn := must(db.CreateTenant(ctx, store.Tenant{Name: "Acme", Tier: store.TierGrowth}))
	tctx := store.WithTenant(ctx, tn.ID)
	if got := must(db.Tenant(tctx)); got.Tier != store.TierGrowth || got.SignInPerMinute != 0 {
		t.Fatalf("created %+v", got)
	}
	n, tier := 42, store.TierEnterprise
	up := must(db.UpdateTenant(tctx, store.TenantUpdate{Tier: &tier, SignInPerMinute: &n}))
	if up.Tier != store.TierEnterprise || up.SignInPerMinute != 42 {
		t.Fatalf("updated %+v", up)
	}
	if got := must(db.Tenant(tctx)); got.SignInPerMinute != 42 {
		t.Fatalf("override not kept: %+v", got)
	}
	// Other changes keep the override; a pointer to 0 clears it.
	name := "Acme Corp"
	if got := must(db.UpdateTenant(tctx, store.TenantUpdate{Name: &name})); got.SignInPerMinute != 42 {
		t.Fatalf("a name change lost the override: %+v", got)
	}
	for _, bad := range []int{-1, store.MaxSignInPerMinute + 1} {
		_, err = db.UpdateTenant(tctx, store.TenantUpdate{SignInPerMinute: &bad})
		wantErr(t, err, store.ErrInvalid)
	}
	bogus := "pro"
	_, err = db.UpdateTenant(tctx, store.TenantUpdate{Tier: &bogus})
	wantErr(t, err, store.ErrInvalid)
	zero := 0
	if got := must(db.UpdateTenant(tctx, store.TenantUpdate{SignInPerMinute: &zero})); got.SignInPerMinute != 0 {
		t.Fatalf("override not cleared: %+v", got)
	}
	if got := must(db.Tenant(tctx)); got.SignInPerMinute != 0 || got.Tier != store.TierEnterprise {
		t.Fatalf("after clearing: %+v", got)
	}
}

func testSLOMinutes(t *testing.T, db *store.DB) {
	a, ta := newTenant(t, db, "A")
	b, tb := newTenant(t, db, "B")
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	lat := func(i, n int) (l [store.SLOBuckets]int64) { l[i] = int64(n); return l }
	minute := func(tenant string, k store.SLOKind, at time.Time, node string, ok, cl, se int64, l [store.SLOBuckets]int64) store.SLOMinute {
		return store.SLOMinute{TenantID: tenant, Kind: k, Minute: at, Node: node,
			SLOCounts: store.SLOCounts{OK: ok, ClientErrors: cl, ServerErrors: se, Latency: l}}
	}
	if err := db.WriteSLOMinutes(context.Background(), []store.SLOMinute{
		minute(ta.ID, store.SLOSignIn, t0, "n1", 5, 1, 0, lat(2, 6)),
		minute(tb.ID, store.SLOSignIn, t0, "n1", 7, 0, 0, lat(0, 7)),
		minute(ta.ID, store.SLOSignIn, t0, "n2", 3, 0, 1, lat(13, 4)),
		minute(ta.ID, store.SLOToken, t0.Add(time.Minute), "n1", 2, 0, 0, lat(1, 2)),
		// A tenant that no longer exists is dropped, not an error.
		minute("tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV", store.SLOSignIn, t0, "n1", 1, 0, 0, lat(0, 1)),
	}); err != nil {
		t.Fatal(err)
	}
	// The same node writing its minute again replaces its row.
	if err := db.WriteSLOMinutes(context.Background(), []store.SLOMinute{
		minute(ta.ID, store.SLOSignIn, t0, "n1", 6, 1, 0, lat(2, 7)),
	}); err != nil {
		t.Fatal(err)
	}
	got := must(db.SLOTotals(a, t0, t0.Add(time.Hour)))
	wantSignIn := store.SLOCounts{OK: 9, ClientErrors: 1, ServerErrors: 1}
	wantSignIn.Latency[2], wantSignIn.Latency[13] = 7, 4
	if got[store.SLOSignIn] != wantSignIn || got[store.SLOToken].OK != 2 || got[store.SLOToken].Latency[1] != 2 {
		t.Fatalf("A's totals = %+v", got)
	}
	if r := got[store.SLOSignIn].Requests(); r != 11 {
		t.Fatalf("requests = %d", r)
	}
	// Windows are [from, to) by minute.
	if got := must(db.SLOTotals(a, t0.Add(time.Minute), t0.Add(time.Hour))); len(got) != 1 || got[store.SLOToken].OK != 2 {
		t.Fatalf("from is not inclusive: %+v", got)
	}
	if got := must(db.SLOTotals(a, t0.Add(-time.Hour), t0.Add(time.Minute))); len(got) != 1 || got[store.SLOSignIn].OK != 9 {
		t.Fatalf("to is not exclusive: %+v", got)
	}
	// Tenants see their own rows only.
	if got := must(db.SLOTotals(b, t0, t0.Add(time.Hour))); len(got) != 1 || got[store.SLOSignIn].OK != 7 {
		t.Fatalf("B's totals = %+v", got)
	}
	_, err := db.SLOTotals(context.Background(), t0, t0.Add(time.Hour))
	wantErr(t, err, store.ErrNoTenant)
	err = db.WriteSLOMinutes(context.Background(), []store.SLOMinute{minute(ta.ID, "bogus", t0, "n1", 1, 0, 0, lat(0, 1))})
	wantErr(t, err, store.ErrInvalid)

	// Pruning removes minutes before the cut-off, every tenant's.
	n := must(db.PruneSLOMinutes(context.Background(), t0.Add(time.Minute)))
	if n != 3 {
		t.Fatalf("pruned %d rows, want 3", n)
	}
	if got := must(db.SLOTotals(a, t0.Add(-time.Hour), t0.Add(time.Hour))); len(got) != 1 || got[store.SLOToken].OK != 2 {
		t.Fatalf("after pruning, A has %+v", got)
	}
	if got := must(db.SLOTotals(b, t0.Add(-time.Hour), t0.Add(time.Hour))); len(got) != 0 {
		t.Fatalf("after pruning, B has %+v", got)
	}
}
