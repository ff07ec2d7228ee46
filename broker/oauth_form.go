package broker

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/tracing"
)

// maxOAuthBody bounds a token or revocation request. Codes, refresh
// tokens, verifiers and credentials are a few hundred bytes; anything near
// this is not a client of ours. (Bodies over the server's own cap are
// refused by the server, with its 413, before reaching the broker.)
const maxOAuthBody = 64 << 10

// singleValued are the parameters of the token and revocation endpoints;
// each may appear once (RFC 6749 §3.2), and only in the body.
var singleValued = []string{
	"grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope",
	"client_id", "client_secret", "client_assertion", "client_assertion_type",
	"token", "token_type_hint",
}

// checkOAuthRequest applies the request rules zitadel's op is lenient
// about, before it sees the request: POST only (publicCORS has answered
// OPTIONS), a form-encoded body of bounded size, no parameter twice or
// in the query, exactly one client authentication method, and, at the
// token endpoint, only the grants the broker offers. Each refusal is an
// RFC error (invalid_request, invalid_client, unsupported_grant_type),
// never a 500.
func (p *Provider) checkOAuthRequest(next echo.HandlerFunc, token bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch r.Method {
		case http.MethodPost:
		default:
			c.Response().Header().Set("Allow", "POST, OPTIONS")
			return writeOAuthError(c, http.StatusMethodNotAllowed, errInvalidRequest, "this endpoint takes POST")
		}
		if !isFormContentType(r.Header.Get("Content-Type")) {
			return writeOAuthError(c, http.StatusBadRequest, errInvalidRequest, "Content-Type must be application/x-www-form-urlencoded")
		}
		body, err := readBody(r, make([]byte, 0, 1024), maxOAuthBody)
		if err != nil {
			return bodyError(c, err)
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return writeOAuthError(c, http.StatusBadRequest, errInvalidRequest, "the body is not valid form encoding")
		}
		query := r.URL.Query()
		for _, k := range singleValued {
			if len(form[k]) > 1 {
				return writeOAuthError(c, http.StatusBadRequest, errInvalidRequest, "parameter "+k+" appears more than once")
			}
			if query.Has(k) {
				return writeOAuthError(c, http.StatusBadRequest, errInvalidRequest, "parameter "+k+" belongs in the request body, not the URL")
			}
		}
		if auth := r.Header.Get("Authorization"); auth != "" {
			// Both parts are form-encoded (RFC 6749 §2.3.1); op would answer
			// bad encoding 400, where a failed Basic authentication is 401.
			if id, secret, ok := r.BasicAuth(); !ok || id == "" || !formDecodable(id) || !formDecodable(secret) {
				return writeOAuthError(c, http.StatusUnauthorized, errInvalidClient, "the Authorization header must carry Basic client credentials")
			}
			if form.Has("client_secret") || form.Has("client_assertion") {
				return writeOAuthError(c, http.StatusBadRequest, errInvalidRequest, "the client authenticated with more than one method")
			}
			// A client_id beside Basic credentials (x/oauth2 and others send
			// both) must name the same client, as at introspection: op
			// acted for the Basic one and ignored the other.
			id, _, _ := r.BasicAuth()
			if post := form.Get("client_id"); post != "" {
				if basicID, _ := url.QueryUnescape(id); post != basicID {
					return writeOAuthError(c, http.StatusBadRequest, errInvalidRequest, "client_id differs from the client of the Authorization header")
				}
			}
		} else if form.Get("client_id") == "" {
			return writeOAuthError(c, http.StatusUnauthorized, errInvalidClient, "client authentication is required (client_secret_basic, client_secret_post, or client_id for public clients)")
		}
		if token {
			switch gt := form.Get("grant_type"); gt {
			case "", "authorization_code", "refresh_token":
				// A missing grant_type is op's invalid_request.
			default:
				return writeOAuthError(c, http.StatusBadRequest, "unsupported_grant_type",
					"grant_type must be authorization_code or refresh_token")
			}
		}
		id, _, ok := r.BasicAuth()
		if !ok {
			id = form.Get("client_id")
		}
		c.Set(clientIDKey, p.limitedClient(r.Context(), id))
		tracing.SetClient(r.Context(), id)
		// op writes its own errors without the headers RFC 6749 asks
		// for: no-store on every answer (§5.1, §5.2), and on a 401 the
		// scheme to authenticate with (§5.2), as writeOAuthError does.
		res := c.Response()
		res.Before(func() {
			h := res.Header()
			if h.Get("Cache-Control") == "" {
				h["Cache-Control"] = hdrNoStore
				h["Pragma"] = hdrNoCache
			}
			if res.Status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
				h.Set("WWW-Authenticate", `Basic realm="idbroker", charset="UTF-8"`)
			}
		})
		// op finds the form parsed (ParseForm keeps a Form already set)
		// and does not read the body again. The query carries none of the
		// parameters (refused above), so the body is the whole request.
		r.PostForm, r.Form = form, form
		return next(c)
	}
}

func formDecodable(s string) bool {
	_, err := url.QueryUnescape(s)
	return err == nil
}
