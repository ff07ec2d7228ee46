package events

import (
	"context"
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

// drain is the loop behind the webhook Dispatcher, the LogoutDispatcher and
// the Revoker: it calls step, which handles one batch of due rows and says
// how many, at once again while batches succeed (there may be more),
// otherwise after idle — or after retry when the batch failed — or when
// wake fires. It returns when ctx is done; report hears every error that
// is not the shutdown.
func drain(ctx context.Context, wake wakeup, idle, retry time.Duration,
	step func(context.Context) (int, error), report func(context.Context, error)) {
	for {
		n, err := step(ctx)
		if err != nil && ctx.Err() == nil {
			report(ctx, err)
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
