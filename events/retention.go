package events

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Retention bounds: events are the sign-in log the portal and the console
// show and what GET /events replays, so the default keeps a quarter; the
// floor keeps every event through its whole retry window (DefaultMaxAge)
// with days to spare.
const (
	DefaultRetention = 90 * 24 * time.Hour
	MinRetention     = 7 * 24 * time.Hour
)

// pruneBatch is how many rows one statement deletes: short enough that
// SQLite's single writer and PostgreSQL's locks are held for milliseconds,
// so the broker's own writes never queue behind a prune.
const pruneBatch = 500

// PruneStore is what a Pruner needs of the store; *store.DB implements it.
type PruneStore interface {
	PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error)
	PurgeDeletedWebhooks(ctx context.Context, before time.Time, limit int) (int, error)
}

// Pruner deletes events older than the retention, with their deliveries,
// and then the rows of deleted webhooks that no delivery names. Without it
// the event table grows with every sign-in and SCIM write for ever.
type Pruner struct {
	Store     PruneStore
	Retention time.Duration    // zero: DefaultRetention; negative: keep everything
	Now       func() time.Time // nil: time.Now
	Log       *slog.Logger     // nil: discarded
}

// Prune deletes what the retention no longer keeps and reports how many
// events and webhooks went. It stops early, keeping what it did, when ctx
// ends.
func (p *Pruner) Prune(ctx context.Context) (events, webhooks int, err error) {
	keep := p.Retention
	switch {
	case keep < 0:
		return 0, 0, nil
	case keep == 0:
		keep = DefaultRetention
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	before := now().Add(-keep)
	if events, err = purgeAll(ctx, func() (int, error) { return p.Store.PurgeEvents(ctx, before, pruneBatch) }); err != nil {
		return events, 0, fmt.Errorf("events: prune: %w", err)
	}
	if webhooks, err = purgeAll(ctx, func() (int, error) { return p.Store.PurgeDeletedWebhooks(ctx, before, pruneBatch) }); err != nil {
		return events, webhooks, fmt.Errorf("events: prune deleted webhooks: %w", err)
	}
	return events, webhooks, nil
}

// purgeAll calls purge, one batch at a time, until a batch comes back short
// or ctx ends, and reports how many rows went.
func purgeAll(ctx context.Context, purge func() (int, error)) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, err := purge()
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
	return total, nil
}

// Run prunes now and then every interval until ctx ends. Every node may
// run it: two prunes at once delete disjoint rows or nothing.
func (p *Pruner) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		events, webhooks, err := p.Prune(ctx)
		if p.Log != nil {
			switch {
			case err != nil && ctx.Err() == nil:
				p.Log.ErrorContext(ctx, "event retention: prune failed; retried at the next run", "err", err)
			case events > 0 || webhooks > 0:
				p.Log.InfoContext(ctx, "event retention: pruned", "events", events, "webhooks", webhooks)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
