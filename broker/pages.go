package broker

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/web"
)

// pageText is what an end user is told; never why in detail (that goes
// to the tenant admin as an authentication.failed event).
type pageText struct{ Title, Message string }

var (
	pageBadRequest    = pageText{"Sign-in failed", "The sign-in request is malformed."}
	pageUnknownClient = pageText{"Unknown application", "The application that sent you here is not registered with this sign-in service."}
	pageBadRedirect   = pageText{"Sign-in failed", "The application asked to return you to an address it has not registered."}
	pageUnavailable   = pageText{"Sign-in unavailable", "Sign-in is temporarily unavailable. Try again in a moment."}
	pageExpired       = pageText{"Sign-in expired", "This sign-in took too long or was already used. Go back to the application and sign in again."}
	pageNoConnection  = pageText{"Single sign-on not set up", "No single sign-on is set up for this organisation or email domain. Contact your IT administrator."}
	pageTenantPaused  = pageText{"Organisation not active", "Sign-in for this organisation is currently suspended. Contact your IT administrator."}
	pageConnInactive  = pageText{"Single sign-on disabled", "Single sign-on for this organisation is currently disabled. Contact your IT administrator."}
	pageHints         = pageText{"Sign-in failed", "The sign-in request names more than one organisation. Go back to the application and try again."}
	pageConnectorDown = pageText{"Sign-in unavailable", "Your organisation's identity provider cannot be reached right now. Try again in a moment."}
	pageLoginFailed   = pageText{"Sign-in failed", "Your organisation's sign-in could not be completed. If this keeps happening, give your IT administrator the reference below."}
	pageSignedOut     = pageText{"Signed out", "You are signed out."}
	pageNotFound      = pageText{"Page not found", "There is nothing at this address. Go back to the application and sign in again."}
	pageOtherBrowser  = pageText{"Sign-in failed", "This sign-in was started in another browser. Go back to the application and sign in again from this browser."}
)

// page renders an end-user error page with the request id as reference.
// Every 503 says when to try again, whichever path chose it.
func (p *Provider) page(c echo.Context, status int, t pageText) error {
	if status == http.StatusServiceUnavailable {
		httpserver.SetRetryAfter(c)
	}
	return web.Render(c.Response(), status, "login_error.html", map[string]any{
		"Title": t.Title, "Message": t.Message, "Reference": httpserver.RequestID(c.Request().Context()),
	})
}

// internal logs err and shows the generic page.
func (p *Provider) internal(c echo.Context, err error) error {
	if httpserver.ClientGone(c.Request().Context(), err) {
		// The browser left while the sign-in waited (on a slow or hung
		// Redis, say): nobody reads the page, and it is not the broker's
		// failure, so it is no ERROR line, no 5xx and no failed sign-in
		// in the tenant's SLO.
		return c.NoContent(httpserver.StatusClientClosedRequest)
	}
	if errors.Is(err, store.ErrUnavailable) || httpserver.IsUnavailable(err) || errors.Is(err, context.DeadlineExceeded) {
		// A dependency outage: its cause once, not once per sign-in.
		p.outages.Error(c.Request().Context(), p.log, "broker: login: a dependency is unavailable", "err", err)
	} else {
		p.log.ErrorContext(c.Request().Context(), "broker: login", "err", err)
	}
	httpserver.SetRetryAfter(c)
	return p.page(c, http.StatusServiceUnavailable, pageUnavailable)
}

// RenderPageError answers, as the end-user error page, an error that
// reached the server's error handler on a browser-facing path (a body
// over the server's limit, a wrong method, an unknown connection's SSO
// URL, a recovered panic): for httpserver.Server.RenderErrors.
func (p *Provider) RenderPageError(c echo.Context, e *httpserver.Error) error {
	t := pageBadRequest
	switch {
	case e.Status == http.StatusNotFound:
		t = pageNotFound
	case e.Status == http.StatusTooManyRequests:
		t = pageTooMany
	case e.Status >= 500:
		t = pageUnavailable
	}
	return p.page(c, e.Status, t)
}

// RenderOAuthError answers, in OAuth error JSON (RFC 6749 §5.2), an error
// that reached the server's error handler under /oauth/ (a body over the
// server's limit, an unknown endpoint, a dependency outage): for
// httpserver.Server.RenderErrors.
func (p *Provider) RenderOAuthError(c echo.Context, e *httpserver.Error) error {
	// An answer made before the route's handler ran (a body over the
	// server's limit, a recovered panic) must be as readable to a browser
	// app as the handler's own: without the header it sees a CORS failure,
	// not the error.
	if path := c.Request().URL.Path; path == PathToken || path == PathRevoke || path == PathUserinfo {
		setPublicCORS(c.Response().Header())
	}
	code := errInvalidRequest
	switch {
	case e.Status == http.StatusUnauthorized:
		code = errInvalidClient
	case e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable:
		code = errTemporarilyUnavailable
	case e.Status >= 500:
		code = "server_error"
	}
	return writeOAuthError(c, e.Status, code, e.Message)
}

func (p *Provider) pendingError(c echo.Context, err error) error {
	if errors.Is(err, errExpired) {
		return p.page(c, http.StatusBadRequest, pageExpired)
	}
	return p.internal(c, err)
}

func (p *Provider) routeError(c echo.Context, a pending, err error) error {
	var (
		status int
		t      pageText
	)
	switch {
	case errors.Is(err, ErrNoConnection):
		status, t = http.StatusNotFound, pageNoConnection
	case errors.Is(err, ErrTenantInactive):
		status, t = http.StatusForbidden, pageTenantPaused
	case errors.Is(err, ErrConnectionInactive):
		status, t = http.StatusForbidden, pageConnInactive
	case errors.Is(err, ErrHintsDisagree):
		status, t = http.StatusBadRequest, pageHints
	default:
		return p.internal(c, err)
	}
	// The page shows a reference and no detail; the log line under that
	// reference says which hint led where (which domain belongs to
	// another tenant…), for whoever the user gives it to. Nothing is
	// written for a tenant: anyone may ask for any domain.
	ctx := c.Request().Context()
	p.log.InfoContext(ctx, "broker: sign-in not routed", "reason", err.Error(),
		"reference", httpserver.RequestID(ctx), "client_id", a.ClientID)
	return p.page(c, status, t)
}

func (p *Provider) emailPage(c echo.Context, a pending, email, msg string) error {
	status := http.StatusOK
	if msg != "" {
		status = http.StatusBadRequest
	}
	return web.Render(c.Response(), status, "login_email.html", map[string]any{
		"Action": PathLogin, "RequestID": a.ID, "Email": email, "Error": msg,
	})
}

func (p *Provider) loggedOut(c echo.Context) error {
	return web.Render(c.Response(), http.StatusOK, "login_error.html", map[string]any{
		"Title": pageSignedOut.Title, "Message": pageSignedOut.Message,
	})
}
