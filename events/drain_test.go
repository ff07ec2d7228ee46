package events

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestDrainReportsARecurringErrorOnce: a step failing on every retry (a
// database outage) is reported once, not on each of the retries: the
// revocation loop, retrying every 100 ms, wrote ten log lines a second
// through an outage. A success ends the run, so the next failure is
// reported again.
func TestDrainReportsARecurringErrorOnce(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	var steps, reports atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		drain(ctx, nil, time.Millisecond, time.Millisecond, func(context.Context) (int, error) {
			steps.Add(1)
			if failing.Load() {
				return 0, errors.New("database unavailable")
			}
			return 0, nil
		}, func(context.Context, error) { reports.Add(1) })
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("50 failed steps", func() bool { return steps.Load() >= 50 })
	if got := reports.Load(); got != 1 {
		t.Fatalf("%d reports of %d failures in a row, want 1", got, steps.Load())
	}
	failing.Store(false)
	n := steps.Load()
	waitFor("a successful step", func() bool { return steps.Load() > n+1 })
	failing.Store(true)
	waitFor("the failure after the recovery to be reported", func() bool { return reports.Load() == 2 })
	cancel()
	<-done
}
