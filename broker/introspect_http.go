package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/tracing"
	"github.com/idbroker/idbroker/store"
)

// maxIntrospectBody bounds an introspection request: a token, a hint and
// client credentials fit many times over.
const maxIntrospectBody = 16 << 10

// Header values shared by every answer; net/http only reads them.
var (
	hdrJSON    = []string{"application/json"}
	hdrNoStore = []string{"no-store"}
	hdrNoCache = []string{"no-cache"}
)

// serveIntrospect is the RFC 7662 endpoint. It is served by the broker
// itself rather than by zitadel's router: it is the one endpoint resource
// servers call on every request, so it parses its form in place, checks
// the client against the application cache, answers from the verified-
// token and session caches, and writes a pre-encoded answer. Nothing on
// the path touches SQL, and a repeated introspection allocates little.
func (p *Provider) serveIntrospect(c echo.Context) error {
	r, w := c.Request(), c.Response()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return writeOAuthError(c, http.StatusMethodNotAllowed, errInvalidRequest, "introspection takes POST")
	}
	if !isFormContentType(r.Header.Get("Content-Type")) {
		return writeOAuthError(c, http.StatusBadRequest, errInvalidRequest, "Content-Type must be application/x-www-form-urlencoded")
	}
	bufp := p.bodies.Get().(*[]byte)
	defer p.bodies.Put(bufp)
	body, err := readBody(r, (*bufp)[:0], maxIntrospectBody)
	*bufp = body[:0]
	if err != nil {
		return bodyError(c, err)
	}
	var f introspectForm
	if err := f.parse(body); err != nil {
		return writeOAuthError(c, http.StatusBadRequest, errInvalidRequest, err.Error())
	}
	clientID, secret, oerr := clientCredentials(r, f.clientID, f.clientSecret, body[len(body):cap(body)])
	if oerr != nil {
		return oerr.write(c)
	}
	a, err := p.apps.authenticateBytes(r.Context(), clientID, secret)
	if err != nil {
		return p.clientOAuthError(c, err)
	}
	tracing.SetClient(r.Context(), a.ID)
	if len(f.token) == 0 {
		return writeOAuthError(c, http.StatusBadRequest, errInvalidRequest, "the token parameter is required")
	}
	var answer []byte
	if bytes.HasPrefix(f.token, []byte(refreshPrefix+"_")) {
		answer, err = p.introspectRefresh(r.Context(), string(f.token), a.ID)
	} else {
		answer, err = p.introspectAccess(r.Context(), f.token)
	}
	if err != nil {
		p.outages.Error(r.Context(), p.log, "broker: introspect", "err", err)
		return writeOAuthError(c, http.StatusServiceUnavailable, errTemporarilyUnavailable, "try again shortly")
	}
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoStore
	h["Pragma"] = hdrNoCache
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(answer)
	return err
}

// readBody reads r's body into buf, refusing more than limit bytes.
func readBody(r *http.Request, buf []byte, limit int) ([]byte, error) {
	if r.ContentLength > int64(limit) {
		return buf, errBodyTooLarge
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

var errBodyTooLarge = errors.New("broker: request body too large")

func bodyError(c echo.Context, err error) error {
	var mbe *http.MaxBytesError
	if errors.Is(err, errBodyTooLarge) || errors.As(err, &mbe) {
		return writeOAuthError(c, http.StatusRequestEntityTooLarge, errInvalidRequest, "the request body is too large")
	}
	return writeOAuthError(c, http.StatusBadRequest, errInvalidRequest, "the request body could not be read")
}

// isFormContentType accepts application/x-www-form-urlencoded with any
// parameters (charset=UTF-8), in any case, without allocating.
func isFormContentType(ct string) bool {
	const form = "application/x-www-form-urlencoded"
	if len(ct) < len(form) || !equalFoldASCII(ct[:len(form)], form) {
		return false
	}
	rest := ct[len(form):]
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case ' ', '\t':
		case ';':
			return true
		default:
			return false
		}
	}
	return true
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// introspectForm holds the parameters of an introspection request, as
// slices of the body (decoded in place when they were escaped).
type introspectForm struct {
	token, tokenTypeHint, clientID, clientSecret []byte
}

// parse reads an application/x-www-form-urlencoded body. Parameters
// given twice are refused (RFC 6749 §3.2); unknown ones are ignored.
func (f *introspectForm) parse(body []byte) error {
	for len(body) > 0 {
		var pair []byte
		if i := bytes.IndexByte(body, '&'); i >= 0 {
			pair, body = body[:i], body[i+1:]
		} else {
			pair, body = body, nil
		}
		if len(pair) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(pair, []byte{'='})
		if !ok {
			v = pair[len(pair):] // "token" alone is present and empty, as in net/url
		}
		var dst *[]byte
		switch string(k) {
		case "token":
			dst = &f.token
		case "token_type_hint":
			dst = &f.tokenTypeHint
		case "client_id":
			dst = &f.clientID
		case "client_secret":
			dst = &f.clientSecret
		default:
			continue
		}
		if *dst != nil {
			return errors.New("parameter " + string(k) + " appears more than once")
		}
		dv, err := unescapeInPlace(v)
		if err != nil {
			return errors.New("parameter " + string(k) + " is not properly form-encoded")
		}
		*dst = dv
	}
	return nil
}

// unescapeInPlace decodes form encoding (%XX, '+') over v itself: the
// decoded form is never longer. A value with nothing to decode is v.
func unescapeInPlace(v []byte) ([]byte, error) {
	if bytes.IndexByte(v, '%') < 0 && bytes.IndexByte(v, '+') < 0 {
		if v == nil {
			return []byte{}, nil
		}
		return v[:len(v):len(v)], nil
	}
	out := v[:0]
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '+':
			out = append(out, ' ')
		case '%':
			if i+2 >= len(v) || unhex(v[i+1]) < 0 || unhex(v[i+2]) < 0 {
				return nil, url.EscapeError(string(v))
			}
			out = append(out, byte(unhex(v[i+1])<<4|unhex(v[i+2])))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out[:len(out):len(out)], nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// clientCredentials returns the client's id and secret from exactly one
// of client_secret_basic (the Authorization header, whose parts are form-
// encoded per RFC 6749 §2.3.1) and client_secret_post. scratch, when large
// enough, holds the decoded header.
func clientCredentials(r *http.Request, postID, postSecret, scratch []byte) (id, secret []byte, _ *oauthError) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		if postID == nil {
			return nil, nil, &oauthError{http.StatusUnauthorized, errInvalidClient, "client authentication is required (client_secret_basic or client_secret_post)"}
		}
		return postID, postSecret, nil
	}
	const basic = "Basic "
	if len(auth) < len(basic) || !equalFoldASCII(auth[:len(basic)], basic) {
		return nil, nil, &oauthError{http.StatusUnauthorized, errInvalidClient, "the Authorization header must use the Basic scheme"}
	}
	if postSecret != nil {
		// RFC 6749 §2.3: one authentication method per request.
		return nil, nil, &oauthError{http.StatusBadRequest, errInvalidRequest, "the client authenticated with both client_secret_basic and client_secret_post"}
	}
	enc := auth[len(basic):]
	n := base64.StdEncoding.DecodedLen(len(enc))
	if n > cap(scratch) {
		scratch = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(scratch[:n], []byte(enc))
	if err != nil {
		return nil, nil, &oauthError{http.StatusUnauthorized, errInvalidClient, "malformed Basic credentials"}
	}
	user, pass, ok := bytes.Cut(scratch[:n], []byte{':'})
	if !ok {
		return nil, nil, &oauthError{http.StatusUnauthorized, errInvalidClient, "malformed Basic credentials"}
	}
	if id, err = unescapeInPlace(user); err == nil {
		secret, err = unescapeInPlace(pass)
	}
	if err != nil {
		return nil, nil, &oauthError{http.StatusUnauthorized, errInvalidClient, "malformed Basic credentials"}
	}
	if postID != nil && !bytes.Equal(postID, id) {
		return nil, nil, &oauthError{http.StatusBadRequest, errInvalidRequest, "client_id differs from the client of the Authorization header"}
	}
	return id, secret, nil
}

// authenticateBytes is authenticate for credentials still in the request's
// bytes: a confidential client presenting its secret. Public clients have
// nothing to authenticate with, and so cannot introspect.
func (c *appCache) authenticateBytes(ctx context.Context, clientID, secret []byte) (store.Application, error) {
	a, err := c.getBytes(ctx, clientID)
	if err != nil {
		return store.Application{}, err
	}
	if a.Public {
		return store.Application{}, errPublicClient
	}
	if len(secret) == 0 {
		return store.Application{}, errBadSecret
	}
	sum := sha256.Sum256(secret)
	return c.checkSecret(ctx, a, sum[:])
}
