package slo_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/slo"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

var backends = []struct {
	name string
	open func(testing.TB) *store.DB
}{
	{"sqlite", storetest.SQLite},
	{"postgres", storetest.Postgres},
}

// clock is a settable clock shared by the recorders of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func newRecorder(t *testing.T, db *store.DB, node string, c *clock) *slo.Recorder {
	t.Helper()
	r, err := slo.New(slo.Config{Store: db, Node: node, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// observe records n requests of one kind, status and latency.
func observe(r *slo.Recorder, tenant string, kind store.SLOKind, n, status int, ms int) {
	for range n {
		r.Observe(tenant, kind, status, time.Duration(ms)*time.Millisecond)
	}
}

func flush(t *testing.T, rs ...*slo.Recorder) {
	t.Helper()
	for _, r := range rs {
		if err := r.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestReportFromKnownSeries measures a known series of requests on two
// nodes, over an injected clock, and checks every figure of the report.
func TestReportFromKnownSeries(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := b.open(t)
			tn, err := db.CreateTenant(ctx, store.Tenant{Name: "Acme", Tier: store.TierGrowth})
			if err != nil {
				t.Fatal(err)
			}
			other, err := db.CreateTenant(ctx, store.Tenant{Name: "Other", Tier: store.TierFree})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)
			c := &clock{}
			n1, n2 := newRecorder(t, db, "node-1", c), newRecorder(t, db, "node-2", c)

			// 40 days ago: outside every window, and pruned.
			c.set(now.Add(-40 * 24 * time.Hour))
			observe(n1, tn.ID, slo.SignIn, 5, http.StatusInternalServerError, 30)
			// 10 days ago: 50 fast sign-ins (30 d window only).
			c.set(now.Add(-10 * 24 * time.Hour))
			observe(n1, tn.ID, slo.SignIn, 50, http.StatusFound, 1)
			// 2 hours ago: 100 sign-ins at 40 ms (24 h and 30 d).
			c.set(now.Add(-2 * time.Hour))
			observe(n2, tn.ID, slo.SignIn, 100, http.StatusFound, 40)
			flush(t, n1, n2)

			// The last hour, on both nodes: 900 sign-ins at 80 ms, 80 at
			// 300 ms, 10 refused at 20 ms and 10 failed at 2 s.
			c.set(now.Add(-30 * time.Minute))
			observe(n1, tn.ID, slo.SignIn, 500, http.StatusFound, 80)
			observe(n2, tn.ID, slo.SignIn, 80, http.StatusFound, 300)
			observe(n2, tn.ID, slo.SignIn, 10, http.StatusForbidden, 20)
			// A flush in the middle of a minute, then the rest of it: the
			// node's row is replaced by the whole minute, not added to.
			flush(t, n1, n2)
			observe(n1, tn.ID, slo.SignIn, 400, http.StatusFound, 80)
			observe(n1, tn.ID, slo.SignIn, 10, http.StatusInternalServerError, 2000)
			// Tokens: 200 at 3 ms and one 503 at 1 ms, in the current minute.
			c.set(now)
			observe(n2, tn.ID, slo.Token, 200, http.StatusOK, 3)
			observe(n2, tn.ID, slo.Token, 1, http.StatusServiceUnavailable, 1)
			// Another tenant's requests count for it alone.
			observe(n1, other.ID, slo.SignIn, 7, http.StatusInternalServerError, 9000)
			flush(t, n1, n2)
			flush(t, n1, n2) // a second flush of nothing new changes nothing

			old := func() int64 {
				tot, err := db.SLOTotals(store.WithTenant(ctx, tn.ID), now.Add(-50*24*time.Hour), now.Add(-35*24*time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				return tot[slo.SignIn].Requests()
			}
			if n := old(); n != 5 {
				t.Fatalf("%d requests of 40 days ago written, want 5", n)
			}
			if err := n1.Prune(ctx); err != nil {
				t.Fatal(err)
			}
			if n := old(); n != 0 {
				t.Fatalf("%d requests of 40 days ago left after pruning", n)
			}
			got, err := slo.Report(ctx, db, tn, now)
			if err != nil {
				t.Fatal(err)
			}
			growth := slo.TargetJSON{P99Ms: 500, Availability: 0.999}
			end := time.Date(2026, 12, 1, 10, 1, 0, 0, time.UTC)
			want := slo.Result{
				TenantID: tn.ID, Tier: ptr("growth"), AsOf: now,
				SignIn: slo.Service{Target: growth, Windows: map[string]slo.Figures{
					"1h": {
						From: end.Add(-time.Hour), To: end,
						Requests: 1000, Succeeded: 980, ClientErrors: 10, ServerErrors: 10,
						// Ranks 500 and 990: the 100 ms and 500 ms buckets.
						P50Ms: ptr[int64](100), P99Ms: ptr[int64](500),
						ErrorRate: ptr(0.02), Availability: ptr(0.99),
						// (1 - 0.999) × 1000 = 1 failure allowed, 10 used.
						// A ratio of -9: nine budgets' worth over.
						ErrorBudget: slo.ErrorBudget{Allowed: 1, Used: 10, Remaining: -9, RemainingRatio: -9},
						LatencyMet:  ptr(true), AvailabilityMet: ptr(false),
					},
					"24h": {
						From: end.Add(-24 * time.Hour), To: end,
						Requests: 1100, Succeeded: 1080, ClientErrors: 10, ServerErrors: 10,
						P50Ms: ptr[int64](100), P99Ms: ptr[int64](500),
						ErrorRate: ptr(20.0 / 1100), Availability: ptr(1090.0 / 1100),
						ErrorBudget: slo.ErrorBudget{Allowed: 1.1, Used: 10, Remaining: -8.9, RemainingRatio: (1100 - 10_000) / 1100.0},
						LatencyMet:  ptr(true), AvailabilityMet: ptr(false),
					},
					"30d": {
						From: end.Add(-30 * 24 * time.Hour), To: end,
						Requests: 1150, Succeeded: 1130, ClientErrors: 10, ServerErrors: 10,
						// Rank 575: 50 at 5 ms, 10 at 25, 100 at 50, 900 at 100.
						P50Ms: ptr[int64](100), P99Ms: ptr[int64](500),
						ErrorRate: ptr(20.0 / 1150), Availability: ptr(1140.0 / 1150),
						ErrorBudget: slo.ErrorBudget{Allowed: 1.15, Used: 10, Remaining: -8.85, RemainingRatio: (1150 - 10_000) / 1150.0},
						LatencyMet:  ptr(true), AvailabilityMet: ptr(false),
					},
				}},
				Token: slo.Service{Target: growth, Windows: map[string]slo.Figures{}},
			}
			for _, w := range slo.Windows {
				want.Token.Windows[w.Name] = slo.Figures{
					From: end.Add(-w.Span), To: end,
					Requests: 201, Succeeded: 200, ServerErrors: 1,
					P50Ms: ptr[int64](5), P99Ms: ptr[int64](5),
					ErrorRate: ptr(1.0 / 201), Availability: ptr(200.0 / 201),
					ErrorBudget: slo.ErrorBudget{Allowed: 0.201, Used: 1, Remaining: -0.799, RemainingRatio: (201 - 1000) / 201.0},
					LatencyMet:  ptr(true), AvailabilityMet: ptr(false),
				}
			}
			gotJSON, _ := json.MarshalIndent(got, "", " ")
			wantJSON, _ := json.MarshalIndent(want, "", " ")
			if string(gotJSON) != string(wantJSON) {
				t.Fatalf("report:\n%s\nwant:\n%s", gotJSON, wantJSON)
			}

			// The other tenant, on the free tier, sees its own requests.
			o, err := slo.Report(ctx, db, other, now)
			if err != nil {
				t.Fatal(err)
			}
			h := o.SignIn.Windows["1h"]
			if o.SignIn.Target != (slo.TargetJSON{P99Ms: 1500, Availability: 0.995}) || h.Requests != 7 ||
				*h.P99Ms != 10000 || *h.LatencyMet || *h.Availability != 0 || o.Token.Windows["30d"].Requests != 0 {
				t.Fatalf("other tenant: %+v", o)
			}
			// No requests: counts are zero and the rest null, but the
			// error budget is untouched (a ratio of 1), not used up: no
			// traffic spends none of it.
			if f := o.Token.Windows["1h"]; f.P50Ms != nil || f.Availability != nil || f.LatencyMet != nil ||
				f.ErrorBudget != (slo.ErrorBudget{RemainingRatio: 1}) {
				t.Fatalf("empty window: %+v", f)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		tier  string
		p99   time.Duration
		avail float64
	}{
		{"free", 1500 * time.Millisecond, 0.995},
		{"growth", 500 * time.Millisecond, 0.999},
		{"enterprise", 250 * time.Millisecond, 0.9995},
		{"", 1500 * time.Millisecond, 0.995},
	} {
		if got := slo.TargetOf(tc.tier); got.P99 != tc.p99 || got.Availability() != tc.avail {
			t.Errorf("%q: %+v (availability %v)", tc.tier, got, got.Availability())
		}
	}
}

func TestOutcomeOf(t *testing.T) {
	for status, want := range map[int]slo.Outcome{
		200: slo.OK, 302: slo.OK, 400: slo.ClientError, 403: slo.ClientError, 429: slo.ClientError,
		500: slo.ServerError, 503: slo.ServerError,
	} {
		if got := slo.OutcomeOf(status); got != want {
			t.Errorf("%d: %v, want %v", status, got, want)
		}
	}
}

// failingStore fails every write until ok is set.
type failingStore struct {
	mu   sync.Mutex
	ok   bool
	rows []store.SLOMinute
}

func (f *failingStore) WriteSLOMinutes(_ context.Context, ms []store.SLOMinute) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ok {
		return errors.New("database down")
	}
	f.rows = append(f.rows, ms...)
	return nil
}

func (f *failingStore) PruneSLOMinutes(context.Context, time.Time) (int64, error) { return 0, nil }

// TestFlushKeepsWhatFailed checks that a failed flush loses nothing: the
// next one writes every minute since, and then they are forgotten.
func TestFlushKeepsWhatFailed(t *testing.T) {
	c := &clock{}
	c.set(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	st := &failingStore{}
	r, err := slo.New(slo.Config{Store: st, Node: "n", Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	r.Observe("tnt_a", slo.SignIn, 302, time.Millisecond)
	if err := r.Flush(context.Background()); err == nil {
		t.Fatal("a failed write was not reported")
	}
	c.set(c.now().Add(time.Minute))
	r.Observe("tnt_a", slo.SignIn, 302, time.Millisecond)
	st.ok = true
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(st.rows) != 2 || st.rows[0].OK+st.rows[1].OK != 2 {
		t.Fatalf("written %+v", st.rows)
	}
	st.rows = nil
	c.set(c.now().Add(time.Minute))
	if err := r.Flush(context.Background()); err != nil || len(st.rows) != 0 {
		t.Fatalf("a clean flush wrote %+v (%v)", st.rows, err)
	}
}

// TestRunFlushesAtShutdown: what a node measured since its last flush is
// written when its context ends, before Run returns.
func TestRunFlushesAtShutdown(t *testing.T) {
	st := &failingStore{ok: true}
	r, err := slo.New(slo.Config{Store: st, Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx, time.Hour) }()
	r.Observe("tnt_a", slo.Token, http.StatusOK, time.Millisecond)
	cancel()
	<-done
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.rows) != 1 || st.rows[0].OK != 1 {
		t.Fatalf("written at shutdown: %+v", st.rows)
	}
}
