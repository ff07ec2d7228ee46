package usage_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
	"github.com/idbroker/idbroker/usage"
)

var backends = []struct {
	name string
	open func(testing.TB) *store.DB
}{
	{"sqlite", storetest.SQLite},
	{"postgres", storetest.Postgres},
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func tenant(t *testing.T, db *store.DB, name string) (context.Context, store.Tenant) {
	t.Helper()
	tn, err := db.CreateTenant(context.Background(), store.Tenant{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return store.WithTenant(context.Background(), tn.ID), tn
}

// TestMeters drives every meter through a known series and checks the
// report: retries and re-runs add nothing, a rolled-back fact leaves no
// record, MAU counts a user once per month.
func TestMeters(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := b.open(t)
			clk := &clock{time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
			m := usage.New(db, clk.now, nil)
			a, _ := tenant(t, db, "A")
			other, _ := tenant(t, db, "B")
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			inTx := func(ctx context.Context, fn func(ctx context.Context) error) error { return db.InTx(ctx, fn) }

			// November: alice 3 times (one retried), bob once.
			must(inTx(a, func(ctx context.Context) error { return m.Login(ctx, "usr_alice", "req1") }))
			must(inTx(a, func(ctx context.Context) error { return m.Login(ctx, "usr_alice", "req1") })) // retry
			must(inTx(a, func(ctx context.Context) error { return m.Login(ctx, "usr_alice", "req2") }))
			must(inTx(a, func(ctx context.Context) error { return m.Login(ctx, "usr_bob", "req3") }))
			// A sign-in whose transaction fails is not counted.
			crash := errors.New("crash")
			if err := inTx(a, func(ctx context.Context) error {
				must(m.Login(ctx, "usr_carol", "req4"))
				return crash
			}); !errors.Is(err, crash) {
				t.Fatal(err)
			}
			must(inTx(a, func(ctx context.Context) error { return m.SCIMOperation(ctx, "users.create") }))
			must(m.Snapshot(context.Background(), storeTenant(a)))
			// Another tenant's usage is not A's.
			must(inTx(other, func(ctx context.Context) error { return m.Login(ctx, "usr_x", "req1") }))

			// December: alice again (a new month, a new active user record),
			// two snapshots the same day (the first wins).
			clk.t = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
			must(inTx(a, func(ctx context.Context) error { return m.Login(ctx, "usr_alice", "req5") }))
			must(m.SnapshotAll(context.Background()))
			must(m.SnapshotAll(context.Background()))

			from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			to := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
			total, months, err := m.Report(a, from, to, usage.Month)
			must(err)
			want := usage.Totals{Logins: 4, MAU: 3, SCIMOperations: 1}
			if total != want {
				t.Fatalf("totals = %+v, want %+v", total, want)
			}
			if len(months) != 2 || months[0].MAU != 2 || months[0].Logins != 3 || months[1].MAU != 1 || months[1].Logins != 1 {
				t.Fatalf("months = %+v", months)
			}
			_, days, err := m.Report(a, from, to, usage.Day)
			must(err)
			if len(days) != 2 || !days[0].Start.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
				t.Fatalf("days = %+v", days)
			}

			// Export: every tenant, stable keys, the same twice.
			export := func(format string) []byte {
				var buf bytes.Buffer
				w, err := usage.NewWriter(&buf, format)
				must(err)
				must(m.Export(context.Background(), from, to, w.Write))
				must(w.Flush())
				return buf.Bytes()
			}
			first := export("ndjson")
			if !bytes.Equal(first, export("ndjson")) {
				t.Fatal("two exports of the same window differ")
			}
			keys := map[string]bool{}
			dec := json.NewDecoder(bytes.NewReader(first))
			n := 0
			for dec.More() {
				var e usage.Event
				must(dec.Decode(&e))
				if keys[e.IdempotencyKey] {
					t.Fatalf("idempotency key %s twice", e.IdempotencyKey)
				}
				keys[e.IdempotencyKey] = true
				if e.EventName == "" || e.TenantID == "" || e.Timestamp == 0 {
					t.Fatalf("incomplete event %+v", e)
				}
				n++
			}
			// A: 4 logins + 3 active users + 1 SCIM op + 2 days × 2
			// snapshots; B: 1 login, 1 active user, 1 day × 2 snapshots.
			if want := 4 + 3 + 1 + 4 + 1 + 1 + 2; n != want {
				t.Fatalf("exported %d records, want %d", n, want)
			}
			rows, err := csv.NewReader(bytes.NewReader(export("csv"))).ReadAll()
			must(err)
			if len(rows) != n+1 || rows[0][0] != "idempotency_key" {
				t.Fatalf("csv has %d rows, want header and %d", len(rows), n)
			}
		})
	}
}

func storeTenant(ctx context.Context) string {
	id, _ := store.TenantFrom(ctx)
	return id
}

// TestSnapshotSkipsDeletedTenants: a deleted tenant is out of service, so
// the daily snapshots write no connections or directory users for it while
// it waits out its restore window; restored, it is counted again. So is a
// cancelled one, whose service has ended; a paused one is still counted.
func TestSnapshotSkipsDeletedTenants(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := b.open(t)
			clk := &clock{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
			m := usage.New(db, clk.now, nil)
			live, _ := tenant(t, db, "Live")
			gone, goneT := tenant(t, db, "Gone")
			if _, err := db.SoftDeleteTenant(gone); err != nil {
				t.Fatal(err)
			}
			// Paused is a break (it may resume): still counted. Cancelled
			// is the end of the service: not.
			paused, _ := tenant(t, db, "Paused")
			cancelled, cancelledT := tenant(t, db, "Cancelled")
			for _, step := range []struct {
				ctx context.Context
				to  store.TenantStatus
			}{{paused, store.TenantPaused}, {cancelled, store.TenantPaused}, {cancelled, store.TenantCancelled}} {
				if _, err := db.UpdateTenant(step.ctx, store.TenantUpdate{Status: &step.to}); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.SnapshotAll(context.Background()); err != nil {
				t.Fatal(err)
			}
			from, to := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
			count := func() map[string]int {
				n := map[string]int{}
				if err := m.Export(context.Background(), from, to, func(r store.UsageRecord) error { n[r.TenantID]++; return nil }); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := count(); n[storeTenant(live)] != 2 || n[goneT.ID] != 0 || n[storeTenant(paused)] != 2 || n[cancelledT.ID] != 0 {
				t.Fatalf("records per tenant %v: want 2 for the live and the paused tenant, none for the deleted or the cancelled one", n)
			}
			if _, err := db.RestoreTenant(gone); err != nil {
				t.Fatal(err)
			}
			clk.t = clk.t.Add(24 * time.Hour)
			if err := m.SnapshotAll(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := count(); n[goneT.ID] != 2 {
				t.Fatalf("records per tenant %v: want 2 for the restored tenant", n)
			}
		})
	}
}

// TestActive: a user of a session begun at the IdP in an earlier month is
// active in the month they refresh, once, in their tenant only; in the
// month of their sign-in Login has counted them and Active adds nothing.
// Two meters (two nodes) write one record between them.
func TestActive(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := b.open(t)
			// Past the month's first hour, where an auth_time of the month
			// proves Login counted the user (TestActiveAtMonthBoundary).
			clk := &clock{time.Date(2026, 12, 1, 2, 0, 30, 0, time.UTC)}
			m1, m2 := usage.New(db, clk.now, nil), usage.New(db, clk.now, nil)
			a, _ := tenant(t, db, "A")
			other, _ := tenant(t, db, "B")
			novSignIn := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
			for _, step := range []struct {
				m        *usage.Meter
				ctx      context.Context
				user     string
				authTime time.Time
			}{
				{m1, a, "usr_alice", novSignIn},
				{m1, a, "usr_alice", novSignIn},
				{m2, a, "usr_alice", novSignIn},
				{m1, a, "usr_bob", clk.t.Add(-time.Second)}, // signed in this month: Login counted them
				{m1, other, "usr_carol", novSignIn},
			} {
				if err := step.m.Active(step.ctx, step.user, step.authTime); err != nil {
					t.Fatal(err)
				}
			}
			dec, next := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
			for _, want := range []struct {
				ctx  context.Context
				want usage.Totals
			}{{a, usage.Totals{MAU: 1}}, {other, usage.Totals{MAU: 1}}} {
				got, _, err := m1.Report(want.ctx, dec, next, usage.Month)
				if err != nil || got != want.want {
					t.Errorf("report %+v (%v), want %+v", got, err, want.want)
				}
			}
			if got, _, _ := m1.Report(a, novSignIn.AddDate(0, -1, 0), dec, usage.Month); got != (usage.Totals{}) {
				t.Errorf("November got %+v from December's refreshes", got)
			}
		})
	}
}

// TestActiveAtMonthBoundary: a sign-in that straddles midnight of the 1st
// has its Login record (and so its user.active record) in the month it
// began, and its session's auth_time, taken a moment later, in the next.
// That session's refreshes the next month make the user active in it: the
// auth_time is no proof that Login counted them that month. Each row is one
// user's sign-in and one refresh; want is December's MAU of the tenant.
func TestActiveAtMonthBoundary(t *testing.T) {
	nov30 := func(h, m, s, ms int) time.Time {
		return time.Date(2026, 11, 30, h, m, s, ms*int(time.Millisecond), time.UTC)
	}
	dec := func(d, h, m, s int) time.Time { return time.Date(2026, 12, d, h, m, s, 0, time.UTC) }
	for _, tc := range []struct {
		name     string
		login    time.Time // when provisioning ran (the Login record's time)
		authTime time.Time // the session's auth_time
		refresh  time.Time // when the session's tokens were refreshed
		want     int64     // December's MAU
	}{
		{"provisioned at 23:59:59.9, session after midnight", nov30(23, 59, 59, 900), dec(1, 0, 0, 0), dec(5, 10, 0, 0), 1},
		{"provisioned and session before midnight", nov30(23, 59, 59, 100), nov30(23, 59, 59, 0), dec(1, 0, 0, 1), 1},
		{"signed in in December", dec(1, 0, 0, 0), dec(1, 0, 0, 0), dec(1, 0, 5, 0), 1},
		{"signed in mid-December", dec(3, 9, 0, 0), dec(3, 9, 0, 0), dec(20, 9, 0, 0), 1},
		{"signed in in November, no refresh in December", nov30(12, 0, 0, 0), nov30(12, 0, 0, 0), nov30(13, 0, 0, 0), 0},
	} {
		for _, b := range backends {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				db := b.open(t)
				clk := &clock{tc.login}
				m := usage.New(db, clk.now, nil)
				a, _ := tenant(t, db, "A")
				other, _ := tenant(t, db, "B")
				if err := db.InTx(a, func(ctx context.Context) error { return m.Login(ctx, "usr_alice", "req1") }); err != nil {
					t.Fatal(err)
				}
				clk.t = tc.refresh
				// A second node, which has never seen the user.
				if err := usage.New(db, clk.now, nil).Active(a, "usr_alice", tc.authTime); err != nil {
					t.Fatal(err)
				}
				decStart, jan := dec(1, 0, 0, 0), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
				got, _, err := m.Report(a, decStart, jan, usage.Month)
				if err != nil || got.MAU != tc.want || got.Logins > 1 {
					t.Fatalf("December: %+v (%v), want MAU %d", got, err, tc.want)
				}
				// Nor is the user counted twice in the month of the sign-in.
				if nov, _, _ := m.Report(a, decStart.AddDate(0, -1, 0), decStart, usage.Month); nov.MAU > 1 {
					t.Fatalf("November: %+v", nov)
				}
				if got, _, _ := m.Report(other, decStart.AddDate(0, -1, 0), jan, usage.Month); got != (usage.Totals{}) {
					t.Fatalf("another tenant got %+v", got)
				}
			})
		}
	}
}

// TestGaugesArePeaks: connections and directory users are daily snapshots;
// a bucket or a window longer than a day reports the highest of them (not
// the last, not an average), and the export hands out the daily values the
// report took its peak from, so a billing system's max over them agrees.
func TestGaugesArePeaks(t *testing.T) {
	day := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 0, 20, 0, 0, time.UTC) }
	snapshots := []struct {
		at          time.Time
		conns, dirs int64
	}{
		{day(11, 29), 2, 40},
		{day(11, 30), 5, 10},
		{day(12, 1), 3, 30},
	}
	nov, dec, jan := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := b.open(t)
			m := usage.New(db, nil, nil)
			a, _ := tenant(t, db, "A")
			other, _ := tenant(t, db, "B")
			for _, s := range snapshots {
				for _, r := range []store.UsageRecord{
					{Meter: store.MeterConnections, Value: s.conns},
					{Meter: store.MeterDirectoryUsers, Value: s.dirs},
				} {
					r.IdempotencyKey, r.At = string(r.Meter)+":"+s.at.Format(time.DateOnly), s.at
					if _, err := db.RecordUsage(a, r); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, tc := range []struct {
				name     string
				ctx      context.Context
				from, to time.Time
				g        usage.Granularity
				total    [2]int64
				buckets  [][2]int64
			}{
				{"by day", a, nov, jan, usage.Day, [2]int64{5, 40}, [][2]int64{{2, 40}, {5, 10}, {3, 30}}},
				{"by month", a, nov, jan, usage.Month, [2]int64{5, 40}, [][2]int64{{5, 40}, {3, 30}}},
				{"December", a, dec, jan, usage.Month, [2]int64{3, 30}, [][2]int64{{3, 30}}},
				{"across the month boundary", a, day(11, 30).Add(-time.Hour), dec.Add(24 * time.Hour), usage.Month, [2]int64{5, 30}, [][2]int64{{5, 10}, {3, 30}}},
				{"another tenant", other, nov, jan, usage.Month, [2]int64{}, nil},
			} {
				total, buckets, err := m.Report(tc.ctx, tc.from, tc.to, tc.g)
				if err != nil {
					t.Fatal(err)
				}
				var got [][2]int64
				for _, bk := range buckets {
					got = append(got, [2]int64{bk.Connections, bk.DirectoryUsers})
				}
				if [2]int64{total.Connections, total.DirectoryUsers} != tc.total || fmt.Sprint(got) != fmt.Sprint(tc.buckets) {
					t.Errorf("%s: totals %+v, buckets %v; want %v, %v", tc.name, total, got, tc.total, tc.buckets)
				}
				// The export's daily values, maxed per meter, are the totals.
				var peak [2]int64
				if err := m.Export(context.Background(), tc.from, tc.to, func(r store.UsageRecord) error {
					if r.TenantID != storeTenant(tc.ctx) {
						return nil
					}
					switch r.Meter {
					case store.MeterConnections:
						peak[0] = max(peak[0], r.Value)
					case store.MeterDirectoryUsers:
						peak[1] = max(peak[1], r.Value)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if peak != tc.total {
					t.Errorf("%s: the export's peak %v, the report's %v", tc.name, peak, tc.total)
				}
			}
		})
	}
}

// TestExportPages: an export reads a tenant's records a page (1,000) at a
// time after the last one sent, by time then key. Every record is sent
// once and in order whatever the count, ties of time across a page's end
// included; one that commits while the export runs is sent once if its time
// is still ahead of the export, and not at all if the export has passed it.
func TestExportPages(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		n       int // records before the export
		arrives bool
	}{
		{"one short of a page", 999, false},
		{"a page", 1000, false},
		{"two pages and one, ties across the ends", 2001, false},
		{"records arriving while it runs", 1500, true},
	} {
		for _, b := range backends {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				db := b.open(t)
				m := usage.New(db, nil, nil)
				a, _ := tenant(t, db, "A")
				other, _ := tenant(t, db, "B")
				// Ten records a millisecond: every page ends inside a tie.
				rec := func(ctx context.Context, key string, i int) store.UsageRecord {
					return store.UsageRecord{IdempotencyKey: key, Meter: store.MeterLogin, Subject: "usr_1", Value: 1,
						At: at.Add(time.Duration(i/10) * time.Millisecond)}
				}
				if err := db.InTx(a, func(ctx context.Context) error {
					for i := range tc.n {
						if err := db.RecordUsageLater(ctx, rec(ctx, fmt.Sprintf("k%05d", i), i)); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if _, err := db.RecordUsage(other, rec(other, "k00000", 0)); err != nil {
					t.Fatal(err)
				}
				seen := map[string]int{}
				var prev store.UsageRecord
				sent := 0
				err := m.Export(context.Background(), at, at.Add(time.Hour), func(r store.UsageRecord) error {
					if r.TenantID != storeTenant(a) {
						return nil
					}
					if sent > 0 && (r.At.Before(prev.At) || r.At.Equal(prev.At) && r.IdempotencyKey <= prev.IdempotencyKey) {
						t.Fatalf("%s after %s: out of order", r.IdempotencyKey, prev.IdempotencyKey)
					}
					prev = r
					seen[r.IdempotencyKey]++
					if sent++; tc.arrives && sent == 500 {
						// Mid-page: behind the export (its first millisecond) and ahead
						// of it, which the next page reads.
						for key, i := range map[string]int{"late-behind": 0, "late-ahead": tc.n + 50} {
							if _, err := db.RecordUsage(a, rec(a, key, i)); err != nil {
								return err
							}
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				want := tc.n
				if tc.arrives {
					want++
					if seen["late-behind"] != 0 || seen["late-ahead"] != 1 {
						t.Errorf("arrivals sent %d (behind) and %d (ahead) times, want 0 and 1", seen["late-behind"], seen["late-ahead"])
					}
				}
				if len(seen) != want || sent != want {
					t.Fatalf("sent %d records, %d distinct; want %d", sent, len(seen), want)
				}
			})
		}
	}
}

// countingStore counts the tenants a snapshot pass counts.
type countingStore struct {
	usage.Store
	counts int
}

func (s *countingStore) UsageCounts(ctx context.Context) (int64, int64, error) {
	s.counts++
	return s.Store.UsageCounts(ctx)
}

// TestSnapshotAllOncePerDay: the hourly passes after the day's first
// snapshot count no tenant again on this node (with thousands of tenants
// each pass cost four statements per tenant, to write nothing); a tenant
// created since, and every tenant the next day, is counted.
func TestSnapshotAllOncePerDay(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := b.open(t)
			clk := &clock{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
			st := &countingStore{Store: db}
			m := usage.New(st, clk.now, nil)
			for _, name := range []string{"A", "B", "C"} {
				tenant(t, db, name)
			}
			pass := func(want int) {
				t.Helper()
				st.counts = 0
				if err := m.SnapshotAll(context.Background()); err != nil {
					t.Fatal(err)
				}
				if st.counts != want {
					t.Fatalf("%s: the pass counted %d tenants, want %d", clk.t, st.counts, want)
				}
			}
			pass(3)
			clk.t = clk.t.Add(time.Hour)
			pass(0)
			late, _ := tenant(t, db, "Late")
			pass(1)
			clk.t = time.Date(2026, 12, 2, 0, 5, 0, 0, time.UTC)
			pass(4)
			from, to := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
			days, err := db.UsageByDay(late, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if len(days) != 4 { // two meters, two days
				t.Fatalf("the late tenant's usage days %+v, want two meters on each of two days", days)
			}
		})
	}
}
