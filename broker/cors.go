package broker

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Cross-origin access (CORS) to the protocol endpoints.
//
// A browser app (a single-page app, a public client with PKCE) calls the
// token, userinfo and revocation endpoints with fetch, and reads discovery
// and the JWKS. None of them takes a cookie: a client authenticates with
// its id (and PKCE) or a bearer token in the request itself. So they are
// readable from any origin, as Okta's and Auth0's are for public clients,
// and never with credentials: Access-Control-Allow-Origin is "*", which
// browsers refuse to combine with cookies, and Access-Control-Allow-
// Credentials is never sent. (zitadel/oidc's default reflects any origin
// with credentials, on every endpoint it routes; newOPHandler turns it
// off.)
//
// Offered nothing: the authorization and end-session endpoints, which a
// browser navigates to (no fetch needs them, and a readable answer there
// would be a cookie-bearing page), and introspection, which resource
// servers call with a client secret that no browser app holds.

// corsMaxAge lets a browser cache a preflight for two hours (Chromium's
// cap), so that an app refreshing its tokens is not preflighted at every
// refresh.
const corsMaxAge = "7200"

// corsAllowHeaders are the request headers a browser app may send: the
// bearer token or Basic credentials, and a form or JSON body's type. The
// rest are what common HTTP libraries add.
const corsAllowHeaders = "Authorization, Content-Type, Accept, Accept-Language, X-Requested-With"

// corsExposeHeaders are the answer headers an app needs to read beyond
// the CORS-safelisted ones: userinfo's error (RFC 6750 §3), and when to
// retry a limited or unavailable request.
const corsExposeHeaders = "WWW-Authenticate, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining"

// publicCORS serves next to every origin without credentials. It answers
// OPTIONS itself (204, with the preflight's headers when it is one), so
// that a preflight is never rate limited, measured or handed to the OAuth
// handlers; methods are those next takes, for Allow and the preflight.
func publicCORS(methods string, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r, h := c.Request(), c.Response().Header()
		if r.Method != http.MethodOptions {
			setPublicCORS(h)
			return next(c)
		}
		h.Set(echo.HeaderAccessControlAllowOrigin, "*")
		h.Set(echo.HeaderAllow, methods+", OPTIONS")
		if r.Header.Get(echo.HeaderOrigin) != "" && r.Header.Get(echo.HeaderAccessControlRequestMethod) != "" {
			h.Set(echo.HeaderAccessControlAllowMethods, methods)
			h.Set(echo.HeaderAccessControlAllowHeaders, corsAllowHeaders)
			h.Set(echo.HeaderAccessControlMaxAge, corsMaxAge)
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// setPublicCORS makes an answer readable from any origin, without
// credentials, its error headers included.
func setPublicCORS(h http.Header) {
	h.Set(echo.HeaderAccessControlAllowOrigin, "*")
	h.Set(echo.HeaderAccessControlExposeHeaders, corsExposeHeaders)
}
