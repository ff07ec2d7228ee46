package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/idbroker/idbroker/store"
)

// DefaultTombstoneHorizon is how long a tombstone (a revocation kept
// outside the database, store/tombstones.go) is kept unless the operator
// ties it to a backup retention of their own: a year.
const DefaultTombstoneHorizon = 365 * 24 * time.Hour

// MinTombstoneHorizon is the shortest horizon: longer than the restore
// window, so that a deleted tenant's tombstone outlives its erasure.
const MinTombstoneHorizon = DefaultWindow + 24*time.Hour

// TombstoneStore forgets tombstones; *store.DB implements it.
type TombstoneStore interface {
	PruneTombstones(ctx context.Context, before time.Time) (int, error)
}

// TombstonePruner forgets the tombstones older than Horizon. A tombstone
// matters only to a backup taken before it was written; no backup older
// than the horizon is restored (the operator ties the horizon to the
// backup retention), so past it a tombstone protects nothing and is ~300
// bytes of Redis for ever.
type TombstonePruner struct {
	Store   TombstoneStore
	Horizon time.Duration    // zero: DefaultTombstoneHorizon
	Now     func() time.Time // nil: time.Now
	Log     *slog.Logger     // nil: discarded
}

// PruneDue forgets the tombstones written before now minus Horizon and
// says how many went. A store without a ledger has none: 0, nil.
func (p *TombstonePruner) PruneDue(ctx context.Context) (int, error) {
	now, horizon := time.Now, p.Horizon
	if p.Now != nil {
		now = p.Now
	}
	if horizon == 0 {
		horizon = DefaultTombstoneHorizon
	}
	n, err := p.Store.PruneTombstones(ctx, now().Add(-horizon))
	if errors.Is(err, store.ErrNoLedger) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("lifecycle: %w", err)
	}
	if n > 0 && p.Log != nil {
		p.Log.InfoContext(ctx, "tombstones older than the horizon forgotten", "count", n, "horizon", horizon.String())
	}
	return n, nil
}

// Run prunes now and then every interval until ctx ends. Nodes may all
// run it: forgetting a tombstone twice is harmless.
func (p *TombstonePruner) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := p.PruneDue(ctx); err != nil && ctx.Err() == nil && p.Log != nil {
			p.Log.ErrorContext(ctx, "forgetting old tombstones failed; retried at the next run", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
