package adminportal

import (
	"context"
	"encoding/json"
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
	ended, err := a.sessions.RevokeUser(ctx, tenantID, id)
	if err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	ids := make([]string, len(ended))
	for i, s := range ended {
		ids[i] = s.ID
	}
	// The sessions are gone whatever happens next; the audit row and the
	// event record it together or not at all.
	err = a.store.InTx(ctx, func(ctx context.Context) error {
		if err := a.audit(ctx, c, "user.sessions_revoked", store.Resource{Type: "user", ID: u.ID, Name: u.Email},
			map[string]any{"session_ids": ids}); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		data, err := json.Marshal(map[string]any{"user_id": u.ID, "session_ids": ids, "reason": "operator"})
		if err != nil {
			return fmt.Errorf("encode session.revoked: %w", err)
		}
		if _, err := a.store.AppendEvent(ctx, store.Event{TenantID: tenantID, Type: "session.revoked", Data: data}); err != nil {
			return fmt.Errorf("append event: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
