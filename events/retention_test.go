package events_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestPrunerKeepsTheRetention: a prune deletes every event older than the
// retention, over several batches, and nothing younger; a negative
// retention keeps everything.
func TestPrunerKeepsTheRetention(t *testing.T) {
	const n = 1200 // more than two of the pruner's batches
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := context.Background()
			for i := range n {
				if _, err := st.AppendEvent(ctx, store.Event{Type: fmt.Sprintf("x.%d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			appended := time.Now()
			for _, tc := range []struct {
				name      string
				retention time.Duration
				now       time.Time
				want      int
			}{
				{"within the default", 0, appended, 0},
				{"keep everything", -1, appended.Add(10 * 365 * 24 * time.Hour), 0},
				{"a week on, kept a fortnight", 14 * 24 * time.Hour, appended.Add(7 * 24 * time.Hour), 0},
				{"past the default", 0, appended.Add(events.DefaultRetention + time.Minute), n},
				{"nothing left", 0, appended.Add(events.DefaultRetention + time.Hour), 0},
			} {
				p := &events.Pruner{Store: st, Retention: tc.retention, Now: func() time.Time { return tc.now }}
				got, hooks, err := p.Prune(ctx)
				if err != nil || got != tc.want || hooks != 0 {
					t.Fatalf("%s: pruned %d events, %d webhooks, %v; want %d", tc.name, got, hooks, err, tc.want)
				}
			}
			if evs, _, err := st.ListEvents(ctx, store.Page{Limit: 10}); err != nil || len(evs) != 0 {
				t.Fatalf("left %d events, %v", len(evs), err)
			}
		})
	}
}
