package broker

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/ratelimit"
)

// clientIDKey holds, in the echo context, the client_id a token or
// revocation request names (Basic user or form field), before op has
// authenticated it, or unknownClient.
const clientIDKey = "broker.client_id"

// unknownClient stands, in the token rate limit's keys, for every
// client_id that names no application: made-up ids share one budget per
// address instead of minting a fresh one (and a fresh Redis key) each.
const unknownClient = "(unknown client)"

// ClientID returns the client_id a request to /oauth/token or /oauth/revoke
// names, once the broker has read it, or "": the key of the token rate
// limit (Config.TokenLimit). A client_id of no application is returned as
// one value for all, "(unknown client)".
func ClientID(c echo.Context) string {
	id, _ := c.Get(clientIDKey).(string)
	return id
}

// limitedClient is the client the token limit counts a request naming id
// against: id when it is an application (or cannot be checked now),
// unknownClient otherwise. The lookup is the one op's authentication makes
// next, from the same cache.
func (p *Provider) limitedClient(ctx context.Context, id string) string {
	if p.tokenLimit == nil || id == "" {
		return id
	}
	if _, err := p.apps.get(ctx, id); errors.Is(err, errUnknownClient) {
		return unknownClient
	}
	return id
}

// TokenLimitKey is the bucket of the token rate limit (Config.TokenLimit):
// the client_id a request names, from the client's address (an IPv6 one by
// its /64, ratelimit.AddressKey). The client_id is counted before it is
// authenticated, and client_ids are public (every authorization URL shows
// one): keyed by the client_id alone, anyone could spend an application's
// budget with requests that fail, and its real token requests would get the
// 429. From one address a caller spends only its own share of a client's
// budget; the application's servers keep theirs.
func TokenLimitKey(c echo.Context) (string, bool) {
	id := ClientID(c)
	if id == "" {
		return "", false
	}
	return id + " " + ratelimit.AddressKey(c.RealIP()), true
}

// busyRetryAfter is the Retry-After of a sign-in refused by its tenant's
// cap on sign-ins finishing at once: places come free within
// milliseconds.
var busyRetryAfter = strconv.Itoa(int(ratelimit.ConcurrencyRetryAfter / time.Second))

var (
	pageTooMany       = pageText{"Too many sign-in attempts", "Too many sign-ins were started from your network. Wait a moment, then try again."}
	pageTooManyTenant = pageText{"Too many sign-in attempts", "Too many sign-ins were started for your organisation. Wait a moment, then try again."}
	pageBusyTenant    = pageText{"Sign-in busy", "Many people of your organisation are signing in right now. Wait a moment, then reload this page, or go back to the application and sign in again."}
)

// loginLimited returns the login limit, if any, as route middleware whose
// refusals are the end-user error page rather than JSON.
func (p *Provider) loginLimited() []echo.MiddlewareFunc {
	if p.loginLimit == nil {
		return nil
	}
	return []echo.MiddlewareFunc{limitedBy(p.loginLimit, func(c echo.Context, _ *echo.HTTPError) error {
		return p.page(c, http.StatusTooManyRequests, pageTooMany)
	})}
}

// PageLimit returns limit (per-address middleware, say) with its 429
// refusals shown as the end-user error page: for browser-facing routes
// mounted by other packages, such as the SAML ACS and OIDC callback. A nil
// limit returns nil.
func (p *Provider) PageLimit(limit echo.MiddlewareFunc) echo.MiddlewareFunc {
	if limit == nil {
		return nil
	}
	return limitedBy(limit, func(c echo.Context, _ *echo.HTTPError) error {
		return p.page(c, http.StatusTooManyRequests, pageTooMany)
	})
}

// tokenLimited puts the token limit, if any, in front of next, its
// refusals answered as OAuth errors.
func (p *Provider) tokenLimited(next echo.HandlerFunc) echo.HandlerFunc {
	if p.tokenLimit == nil {
		return next
	}
	return limitedBy(p.tokenLimit, func(c echo.Context, he *echo.HTTPError) error {
		msg, _ := he.Message.(string)
		// temporarily_unavailable is the registered code clients already
		// treat as "retry later"; the 429 and Retry-After say how.
		return writeOAuthError(c, http.StatusTooManyRequests, errTemporarilyUnavailable, msg)
	})(next)
}

// limitedBy wraps limit so that a 429 it returns itself (not one from the
// handler behind it) is rendered by refuse.
func limitedBy(limit echo.MiddlewareFunc, refuse func(echo.Context, *echo.HTTPError) error) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		const passed = "broker.limit_passed"
		h := limit(func(c echo.Context) error {
			c.Set(passed, true)
			return next(c)
		})
		return func(c echo.Context) error {
			err := h(c)
			var he *echo.HTTPError
			if err != nil && c.Get(passed) == nil && errors.As(err, &he) && he.Code == http.StatusTooManyRequests {
				return refuse(c, he)
			}
			return err
		}
	}
}
