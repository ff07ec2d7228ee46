package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

func testUsage(t *testing.T, db *store.DB) {
	a, ta := newTenant(t, db, "A")
	b, tb := newTenant(t, db, "B")
	day1 := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	day2 := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
	rec := func(ctx context.Context, key string, m store.UsageMeter, v int64, at time.Time) bool {
		t.Helper()
		return must(db.RecordUsage(ctx, store.UsageRecord{IdempotencyKey: key, Meter: m, Subject: "usr_1", Value: v, At: at}))
	}
	if !rec(a, "l1", store.MeterLogin, 1, day1) || !rec(a, "l2", store.MeterLogin, 1, day2) || !rec(a, "c", store.MeterConnections, 3, day2) {
		t.Fatal("first records were not written")
	}
	if rec(a, "l1", store.MeterLogin, 1, day2) {
		t.Fatal("a second record with the same key was written")
	}
	// Keys are per tenant: B's l1 is another record.
	if !rec(b, "l1", store.MeterLogin, 1, day1) {
		t.Fatal("B's record was taken for A's")
	}
	_, err := db.RecordUsage(a, store.UsageRecord{IdempotencyKey: "x", Meter: "bogus"})
	wantErr(t, err, store.ErrInvalid)
	_, err = db.RecordUsage(context.Background(), store.UsageRecord{IdempotencyKey: "x", Meter: store.MeterLogin})
	wantErr(t, err, store.ErrNoTenant)

	// A record in a rolled-back transaction is not kept.
	_ = db.InTx(a, func(ctx context.Context) error {
		rec(ctx, "l3", store.MeterLogin, 1, day2)
		return store.ErrConflict
	})

	from, to := day1.Add(-time.Hour), day2.Add(time.Hour)
	days := must(db.UsageByDay(a, from, to))
	want := []store.UsageDay{
		{Day: "2026-11-30", Meter: store.MeterLogin, Sum: 1, Max: 1},
		{Day: "2026-12-01", Meter: store.MeterConnections, Sum: 3, Max: 3},
		{Day: "2026-12-01", Meter: store.MeterLogin, Sum: 1, Max: 1},
	}
	if len(days) != len(want) {
		t.Fatalf("days = %+v, want %+v", days, want)
	}
	for i := range want {
		if days[i] != want[i] {
			t.Fatalf("day %d = %+v, want %+v", i, days[i], want[i])
		}
	}
	if d := must(db.UsageByDay(a, day2, to)); len(d) != 2 {
		t.Fatalf("from is not inclusive or to not exclusive: %+v", d)
	}

	// Paging in time order, then key.
	var keys []string
	var afterAt time.Time
	afterKey := ""
	for {
		page := must(db.UsageRecords(a, from, to, afterAt, afterKey, 2))
		for _, r := range page {
			if r.TenantID != ta.ID {
				t.Fatalf("record of %s in A's page", r.TenantID)
			}
			keys = append(keys, r.IdempotencyKey)
		}
		if len(page) < 2 {
			break
		}
		afterAt, afterKey = page[len(page)-1].At, page[len(page)-1].IdempotencyKey
	}
	if got := len(keys); got != 3 || keys[0] != "l1" || keys[1] != "c" || keys[2] != "l2" {
		t.Fatalf("paged keys = %v, want [l1 c l2]", keys)
	}

	tenants := must(db.UsageTenants(context.Background(), from, to))
	if len(tenants) != 2 || !((tenants[0] == ta.ID && tenants[1] == tb.ID) || (tenants[0] == tb.ID && tenants[1] == ta.ID)) {
		t.Fatalf("usage tenants = %v, want A and B", tenants)
	}

	conns, users, err := db.UsageCounts(a)
	if err != nil || conns != 0 || users != 0 {
		t.Fatalf("counts of an empty tenant = %d, %d, %v", conns, users, err)
	}

	// Erasing A takes its records; B's stay.
	if err := db.DeleteTenant(a); err != nil {
		t.Fatal(err)
	}
	if r := must(db.UsageRecords(a, from, to, time.Time{}, "", 10)); len(r) != 0 {
		t.Fatalf("records of the erased tenant remain: %+v", r)
	}
	if r := must(db.UsageRecords(b, from, to, time.Time{}, "", 10)); len(r) != 1 {
		t.Fatalf("B has %d records, want 1", len(r))
	}
}
