package broker

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// DefaultActiveTTL bounds how long a "still active" answer about a user or
// tenant is trusted without asking the database again.
const DefaultActiveTTL = 5 * time.Second

// errInactive: the user was deactivated or deleted, or their tenant paused
// or deleted.
var errInactive = errors.New("broker: user or tenant no longer active")

// activeCache answers "is this user, and their tenant, still active?" for
// token issuance, refresh and userinfo. It is the check that does not
// depend on the revocation having reached the session store: a lost or
// delayed revocation can never let a deprovisioned user's session mint
// tokens for longer than the TTL. Revocations heard through the session
// store's subscription drop the affected entries at once.
type activeCache struct {
	store Store
	ttl   time.Duration
	now   func() time.Time

	mu      sync.RWMutex
	users   map[[2]string]time.Time // {tenant, user} → trusted active until
	tenants map[string]time.Time    // tenant → trusted live until
	gen     uint64                  // invalidations; see sessions.Cached
	// sweepAt is the size at which the next insert drops expired entries,
	// so the maps hold the users seen in the last TTL, not every user ever.
	sweepAt int
}

// minSweep is the smallest map size worth sweeping.
const minSweep = 1024

func newActiveCache(s Store, ttl time.Duration, now func() time.Time) *activeCache {
	return &activeCache{store: s, ttl: ttl, now: now, users: map[[2]string]time.Time{}, tenants: map[string]time.Time{}}
}

// invalidate drops what revocation r makes doubtful.
func (c *activeCache) invalidate(r sessions.Revocation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	switch {
	case r.Reason == sessions.ReasonResync:
		clear(c.users)
		clear(c.tenants)
	case r.Reason == sessions.ReasonTenant:
		delete(c.tenants, r.TenantID)
	case r.UserID != "":
		delete(c.users, [2]string{r.TenantID, r.UserID})
	}
}

// check returns nil when user and tenant are active, errInactive when not,
// or the store's error.
func (c *activeCache) check(ctx context.Context, tenantID, userID string) error {
	now := c.now()
	key := [2]string{tenantID, userID}
	c.mu.RLock()
	tUntil, tOK := c.tenants[tenantID]
	uUntil, uOK := c.users[key]
	gen := c.gen
	c.mu.RUnlock()
	if tOK && uOK && now.Before(tUntil) && now.Before(uUntil) {
		return nil
	}
	tctx := store.WithTenant(ctx, tenantID)
	t, err := c.store.Tenant(tctx)
	if errors.Is(err, store.ErrNotFound) {
		return errInactive
	}
	if err != nil {
		return err
	}
	if !t.Status.Live() {
		return errInactive
	}
	u, err := c.store.User(tctx, userID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !u.Active {
		return errInactive
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	if gen == c.gen {
		c.tenants[tenantID] = now.Add(c.ttl)
		c.users[key] = now.Add(c.ttl)
		if len(c.users) >= c.sweepAt {
			c.sweep(now)
		}
	}
	c.mu.Unlock()
	return nil
}

// sweep drops expired entries; the next sweep waits until the maps have
// doubled, so its cost is spread over the inserts in between. c.mu is held.
func (c *activeCache) sweep(now time.Time) {
	maps.DeleteFunc(c.users, func(_ [2]string, until time.Time) bool { return !now.Before(until) })
	maps.DeleteFunc(c.tenants, func(_ string, until time.Time) bool { return !now.Before(until) })
	c.sweepAt = max(minSweep, 2*len(c.users))
}

// checkActive is activeCache.check as the token endpoint's error.
func (p *Provider) checkActive(ctx context.Context, tenantID, userID string) error {
	err := p.active.check(ctx, tenantID, userID)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errInactive):
		return oidc.ErrInvalidGrant().WithDescription("the user or their organisation is no longer active")
	}
	p.log.ErrorContext(ctx, "broker: check user is active", "err", err)
	return op.NewStatusError(&oidc.Error{ErrorType: errTemporarilyUnavailable, Description: "try again shortly", Parent: err}, 503)
}
