package adminportal

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/store"
)

// revokeUserSessions ends every broker session of a user, everywhere: the
// revocation fans out to every broker node, whose introspection answers
// active:false at once, and the applications that got tokens receive
// back-channel logouts. The user id names no tenant, so it is resolved
// first and every later call runs under that tenant.
func (a *API) revokeUserSessions(c echo.Context) error {
	if err := refuseBody(c); err != nil {
		return err
	}
	id := c.Param("id")
	if !store.HasPrefix(id, store.PrefixUser) {
		return notFound("user")
	}
	ctx := c.Request().Context()
	tenantID, err := a.store.ResolveUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("user")
	}
	if err != nil {
		return fmt.Errorf("resolve user: %w", err)
	}
	ctx = withTenant(ctx, tenantID)
	u, err := a.store.User(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("user")
	}
	if err != nil {
		return fmt.Errorf("load user: %w", err)
	}
	// The order to end the sessions commits with its audit row, then is
	// applied (the revoker announces the sessions it ended); if the session store is down it stays queued and
	// is applied as soon as it answers (see events.Revoker).
	var rv store.Revocation
	err = a.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		rv, err = a.store.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeUser, TenantID: tenantID, SubjectID: u.ID, Reason: "operator"})
		if err != nil {
			return fmt.Errorf("record revocation: %w", err)
		}
		// The session.revoked event comes from the revoker, with the ids
		// of the sessions the order ended, as for every other cause.
		// The user by id alone: the audit chain keeps its rows for the
		// tenant's life, and a person deleted over SCIM must not stay in
		// it by their email (see "Data retention and erasure").
		return a.audit(ctx, c, "user.sessions_revoked", store.Resource{Type: "user", ID: u.ID},
			map[string]any{"revocation_id": rv.ID})
	})
	if err != nil {
		return err
	}
	a.applyRevocation(ctx, &rv)
	return c.NoContent(http.StatusNoContent)
}
