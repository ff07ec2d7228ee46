package adminportal

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
)

// LogoutStore is what the back-channel logout routes need of the store.
type LogoutStore interface {
	ListLogouts(ctx context.Context, q store.LogoutQuery) ([]store.Logout, string, error)
	RedeliverLogout(ctx context.Context, tenantID, id string) (store.Logout, error)
}

// mountLogouts registers a tenant's back-channel logouts: the same view
// of retries and dead letters as a webhook's deliveries, and the same
// redeliver action. The tenant comes from the route, checked by
// loadTenant; another tenant's logout is a 404.
func (a *API) mountLogouts(tenant *echo.Group) {
	getAndHead(tenant, "/logouts", a.listLogouts)
	tenant.POST("/logouts/:blo/redeliver", a.redeliverLogout)
}

// logoutJSON is one back-channel logout to one application.
type logoutJSON struct {
	ID            string `json:"id"`
	TenantID      string `json:"tenant_id"`
	ApplicationID string `json:"application_id"`
	SessionID     string `json:"session_id"`
	UserID        string `json:"user_id"`
	attemptsJSON
}

func toLogoutJSON(l store.Logout) logoutJSON {
	return logoutJSON{ID: l.ID, TenantID: l.TenantID, ApplicationID: l.ApplicationID, SessionID: l.SessionID, UserID: l.UserID,
		attemptsJSON: toAttemptsJSON(l.Status, l.Attempts, l.NextAttemptAt, l.LastStatusCode, l.LastError, l.CreatedAt, l.UpdatedAt)}
}

// listLogouts pages through the tenant's back-channel logouts, oldest
// first; status= and application_id= narrow them (status=dead: the dead
// letters).
func (a *API) listLogouts(c echo.Context) error {
	if err := onlyParams(c, "limit", "after", "status", "application_id"); err != nil {
		return err
	}
	p, err := parsePage(c, store.PrefixLogout)
	if err != nil {
		return err
	}
	q := store.LogoutQuery{TenantID: tenantOf(c).ID, ApplicationID: c.QueryParam("application_id"), Page: p}
	switch s := store.DeliveryStatus(c.QueryParam("status")); s {
	case "", store.DeliveryPending, store.DeliverySucceeded, store.DeliveryFailed, store.DeliveryDead:
		q.Status = s
	default:
		return invalid("status", "status must be pending, succeeded, failed or dead")
	}
	if q.ApplicationID != "" && !store.HasPrefix(q.ApplicationID, store.PrefixApplication) {
		return invalid("application_id", "application_id must be an application id (app_…)")
	}
	ls, next, err := a.logouts.ListLogouts(c.Request().Context(), q)
	if err != nil {
		return fmt.Errorf("list logouts: %w", err)
	}
	out := make([]logoutJSON, len(ls))
	for i, l := range ls {
		out[i] = toLogoutJSON(l)
	}
	return c.JSON(http.StatusOK, newList(out, next))
}

// redeliverLogout puts a failed or dead logout of the tenant back in the
// queue, due at once, with its audit row in the same transaction.
func (a *API) redeliverLogout(c echo.Context) error {
	if err := refuseBody(c); err != nil {
		return err
	}
	id := c.Param("blo")
	if !store.HasPrefix(id, store.PrefixLogout) {
		return notFound("logout")
	}
	ctx := c.Request().Context()
	tenantID := tenantOf(c).ID
	var l store.Logout
	err := a.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if l, err = a.logouts.RedeliverLogout(ctx, tenantID, id); err != nil {
			return err
		}
		return a.audit(ctx, c, "logout.redelivered", store.Resource{Type: "logout", ID: l.ID},
			map[string]any{"application_id": l.ApplicationID, "session_id": l.SessionID, "attempts": l.Attempts})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("logout")
	case errors.Is(err, store.ErrConflict):
		return conflict(httpserver.CodeConflict, "only a failed or dead logout can be redelivered", err)
	case err != nil:
		return fmt.Errorf("redeliver logout: %w", err)
	}
	return c.JSON(http.StatusOK, toLogoutJSON(l))
}
