package sessions

import (
	"context"
	"sync"
)

// subscriber delivers revocations to one Subscribe callback from its own
// goroutine, so that a slow callback (a back-channel logout over HTTP)
// delays neither the revoking call nor the Redis connection that received
// the message. The queue is unbounded because a revocation must not be
// dropped; it stays short unless the callback blocks.
type subscriber struct {
	fn   func(Revocation)
	wake chan struct{}

	mu    sync.Mutex
	queue []Revocation
}

func newSubscriber(fn func(Revocation)) *subscriber {
	return &subscriber{fn: fn, wake: make(chan struct{}, 1)}
}

func (s *subscriber) push(r Revocation) {
	s.mu.Lock()
	s.queue = append(s.queue, r)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // already woken
	}
}

// run calls fn for each queued revocation, in order, until ctx is done.
func (s *subscriber) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, r := range batch {
			if ctx.Err() != nil {
				return
			}
			s.fn(r)
		}
	}
}
