package events

import (
	"context"
	"fmt"
	"time"
)

// wakeup tells a drain loop to look for due work now instead of at its
// next poll. Signals coalesce: many kicks while the loop is busy make one
// more pass, never a backlog.
type wakeup chan struct{}

func newWakeup() wakeup { return make(wakeup, 1) }

func (w wakeup) kick() {
	select {
	case w <- struct{}{}:
	default:
	}
}

// reportEvery is how often drain reports an error that keeps recurring:
// a loop retrying every 100 ms through a database outage wrote ten log
// lines a second, each saying the same.
const reportEvery = time.Minute

// drain is the loop behind the webhook Dispatcher, the LogoutDispatcher and
// the Revoker: it calls step, which handles one batch of due rows and says
// how many, at once again while batches succeed (there may be more),
// otherwise after idle — or after retry when the batch failed — or when
// wake fires. It returns when ctx is done. report hears the first error of
// a run of failures, then one every reportEvery while they go on (saying
// how many it did not hear), never the shutdown.
func drain(ctx context.Context, wake wakeup, idle, retry time.Duration,
	step func(context.Context) (int, error), report func(context.Context, error)) {
	var (
		reported time.Time // when the current run of failures was last reported
		unheard  int       // failures since then
	)
	for {
		n, err := step(ctx)
		switch {
		case err == nil:
			reported, unheard = time.Time{}, 0
		case ctx.Err() != nil:
		case reported.IsZero() || time.Since(reported) >= reportEvery:
			if unheard > 0 {
				err = fmt.Errorf("%w (failing since; %d failures not reported in the last %v)", err, unheard, time.Since(reported).Round(time.Second))
			}
			report(ctx, err)
			reported, unheard = time.Now(), 0
		default:
			unheard++
		}
		if n > 0 && err == nil {
			continue
		}
		wait := idle
		if err != nil {
			wait = retry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}
