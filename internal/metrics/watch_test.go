package metrics_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/metrics"
)

func TestWatch(t *testing.T) {
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(start.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	advance := func(d time.Duration) { now.Add(int64(d)) }

	var reads, pings atomic.Int32
	var queuesErr, cacheErr atomic.Value
	queuesErr.Store(errors.New(""))
	cacheErr.Store(errors.New(""))
	failing := func(v *atomic.Value) error {
		if err := v.Load().(error); err.Error() != "" {
			return err
		}
		return nil
	}
	reg := metrics.New()
	if out := scrape(t, reg.Handler()); strings.Contains(out, "idbroker_dependency_up") || strings.Contains(out, "_pending") {
		t.Fatalf("gauges before Watch:\n%s", out)
	}
	reg.Watch(metrics.Watch{
		Queues: func(ctx context.Context) (metrics.Queues, error) {
			reads.Add(1)
			if err := failing(&queuesErr); err != nil {
				return metrics.Queues{}, err
			}
			return metrics.Queues{
				Revocations:       metrics.QueueState{Pending: 1, Oldest: start.Add(-5 * time.Second)},
				WebhookDeliveries: metrics.QueueState{Pending: 3, Oldest: start.Add(-time.Minute)},
			}, nil
		},
		Dependencies: map[string]func(context.Context) error{
			"database": func(context.Context) error { return nil },
			"cache": func(context.Context) error {
				pings.Add(1)
				return failing(&cacheErr)
			},
		},
		Now: clock,
	})

	want := func(out string, lines ...string) {
		t.Helper()
		for _, l := range lines {
			if !strings.Contains(out, l+"\n") {
				t.Errorf("no %q in:\n%s", l, out)
			}
		}
	}
	out := scrape(t, reg.Handler())
	want(out,
		"idbroker_revocations_pending 1",
		"idbroker_revocations_oldest_pending_age_seconds 5",
		"idbroker_backchannel_logouts_pending 0",
		"idbroker_backchannel_logouts_oldest_pending_age_seconds 0",
		"idbroker_webhook_deliveries_pending 3",
		"idbroker_webhook_deliveries_oldest_pending_age_seconds 60",
		`idbroker_dependency_up{dependency="cache"} 1`,
		`idbroker_dependency_up{dependency="database"} 1`,
	)
	for _, l := range []string{"# HELP idbroker_revocations_oldest_pending_age_seconds", "# TYPE idbroker_dependency_up gauge"} {
		if !strings.Contains(out, l) {
			t.Errorf("no %q", l)
		}
	}

	// Within a second, scrapes share the reading, and the age still grows.
	cacheErr.Store(errors.New("redis: connection refused"))
	advance(500 * time.Millisecond)
	for range 5 {
		out = scrape(t, reg.Handler())
	}
	if reads.Load() != 1 || pings.Load() != 1 {
		t.Fatalf("%d queue reads and %d pings for 6 scrapes in a second, want 1", reads.Load(), pings.Load())
	}
	want(out, "idbroker_revocations_oldest_pending_age_seconds 5.5", `idbroker_dependency_up{dependency="cache"} 1`)

	// A second later, read again: the cache is down.
	advance(time.Second)
	out = scrape(t, reg.Handler())
	want(out, `idbroker_dependency_up{dependency="cache"} 0`, `idbroker_dependency_up{dependency="database"} 1`)

	// Queues that cannot be read are left out, not shown stale.
	queuesErr.Store(errors.New("database down"))
	advance(time.Second)
	out = scrape(t, reg.Handler())
	if strings.Contains(out, "idbroker_revocations_pending ") {
		t.Errorf("stale queue gauges after a failed read:\n%s", out)
	}
	want(out, `idbroker_dependency_up{dependency="database"} 1`)
}

// TestWatchBounded: a check that hangs, ignoring its context, costs the
// scrape the timeout, not forever, and counts as down.
func TestWatchBounded(t *testing.T) {
	reg := metrics.New()
	hang := make(chan struct{})
	defer close(hang)
	reg.Watch(metrics.Watch{
		Dependencies: map[string]func(context.Context) error{
			"cache": func(context.Context) error { <-hang; return nil },
		},
		Timeout: 100 * time.Millisecond,
	})
	began := time.Now()
	out := scrape(t, reg.Handler())
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("scrape took %v", took)
	}
	if !strings.Contains(out, `idbroker_dependency_up{dependency="cache"} 0`) {
		t.Fatalf("hanging check not down:\n%s", out)
	}
}
