package sessions_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// BenchmarkGet measures Get of a live session, the question token
// introspection asks on every call.
func BenchmarkGet(b *testing.B) {
	for _, bb := range benchStores(b) {
		b.Run(bb.name, func(b *testing.B) {
			st := bb.store
			s := sessions.Session{
				ID: "ses_bench_" + bb.name, TenantID: "tnt_a", UserID: "usr_1", ConnectionID: "conn_1",
				AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
			}
			ctx := context.Background()
			if err := st.Create(ctx, s); err != nil {
				b.Fatal(err)
			}
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := st.Get(ctx, s.ID); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := st.Get(ctx, s.ID); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}

// BenchmarkAllow measures one rate-limit decision.
func BenchmarkAllow(b *testing.B) {
	m := sessions.NewMemory()
	r := sessionstest.NewRedis(b)
	for _, bb := range []struct {
		name string
		l    sessions.Limiter
	}{{"Memory", m}, {"Redis", r}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				if _, err := bb.l.Allow(ctx, fmt.Sprint(i%1000), 1_000_000, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type benchStore struct {
	name  string
	store sessions.Store
}

func benchStores(b *testing.B) []benchStore {
	mem := sessions.NewMemory()
	r := sessionstest.NewRedis(b)
	return []benchStore{
		{"Memory", mem},
		{"Redis", r},
		{"CachedRedis", newCached(b, r, time.Minute, 0)},
	}
}
