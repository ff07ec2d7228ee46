package connections

import "sync/atomic"

// clock chooses which cache entry to evict when the cache is full, by the
// CLOCK algorithm, an approximation of least-recently-used that keeps
// reads lock-cheap: a read only sets its entry's used bit (an atomic
// store, skipped when already set, under the cache's read lock or none),
// while LRU's list would need the write lock on every sign-in to move the
// entry to its front. An eviction sweeps the ring from the hand, giving
// every entry used since the last sweep a second chance (clearing its
// bit) and taking the first one not used: a connection signed in to
// within the last sweep stays, however many cold ones are loaded after it.
// A sweep clears at most one full turn of bits, so it ends within two.
//
// The zero clock is empty. Its methods are called with the cache's write
// lock held; slot.touch with any lock or none.
type clock struct {
	ring []*slot
	hand int
	// freed are the places in ring of slots removed since: taken before
	// any sweep, so that a delete makes room without evicting another.
	freed []int
}

// slot is one key's place in the ring. Every version of a key's entry
// shares it, so a change to the entry keeps its place and its bit.
type slot struct {
	key  string
	at   int // the slot's place in the ring
	used atomic.Bool
	// free: the key was removed from the cache; the slot is the next
	// victim and is then reused.
	free bool
}

// touch marks the slot used: the entry was read.
func (s *slot) touch() {
	if s != nil && !s.used.Load() {
		// Load first: a hot entry's bit is already set, and not
		// writing it again spares the other cores its cache line.
		s.used.Store(true)
	}
}

// add gives key a slot: a freed one, or a new one while the ring holds
// fewer than size, or else a victim's: then it returns the key the caller
// must evict too. A slot taken over is the same object, reset (no
// allocation on a full cache): a reader still holding the evicted entry
// may mark it used, which only spares the new key one sweep.
func (c *clock) add(key string, size int) (s *slot, victim string, evict bool) {
	for len(c.freed) > 0 {
		at := c.freed[len(c.freed)-1]
		c.freed = c.freed[:len(c.freed)-1]
		if at < len(c.ring) && c.ring[at].free { // not taken by a sweep since
			return c.ring[at].reuse(key), "", false
		}
	}
	if len(c.ring) < max(size, 1) {
		s = &slot{key: key, at: len(c.ring)}
		c.ring = append(c.ring, s)
		return s, "", false
	}
	for {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		s = c.ring[c.hand]
		c.hand++
		if !s.free && s.used.Swap(false) {
			continue // a second chance
		}
		victim, evict = s.key, !s.free
		return s.reuse(key), victim, evict
	}
}

// reuse makes s key's, unused.
func (s *slot) reuse(key string) *slot {
	s.key, s.free = key, false
	s.used.Store(false)
	return s
}

// remove frees s: its key has left the cache.
func (c *clock) remove(s *slot) {
	if s != nil && !s.free {
		s.free = true
		c.freed = append(c.freed, s.at)
	}
}

// reset empties the ring.
func (c *clock) reset() {
	c.ring, c.hand, c.freed = nil, 0, nil
}
