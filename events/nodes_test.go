package events_test

import (
	"context"
	"sync"
	"testing"
	"time"
)

// dueDeliverer is what both dispatchers offer a node's delivery loop.
type dueDeliverer interface {
	DeliverDue(ctx context.Context) (int, error)
}

// runNodes runs one delivery loop per dispatcher at once, as nodes sharing
// a database do, until done reports that everything arrived or ctx ends.
func runNodes(ctx context.Context, t *testing.T, nodes []dueDeliverer, done func() bool) {
	t.Helper()
	var wg sync.WaitGroup
	for _, d := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := d.DeliverDue(ctx); err != nil {
					t.Error(err)
					return
				}
				if done() {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
}
