package slo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/idbroker/idbroker/slo"
	"github.com/idbroker/idbroker/store"
)

type discardStore struct{}

func (discardStore) WriteSLOMinutes(context.Context, []store.SLOMinute) error { return nil }
func (discardStore) PruneSLOMinutes(context.Context, time.Time) (int64, error) {
	return 0, nil
}

// BenchmarkObserve is the cost a measured request adds on its hot path:
// one lock and one map update, spread over 1,000 tenants.
func BenchmarkObserve(b *testing.B) {
	r, err := slo.New(slo.Config{Store: discardStore{}, Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	tenants := make([]string, 1000)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("tnt_%04d", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Observe(tenants[i%len(tenants)], slo.Token, 200, 3*time.Millisecond)
			i++
		}
	})
}
