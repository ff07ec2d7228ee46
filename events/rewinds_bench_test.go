package events_test

import (
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// BenchmarkRewindsReplay measures how fast a node replays kept
// revocations into a Redis that lost them (PostgreSQL, local Redis):
// what bounds how long the 503s after a restart last.
func BenchmarkRewindsReplay(b *testing.B) {
	ctx := b.Context()
	st := storetest.Postgres(b)
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "Replayed"})
	if err != nil {
		b.Fatal(err)
	}
	const orders = 2000
	for range orders {
		rv, err := st.RecordRevocation(store.WithTenant(ctx, tn.ID), store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: store.NewID(store.PrefixUser)})
		if err != nil {
			b.Fatal(err)
		}
		if err := st.FinishRevocation(ctx, rv.ID, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		r := sessionstest.NewRedis(b) // no epoch: replays everything
		c, err := sessions.NewCached(ctx, r, time.Minute, 100)
		if err != nil {
			b.Fatal(err)
		}
		rw, err := events.NewRewinds(events.RewindConfig{Store: st, Sessions: c, Keep: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rw.Check(ctx); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64(orders*b.N)/b.Elapsed().Seconds(), "orders/s")
}
