package events

import (
	"context"
	"sync"
	"time"
)

// deliverLeased sends a claimed batch within its lease. The claim pushed
// every item's next attempt to claimed+lease; an item still being sent
// after that could be claimed by another node and sent twice at once. So
// the items go out one destination at a time, in the batch's order, each
// destination on a goroutine of its own (a slow or unreachable receiver
// holds up no other), and an attempt starts only while startBy has not
// passed, which the caller sets so that an attempt started then ends, and
// is recorded, inside the lease. It returns the items that did not start
// (out of time, or ctx done: shutdown), for the caller to release, and
// the first error deliver returned (that destination's remaining items
// are not attempted and not returned: they keep their lease).
func deliverLeased[T any](ctx context.Context, items []T, dest func(T) string, now func() time.Time, startBy time.Time,
	deliver func(context.Context, T) error) (left []T, err error) {
	var order []string
	byDest := map[string][]T{}
	for _, it := range items {
		k := dest(it)
		if _, ok := byDest[k]; !ok {
			order = append(order, k)
		}
		byDest[k] = append(byDest[k], it)
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for _, k := range order {
		wg.Add(1)
		go func(queue []T) {
			defer wg.Done()
			for i, it := range queue {
				if ctx.Err() != nil || now().After(startBy) {
					mu.Lock()
					left = append(left, queue[i:]...)
					mu.Unlock()
					return
				}
				if e := deliver(ctx, it); e != nil {
					mu.Lock()
					if err == nil {
						err = e
					}
					mu.Unlock()
					return
				}
			}
		}(byDest[k])
	}
	wg.Wait()
	return left, err
}
