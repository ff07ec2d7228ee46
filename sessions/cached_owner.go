package sessions

import "context"

// Owner returns the tenant and user of live session id, or ErrNotFound.
// It is Get for the hot path of token checks (introspection): a cache hit
// copies nothing, where Get must clone the session's map and slice.
func (c *Cached) Owner(ctx context.Context, id string) (tenantID, userID string, err error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if ok && now.Before(e.until) {
		if e.missing || !now.Before(e.s.ExpiresAt) {
			return "", "", ErrNotFound
		}
		return e.s.TenantID, e.s.UserID, nil
	}
	s, err := c.Get(ctx, id)
	if err != nil {
		return "", "", err
	}
	return s.TenantID, s.UserID, nil
}
