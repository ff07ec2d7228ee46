package adminportal

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

func (a *API) listApplications(c echo.Context) error {
	if err := onlyParams(c, "limit", "after"); err != nil {
		return err
	}
	p, err := parsePage(c, store.PrefixApplication)
	if err != nil {
		return err
	}
	apps, next, err := a.store.ListApplications(c.Request().Context(), p)
	if err != nil {
		return fmt.Errorf("list applications: %w", err)
	}
	out := make([]applicationJSON, len(apps))
	for i, app := range apps {
		out[i] = toApplicationJSON(app)
	}
	return c.JSON(http.StatusOK, newList(out, next))
}

// loadApplication reads the application named in the path. Ids of another
// kind are not found without a query.
func (a *API) loadApplication(c echo.Context) (store.Application, error) {
	id := c.Param("app")
	if !store.HasPrefix(id, store.PrefixApplication) {
		return store.Application{}, notFound("application")
	}
	app, err := a.store.Application(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Application{}, notFound("application")
	}
	if err != nil {
		return store.Application{}, fmt.Errorf("get application: %w", err)
	}
	return app, nil
}

func (a *API) getApplication(c echo.Context) error {
	app, err := a.loadApplication(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toApplicationJSON(app))
}

// updateApplicationRequest is a PATCH: absent fields are left alone. The
// secret, public and the signing algorithm cannot change (they are unknown
// fields here, so the strict decoder refuses them by name). A field the
// application shows as null or [] when unset is unset by null as well as by
// "" or [] (a lifetime by null or 0); name and redirect_uris always have a
// value, so null is refused there.
type updateApplicationRequest struct {
	Name                   patchField[string]   `json:"name"`
	RedirectURIs           patchField[[]string] `json:"redirect_uris"`
	PostLogoutRedirectURIs patchField[[]string] `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   patchField[string]   `json:"backchannel_logout_uri"`
	InitiateLoginURI       patchField[string]   `json:"initiate_login_uri"`
	AccessTokenTTLSeconds  patchField[int64]    `json:"access_token_ttl_seconds"`
	IDTokenTTLSeconds      patchField[int64]    `json:"id_token_ttl_seconds"`
	RefreshTokenTTLSeconds patchField[int64]    `json:"refresh_token_ttl_seconds"`
	// RefreshTokenReuseIntervalSeconds: null or 0 is strict rotation.
	RefreshTokenReuseIntervalSeconds patchField[int64] `json:"refresh_token_reuse_interval_seconds"`
}

// given is the field's value when it was sent (null as the zero value,
// which unsets it), nil when absent.
func given[T any](f patchField[T]) *T {
	if !f.Set {
		return nil
	}
	return &f.Value
}

func (a *API) updateApplication(c echo.Context) error {
	cur, err := a.loadApplication(c)
	if err != nil {
		return err
	}
	var req updateApplicationRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := cmp.Or(refuseNull("name", req.Name.Null), refuseNull("redirect_uris", req.RedirectURIs.Null)); err != nil {
		return err
	}
	var u store.ApplicationUpdate
	if req.Name.Set {
		name, err := checkName("name", req.Name.Value)
		if err != nil {
			return err
		}
		u.Name = &name
	}
	if req.RedirectURIs.Set {
		if len(req.RedirectURIs.Value) == 0 {
			return invalid("redirect_uris", "redirect_uris needs at least one URI")
		}
		if err := checkURIs("redirect_uris", req.RedirectURIs.Value, cur.Public); err != nil {
			return err
		}
		u.RedirectURIs = &req.RedirectURIs.Value
	}
	if req.PostLogoutRedirectURIs.Set {
		uris := req.PostLogoutRedirectURIs.Value
		if uris == nil {
			uris = []string{} // null: none, as []
		}
		if err := checkURIs("post_logout_redirect_uris", uris, cur.Public); err != nil {
			return err
		}
		u.PostLogoutRedirectURIs = &uris
	}
	if req.BackchannelLogoutURI.Set {
		if err := checkBackchannelURI(req.BackchannelLogoutURI.Value, a.allowPrivate); err != nil {
			return err
		}
		u.BackchannelLogoutURI = &req.BackchannelLogoutURI.Value
	}
	if req.InitiateLoginURI.Set {
		if err := checkInitiateLoginURI(req.InitiateLoginURI.Value); err != nil {
			return err
		}
		u.InitiateLoginURI = &req.InitiateLoginURI.Value
	}
	ttls := tokenLifetimes{
		AccessTokenTTLSeconds:  given(req.AccessTokenTTLSeconds),
		IDTokenTTLSeconds:      given(req.IDTokenTTLSeconds),
		RefreshTokenTTLSeconds: given(req.RefreshTokenTTLSeconds),
	}
	if u.AccessTokenTTL, u.IDTokenTTL, u.RefreshTokenTTL, err = ttls.check(); err != nil {
		return err
	}
	if u.RefreshTokenReuseInterval, err = reuseInterval(given(req.RefreshTokenReuseIntervalSeconds)); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var app store.Application
	err = a.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if app, err = a.store.UpdateApplication(ctx, cur.ID, u); err != nil {
			return err
		}
		// Redirect and logout URIs decide where codes and tokens go: the
		// row keeps them before and after.
		return a.auditVendor(ctx, c, "application.updated", applicationResource(app), map[string]any{
			"from": applicationURIs(cur), "to": applicationURIs(app),
		})
	})
	if errors.Is(err, store.ErrNotFound) { // deleted meanwhile
		return notFound("application")
	}
	if err != nil {
		return fmt.Errorf("update application: %w", err)
	}
	a.forgetApplication(c.Request().Context(), app.ID)
	op, _ := operatorFrom(ctx)
	a.log.InfoContext(ctx, "application updated", "application_id", app.ID, "api_key_id", op.ID)
	return c.JSON(http.StatusOK, toApplicationJSON(app))
}

// deleteApplication removes an application: its clients can no longer
// sign anyone in, and the tokens it holds stop introspecting active.
func (a *API) deleteApplication(c echo.Context) error {
	app, err := a.loadApplication(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	err = a.store.InTx(ctx, func(ctx context.Context) error {
		if err := a.store.DeleteApplication(ctx, app.ID); err != nil {
			return err
		}
		return a.auditVendor(ctx, c, "application.deleted", applicationResource(app), nil)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete application: %w", err)
	}
	a.forgetApplication(c.Request().Context(), app.ID)
	op, _ := operatorFrom(ctx)
	a.log.InfoContext(ctx, "application deleted", "application_id", app.ID, "api_key_id", op.ID)
	return c.NoContent(http.StatusNoContent)
}

func applicationResource(app store.Application) store.Resource {
	return store.Resource{Type: "application", ID: app.ID, Name: app.Name}
}

func applicationURIs(app store.Application) map[string]any {
	return map[string]any{
		"redirect_uris": app.RedirectURIs, "post_logout_redirect_uris": app.PostLogoutRedirectURIs,
		"backchannel_logout_uri": app.BackchannelLogoutURI, "initiate_login_uri": app.InitiateLoginURI,
	}
}

// forgetApplication tells the broker's cache on this node, and the other
// nodes' through the session store's channel (sessions.Announcer), so that
// a client secret rotated away, say, stops working everywhere at once. A
// lost announcement leaves the others their cache TTL
// (broker.DefaultAppCacheTTL), as before.
func (a *API) forgetApplication(ctx context.Context, id string) {
	if a.appCache != nil {
		a.appCache.ForgetApplication(id)
	}
	if an, ok := a.sessions.(sessions.Announcer); ok {
		if err := an.Announce(context.WithoutCancel(ctx), sessions.Revocation{Reason: sessions.ReasonApplication, ClientID: id}); err != nil {
			a.log.WarnContext(ctx, "telling the other nodes an application changed failed; they notice within their cache TTL", "application_id", id, "err", err)
		}
	}
}
