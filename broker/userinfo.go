package broker

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// checkUserinfo answers a UserInfo request whose access token is missing
// or no longer valid as RFC 6750 §3 asks (401 with a Bearer challenge,
// error invalid_token), which the library does not; a request with a live
// token goes on to it.
func (p *Provider) checkUserinfo(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r, res := c.Request(), c.Response()
		switch r.Method {
		// HEAD is GET without the body (RFC 9110 §9.3.2): the same
		// status and headers, the challenge included. Go's server drops
		// the body; op routes every method to its handler.
		case http.MethodGet, http.MethodHead, http.MethodPost:
		default:
			res.Header().Set("Allow", "GET, HEAD, POST, OPTIONS")
			return writeOAuthError(c, http.StatusMethodNotAllowed, errInvalidRequest, "userinfo takes GET or POST")
		}
		// Every 401 carries the Bearer challenge (RFC 6750 §3), those op
		// writes included: the session can end between the checks below
		// and op's call to UserInfo, whose errors cannot set headers.
		res.Before(func() {
			if res.Status == http.StatusUnauthorized && !strings.HasPrefix(res.Header().Get("WWW-Authenticate"), "Bearer") {
				res.Header().Set("WWW-Authenticate", `Bearer realm="idbroker", error="`+errInvalidToken+`"`)
			}
		})
		if r.URL.Query().Has("access_token") {
			// RFC 6750 §2.3 allows it, and it puts the token in every log.
			return bearerError(c, http.StatusBadRequest, errInvalidRequest, "send the access token in the Authorization header")
		}
		var token string
		if auth := r.Header.Get("Authorization"); auth != "" {
			const bearer = "Bearer "
			if len(auth) <= len(bearer) || !equalFoldASCII(auth[:len(bearer)], bearer) {
				return bearerError(c, http.StatusUnauthorized, errInvalidRequest, "the Authorization header must carry a Bearer token")
			}
			token = strings.TrimSpace(auth[len(bearer):])
			// RFC 6750 §2.1 allows more than one space after the scheme,
			// which may be in any case; op takes the token to be what
			// follows exactly "Bearer " and, with two spaces, answered a
			// valid token 401 without a challenge. It reads the token
			// checked here, written as it expects it.
			r.Header.Set("Authorization", "Bearer "+token)
		}
		if r.Method == http.MethodPost && isFormContentType(r.Header.Get("Content-Type")) {
			body, err := readBody(r, make([]byte, 0, 2048), maxOAuthBody)
			if err != nil {
				return bodyError(c, err)
			}
			form, err := url.ParseQuery(string(body))
			if err != nil || len(form["access_token"]) > 1 {
				return bearerError(c, http.StatusBadRequest, errInvalidRequest, "the body is not valid form encoding")
			}
			if form.Has("access_token") {
				if token != "" {
					return bearerError(c, http.StatusBadRequest, errInvalidRequest, "the access token was sent in more than one way")
				}
				token = form.Get("access_token")
			}
			// Parsed once: op finds the form set (see checkOAuthRequest);
			// access_token, all it reads, is never in the query.
			r.PostForm, r.Form = form, form
		}
		if token == "" {
			// No credentials at all: a challenge, no error code (RFC 6750 §3.1).
			res.Header().Set("WWW-Authenticate", `Bearer realm="idbroker"`)
			return writeOAuthError(c, http.StatusUnauthorized, errInvalidRequest, "an access token is required")
		}
		ac, err := p.verifier.accessToken(token)
		if err != nil {
			return bearerError(c, http.StatusUnauthorized, errInvalidToken, "the access token is invalid or has expired")
		}
		tenantKnown(r.Context(), ac.TenantID)
		ok, err := p.grantLive(r.Context(), ac.SID, ac.TenantID, ac.Sub, ac.ClientID, ac.Iat)
		if err != nil {
			p.log.ErrorContext(r.Context(), "broker: userinfo", "err", err)
			return writeOAuthError(c, http.StatusServiceUnavailable, errTemporarilyUnavailable, "try again shortly")
		}
		if !ok {
			return bearerError(c, http.StatusUnauthorized, errInvalidToken, "the session or grant of the access token has ended")
		}
		// Independent of the revocation having reached the session store:
		// a deprovisioned user or a paused tenant gets nothing.
		if err := p.active.check(r.Context(), ac.TenantID, ac.Sub); errors.Is(err, errInactive) {
			return bearerError(c, http.StatusUnauthorized, errInvalidToken, "the user or their organisation is no longer active")
		} else if err != nil {
			p.log.ErrorContext(r.Context(), "broker: userinfo", "err", err)
			return writeOAuthError(c, http.StatusServiceUnavailable, errTemporarilyUnavailable, "try again shortly")
		}
		if _, err := p.apps.get(r.Context(), ac.ClientID); err != nil {
			return bearerError(c, http.StatusUnauthorized, errInvalidToken, "the access token's application no longer exists")
		}
		// The answer is a person's profile: no cache on the way keeps it
		// (as the token endpoint's answers, RFC 6749 §5.1).
		res.Header().Set("Cache-Control", "no-store")
		return next(c)
	}
}

// errInvalidToken is RFC 6750's code for a token that is not (or no
// longer) valid.
const errInvalidToken = "invalid_token"

// bearerError is writeOAuthError with the Bearer challenge of RFC 6750 §3.
func bearerError(c echo.Context, status int, code, description string) error {
	c.Response().Header().Set("WWW-Authenticate", `Bearer realm="idbroker", error="`+code+`", error_description="`+description+`"`)
	return writeOAuthError(c, status, code, description)
}
