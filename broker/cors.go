package broker

import (
	"net/http"
	"strings"

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

// A preflight is allowed the request headers it asks for
// (Access-Control-Request-Headers), whatever they are: Authorization for
// a bearer token or Basic credentials, Content-Type, and what apps and
// their libraries add (oidc-client-ts's DPoP and extraHeaders, tracing
// headers, X-Requested-With). A fixed list refused any app that sent one
// more, and allowing a header gives nothing away here: no answer depends
// on a cookie, so a header only reaches what the same request could send
// from outside a browser. The list is echoed only when it is one (field
// names, RFC 9110 §5.1), at most corsMaxRequestHeaders of them.
const corsMaxRequestHeaders = 32

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
			if allow, ok := requestedHeaders(r.Header.Values(echo.HeaderAccessControlRequestHeaders)); ok && allow != "" {
				h.Set(echo.HeaderAccessControlAllowHeaders, allow)
			}
			h.Add(echo.HeaderVary, echo.HeaderAccessControlRequestHeaders)
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

// requestedHeaders checks a preflight's Access-Control-Request-Headers and
// returns the names to allow, lower case, comma separated; ok is false
// when the list is not a list of field names or is too long.
func requestedHeaders(values []string) (allow string, ok bool) {
	var b strings.Builder
	n := 0
	for _, v := range values {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if n++; n > corsMaxRequestHeaders || !isToken(name) {
				return "", false
			}
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strings.ToLower(name))
		}
	}
	return b.String(), true
}

// isToken reports whether s is an RFC 9110 token (a field name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
