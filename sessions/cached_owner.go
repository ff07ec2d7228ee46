package sessions

import (
	"context"
	"time"
)

// Owner returns the tenant and user of live session id, and when
// application clientID's grant in it was last revoked (zero if never; see
// Session.Revoked), or ErrNotFound. It is Get for the hot path of token
// checks (introspection): a cache hit copies nothing, where Get must clone
// the session's maps and slice.
func (c *Cached) Owner(ctx context.Context, id, clientID string) (tenantID, userID string, revoked time.Time, err error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if ok && now.Before(e.until) {
		if e.missing || !now.Before(e.s.ExpiresAt) {
			return "", "", time.Time{}, ErrNotFound
		}
		return e.s.TenantID, e.s.UserID, e.s.Revoked[clientID], nil
	}
	s, err := c.Get(ctx, id)
	if err != nil {
		return "", "", time.Time{}, err
	}
	return s.TenantID, s.UserID, s.Revoked[clientID], nil
}
