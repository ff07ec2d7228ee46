package sessions

import (
	"context"
	"encoding/json"
	"fmt"
)

// ReasonApplication ends no session: application ClientID changed (its
// client secret rotated, its settings edited, or it was deleted), and
// nodes that cache applications read it again. Without it, another node's
// cache accepted a client secret rotated away until its entry expired.
const ReasonApplication = "application"

// Announcer tells every node's subscribers of a change that ends no
// session (ReasonApplication), on the revocations' channel. Like every
// message there it is delivered at most once: caches keep their TTL as
// the bound when one is lost.
type Announcer interface {
	Announce(ctx context.Context, r Revocation) error
}

var (
	_ Announcer = (*Memory)(nil)
	_ Announcer = (*Redis)(nil)
	_ Announcer = (*Cached)(nil)
)

// Announce implements Announcer: Memory has one node.
func (m *Memory) Announce(ctx context.Context, r Revocation) error {
	m.publish(r)
	return nil
}

// Announce implements Announcer with one PUBLISH.
func (r *Redis) Announce(ctx context.Context, rv Revocation) error {
	b, err := json.Marshal(rv)
	if err != nil {
		return fmt.Errorf("sessions: announce: %w", err)
	}
	if err := r.c.Publish(ctx, r.channel, b).Err(); err != nil {
		return fmt.Errorf("sessions: redis announce: %w", err)
	}
	return nil
}

// Announce implements Announcer through the store c wraps.
func (c *Cached) Announce(ctx context.Context, r Revocation) error {
	a, ok := c.store.(Announcer)
	if !ok {
		return fmt.Errorf("sessions: %T announces nothing", c.store)
	}
	return a.Announce(ctx, r)
}
