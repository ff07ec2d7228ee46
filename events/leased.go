package events

import (
	"context"
	"slices"
	"sync"
	"time"
)

// lanes sends a dispatcher's claimed batches one destination (a webhook,
// an application) at a time, each destination on a goroutine of its own,
// so that a slow or unreachable receiver holds up no other. A pass waits
// for its destinations up to a patience; those still sending after it go
// on by themselves, and the next claims leave their rows alone (busy), so
// that a receiver that hangs until its Timeout holds up neither the next
// pass nor, through a claim full of its backlog, anyone else.
type lanes struct {
	wake    wakeup // a destination's sends ended: its rows may be claimed again
	mu      sync.Mutex
	busy    map[string]bool
	running sync.WaitGroup
}

// newLanes returns lanes that kick wake, the dispatcher's drain loop, when
// a destination's sends end.
func newLanes(wake wakeup) *lanes { return &lanes{wake: wake, busy: map[string]bool{}} }

// busyDests lists the destinations still being sent to, for a claim to
// skip.
func (l *lanes) busyDests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.busy))
	for d := range l.busy {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// wait returns once every send left running has ended.
func (l *lanes) wait() { l.running.Wait() }

// runLanes sends items, a claimed batch in order, with send: each
// destination's items in one call, on its own goroutine. It waits up to
// patience (zero: for every destination) and returns the first error of
// the sends that ended by then; the errors of those left running go to
// report.
func runLanes[T any](ctx context.Context, l *lanes, items []T, dest func(T) string, patience time.Duration,
	send func(context.Context, []T) error, report func(error)) error {
	var order []string
	queues := map[string][]T{}
	for _, it := range items {
		k := dest(it)
		if _, ok := queues[k]; !ok {
			order = append(order, k)
		}
		queues[k] = append(queues[k], it)
	}
	done := make(chan error, len(order))
	l.mu.Lock()
	for _, k := range order {
		l.busy[k] = true
	}
	l.mu.Unlock()
	for _, k := range order {
		l.running.Add(1)
		go func(k string, queue []T) {
			defer l.running.Done()
			err := send(ctx, queue)
			l.mu.Lock()
			delete(l.busy, k)
			l.mu.Unlock()
			l.wake.kick()
			done <- err
		}(k, queues[k])
	}
	var expired <-chan time.Time
	if patience > 0 {
		t := time.NewTimer(patience)
		defer t.Stop()
		expired = t.C
	}
	var err error
	for waiting := len(order); waiting > 0; waiting-- {
		select {
		case e := <-done:
			if e != nil && err == nil {
				err = e
			}
		case <-expired:
			go func(n int) {
				for range n {
					if e := <-done; e != nil {
						report(e)
					}
				}
			}(waiting)
			return err
		}
	}
	return err
}

// sendInLease attempts queue, one destination's claimed items, in order,
// each starting only before startBy (so that it ends, and is recorded,
// inside the claim's lease), and hands those that did not start (out of
// time, or ctx done: shutdown) to release, for the next claim by any node.
// An item deliver fails on (its outcome not recorded) ends the queue; the
// rest keep their lease.
func sendInLease[T any](ctx context.Context, queue []T, now func() time.Time, startBy time.Time,
	deliver func(context.Context, T) error, release func(context.Context, []T) error) error {
	for i, it := range queue {
		if ctx.Err() != nil || now().After(startBy) {
			return release(context.WithoutCancel(ctx), queue[i:])
		}
		if err := deliver(ctx, it); err != nil {
			return err
		}
	}
	return nil
}
