package adminportal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/admin-portal/portal"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
)

// PortalLinks makes one-time links into the self-serve portal
// (*portal.Portal).
type PortalLinks interface {
	CreateLink(ctx context.Context, intent, returnURL string) (url string, expires time.Time, err error)
}

type portalLinkRequest struct {
	TenantID  string `json:"tenant_id"`
	Intent    string `json:"intent"`
	ReturnURL string `json:"return_url"`
}

type portalLinkJSON struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreatePortalLink makes a portal link for the tenant in ctx on behalf of
// actor, audited as portal_link.created in the tenant's chain: the one code
// path of the operator API's POST /portal_links and the console. A tenant
// that is deleted is a 404 and one that is not live a 409 *httpserver.Error;
// a bad intent or return URL a *portal.FieldError.
func (a *API) CreatePortalLink(ctx context.Context, actor store.Actor, intent, returnURL string) (string, time.Time, error) {
	if a.portal == nil {
		return "", time.Time{}, errors.New("adminportal: no portal configured")
	}
	t, err := a.store.Tenant(ctx)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Status == store.TenantDeleted) {
		return "", time.Time{}, notFound("tenant") // a deleted tenant is out of service, as in loadTenant
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("load tenant: %w", err)
	}
	if !t.Status.Live() {
		return "", time.Time{}, conflict(httpserver.CodeConflict, fmt.Sprintf("tenant %s is %s; its admins cannot use the portal", t.ID, t.Status), nil)
	}
	var (
		url     string
		expires time.Time
	)
	err = a.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if url, expires, err = a.portal.CreateLink(ctx, intent, returnURL); err != nil {
			return err
		}
		return a.appendAudit(ctx, actor, "portal_link.created", store.Resource{Type: "tenant", ID: t.ID, Name: t.Name},
			map[string]any{"intent": intent, "expires_at": expires})
	})
	return url, expires, err
}

// createPortalLink answers POST /portal_links: a link the vendor sends to
// the tenant's IT admin. The link itself is the credential, shown once;
// only its hash is kept.
func (a *API) createPortalLink(c echo.Context) error {
	var req portalLinkRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if !store.HasPrefix(req.TenantID, store.PrefixTenant) {
		return invalid("tenant_id", "tenant_id must be a tenant id (tnt_…)")
	}
	ctx := store.WithTenant(c.Request().Context(), req.TenantID)
	httpserver.SetTenantID(ctx, req.TenantID)
	url, expires, err := a.CreatePortalLink(ctx, a.actor(c), req.Intent, req.ReturnURL)
	var fe *portal.FieldError
	if errors.As(err, &fe) {
		return invalid(fe.Field, "%s", fe.Message)
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, portalLinkJSON{URL: url, ExpiresAt: expires})
}
