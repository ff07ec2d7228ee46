package broker

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
)

// OAuth error codes (RFC 6749 §5.2, RFC 7009 §2.2.1) written by the
// endpoints the broker serves itself; zitadel's op writes the same shape
// for the others.
const (
	errInvalidRequest         = "invalid_request"
	errInvalidClient          = "invalid_client"
	errTemporarilyUnavailable = "temporarily_unavailable"
)

// oauthError is an error answer: {"error", "error_description"}.
type oauthError struct {
	status      int
	code        string
	description string
}

func (e *oauthError) write(c echo.Context) error {
	return writeOAuthError(c, e.status, e.code, e.description)
}

// writeOAuthError writes the answer itself (nil error), so that the
// server's JSON error shape, made for the operator API, never reaches an
// OAuth client. A 401 names the scheme to use (RFC 6749 §5.2).
func writeOAuthError(c echo.Context, status int, code, description string) error {
	h := c.Response().Header()
	h["Cache-Control"] = hdrNoStore
	h["Pragma"] = hdrNoCache
	if status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", retryAfterSeconds)
	}
	if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", `Basic realm="idbroker", charset="UTF-8"`)
	}
	b := make([]byte, 0, 64+len(description))
	b = append(b, `{"error":`...)
	b = appendJSONString(b, code)
	if description != "" {
		b = append(b, `,"error_description":`...)
		b = appendJSONString(b, description)
	}
	b = append(b, '}')
	h["Content-Type"] = hdrJSON
	c.Response().WriteHeader(status)
	_, err := c.Response().Write(b)
	return err
}

// clientOAuthError answers a failed client authentication: 401
// invalid_client whatever the cause, or 503 when the application could not
// be loaded.
func (p *Provider) clientOAuthError(c echo.Context, err error) error {
	switch {
	case errors.Is(err, errUnknownClient):
		return writeOAuthError(c, http.StatusUnauthorized, errInvalidClient, "unknown client")
	case errors.Is(err, errBadSecret):
		return writeOAuthError(c, http.StatusUnauthorized, errInvalidClient, "client authentication failed")
	case errors.Is(err, errPublicClient):
		return writeOAuthError(c, http.StatusUnauthorized, errInvalidClient, "public clients cannot use this endpoint; authenticate with a client secret")
	}
	p.log.ErrorContext(c.Request().Context(), "broker: client authentication", "err", err)
	return writeOAuthError(c, http.StatusServiceUnavailable, errTemporarilyUnavailable, "try again shortly")
}

// retryAfterSeconds is the Retry-After of a 503: a dependency (the
// database, Redis) did not answer, and a client retrying a second later
// usually finds it back.
const retryAfterSeconds = "1"

// retryAfter503 adds Retry-After to every 503 the wrapped handler writes,
// including those zitadel's op writes for errors the broker returned
// (see unavailable), which cannot set headers themselves.
func retryAfter503(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		res := c.Response()
		res.Before(func() {
			if res.Status == http.StatusServiceUnavailable && res.Header().Get("Retry-After") == "" {
				res.Header().Set("Retry-After", retryAfterSeconds)
			}
		})
		return next(c)
	}
}
