package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
)

// completeIdPInitiated finishes a validated unsolicited login (an IdP
// dashboard tile) on a connection that allows them. No application asked
// for it, so none gets a code: the user is signed in as for any other
// login (JIT user, usage, authentication.succeeded), the broker's SSO
// session and cookie are opened, and the browser goes to the landing
// application's initiate_login_uri with iss and login_hint (OpenID Connect
// Core §4). The application then sends an ordinary authorization request
// (its own state, nonce and PKCE), which the session answers without the
// IdP. Sending a code or tokens nobody asked for would let any page that
// can post to the ACS plant a session in the application (login CSRF).
func (p *Provider) completeIdPInitiated(ctx context.Context, c echo.Context, conn store.Connection, res connections.Result, fail func(code, reason, clientID string) error) error {
	app, why, err := p.landing(ctx, res)
	if err != nil {
		return p.internal(c, err)
	}
	if why != "" {
		return fail(ReasonNoRequest, why, "")
	}
	sid := store.NewID(store.PrefixSession)
	// No authorization request to bill once: the new session is the
	// sign-in's identity.
	u, cl, err := p.provision(ctx, conn, res.Profile, sid, app.ID, sid, map[string]any{"idp_initiated": true})
	if lf, ok := errors.AsType[*loginFailure](err); ok {
		return fail(lf.code, lf.reason, app.ID)
	}
	if err != nil {
		return p.internal(c, err)
	}
	s, cookie, _, err := p.newSession(ctx, nil, sid, conn.TenantID, u.ID, conn.ID, cl, res.Profile.AuthTime, replacedSessions(p.heldSessions(c), conn.TenantID, u.ID))
	if err != nil {
		return p.internal(c, err)
	}
	if err := p.stillAllowed(ctx, conn, u.ID, sid); err != nil {
		if lf, ok := errors.AsType[*loginFailure](err); ok {
			return fail(lf.code, lf.reason, app.ID)
		}
		return p.internal(c, err)
	}
	p.setCookie(c, cookie, s.ExpiresAt)
	// The user's stored address: the one the session's claims, and so
	// the reuse of the session for a login_hint, compare with.
	target, err := initiateLoginURL(app.InitiateLoginURI, p.issuer, u.Email)
	if err != nil {
		return p.internal(c, fmt.Errorf("broker: application %s initiate_login_uri: %w", app.ID, err))
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, target)
}

// landing is the application an IdP-initiated login goes to: the one a
// RelayState names by client_id (Okta's "Default RelayState", per tile),
// when it can receive such logins, else the connection's own choice. why
// says, for the tenant admin, why there is none.
func (p *Provider) landing(ctx context.Context, res connections.Result) (app store.Application, why string, err error) {
	if store.HasPrefix(res.RelayState, store.PrefixApplication) {
		a, err := p.apps.get(ctx, res.RelayState)
		switch {
		case err == nil && a.InitiateLoginURI != "":
			return a, "", nil
		case err != nil && !errors.Is(err, errUnknownClient):
			return store.Application{}, "", err
		}
	}
	id := res.IdPInitiatedClientID
	if id == "" {
		return store.Application{}, "IdP-initiated login, and the connection names no application to send it to: set the connection's saml.idp_initiated_client_id to the client_id of an application that has an initiate_login_uri", nil
	}
	a, err := p.apps.get(ctx, id)
	switch {
	case errors.Is(err, errUnknownClient):
		return store.Application{}, "IdP-initiated login: application " + id + " (the connection's saml.idp_initiated_client_id) no longer exists; name another", nil
	case err != nil:
		return store.Application{}, "", err
	case a.InitiateLoginURI == "":
		return store.Application{}, "IdP-initiated login: application " + id + " (the connection's saml.idp_initiated_client_id) has no initiate_login_uri; set one on the application", nil
	}
	return a, "", nil
}

// initiateLoginURL is uri with the parameters of OpenID Connect Core §4:
// iss, which tells the application which OP to start the sign-in with,
// and login_hint, which routes it to the same connection and session.
// The query uri was registered with is kept.
func initiateLoginURL(uri, issuer, email string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("iss", issuer)
	if email != "" {
		q.Set("login_hint", email)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
