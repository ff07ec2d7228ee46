package oidc

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/idbroker/idbroker/internal/safehttp"
)

// jsonAsTextTransport relabels a token endpoint's JSON answer sent as
// text/plain. golang.org/x/oauth2 reads a text/plain body as a form
// (the GitHub and Facebook tokens of old were form-encoded under that
// type), so an IdP that writes JSON under it — some small and home-made
// OpenID Providers do — had its answer read as having no access_token.
// Only POST answers (the token endpoint: discovery, keys and userinfo
// are GETs) whose body is a JSON object are relabelled; a form-encoded
// body under text/plain is left for oauth2 to read as before.
type jsonAsTextTransport struct{ next http.RoundTripper }

func (t jsonAsTextTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost {
		return resp, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/plain" {
		return resp, nil
	}
	// The client's own cap (internal/safehttp) bounds this read.
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		resp.Header = resp.Header.Clone()
		resp.Header.Set("Content-Type", "application/json")
	}
	return resp, nil
}

// anyKidKeySet verifies an id_token that names no key (no kid) against
// an IdP's JWKS that holds several keys without kids, as some IdPs
// publish during a rotation: the library gives up on such a token
// ("multiple possible keys match"), and the token is the IdP's if one of
// its published signing keys verifies it. Tokens the library can place
// (a kid, or a single candidate key) are left to it: this set only
// answers the library's ErrKeyMultiple, and only for a token without a
// kid.
type anyKidKeySet struct {
	next    oidc.KeySet
	jwksURI string
	client  *http.Client

	mu   sync.Mutex
	keys []jose.JSONWebKey // the JWKS as last read here
}

func (s *anyKidKeySet) VerifySignature(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	payload, err := s.next.VerifySignature(ctx, jws)
	if err == nil || !errors.Is(err, oidc.ErrKeyMultiple) || len(jws.Signatures) != 1 || jws.Signatures[0].Header.KeyID != "" {
		return payload, err
	}
	alg := jws.Signatures[0].Header.Algorithm
	s.mu.Lock()
	keys := s.keys
	s.mu.Unlock()
	if payload, ok := verifyWithAny(jws, alg, keys); ok {
		return payload, nil
	}
	// The keys read here before may be older than the library's: read
	// them again, once for this token.
	keys, ferr := s.fetch(ctx)
	if ferr != nil {
		return nil, fmt.Errorf("unable to fetch key for signature validation: %w", ferr)
	}
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
	if payload, ok := verifyWithAny(jws, alg, keys); ok {
		return payload, nil
	}
	return nil, fmt.Errorf("the id_token names no key (kid), and none of the keys without a kid in the JWKS at %s verifies it", s.jwksURI)
}

// fetch reads the JWKS. A key of a type go-jose does not know is
// skipped, as the library skips it, rather than spoiling the set.
func (s *anyKidKeySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	b, err := safehttp.Get(ctx, s.client, s.jwksURI, 1<<20)
	if err != nil {
		return nil, err
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, errors.New("the answer is not a JSON Web Key Set")
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if k.UnmarshalJSON(raw) == nil {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// verifyWithAny tries the signing keys of keys whose type fits alg and
// that have no kid (a key with a kid would have been named by a token
// signed with it).
func verifyWithAny(jws *jose.JSONWebSignature, alg string, keys []jose.JSONWebKey) ([]byte, bool) {
	for _, k := range keys {
		if k.KeyID != "" || (k.Use != "" && k.Use != oidc.KeyUseSignature) || !keyFits(k.Key, alg) {
			continue
		}
		if payload, err := jws.Verify(&k); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// keyFits reports whether key is of the type alg signs with.
func keyFits(key any, alg string) bool {
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		_, ok := key.(*rsa.PublicKey)
		return ok
	case strings.HasPrefix(alg, "ES"):
		_, ok := key.(*ecdsa.PublicKey)
		return ok
	case alg == string(jose.EdDSA):
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}

// clientAuthTransport authenticates the broker at the IdP's token
// endpoint with client_secret_basic, or client_secret_post when the IdP
// takes only that. golang.org/x/oauth2 can detect which, but it sends
// the code a second time, with the other method, after any failure of
// the first: the IdP has by then spent the code on the first attempt,
// and the answer the admin read was the second one (invalid_grant, "the
// code was already redeemed") instead of the one that said what was
// wrong. So the library is told to use the header, and this transport
// moves the credentials into the form, and sends the request again, only
// when the IdP refused the client's authentication (401, or
// invalid_client) — a refusal that comes before the code is looked at —
// or from the start when the IdP's discovery offers only
// client_secret_post. The method that worked is kept for the connection.
type clientAuthTransport struct {
	next     http.RoundTripper
	tokenURL atomic.Value // string, the discovery document's token_endpoint
	post     atomic.Bool  // client_secret_post is the method to use
}

func (t *clientAuthTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	if tu, _ := t.tokenURL.Load().(string); r.Method != http.MethodPost || tu == "" || r.URL.String() != tu || r.Header.Get("Authorization") == "" {
		return next.RoundTrip(r)
	}
	if t.post.Load() {
		pr, err := inForm(r)
		if err != nil {
			return nil, err
		}
		return next.RoundTrip(pr)
	}
	resp, err := next.RoundTrip(r)
	if err != nil || !clientAuthRefused(resp) {
		return resp, err
	}
	// r's body is spent; GetBody reads it again.
	pr, err := inForm(r)
	if err != nil {
		return resp, nil
	}
	retry, rerr := next.RoundTrip(pr)
	if rerr != nil {
		// The first answer is the IdP's word; the retry's failure is ours.
		return resp, nil
	}
	resp.Body.Close()
	if retry.StatusCode >= 200 && retry.StatusCode < 300 {
		t.post.Store(true)
	}
	return retry, nil
}

// clientAuthRefused reports a token endpoint answer that refuses the
// client's authentication: 401, or 400 with invalid_client. resp's body
// is left readable.
func clientAuthRefused(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return true
	case http.StatusBadRequest:
	default:
		return false
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return false
	}
	var e struct {
		Error string `json:"error"`
	}
	return json.Unmarshal(b, &e) == nil && e.Error == "invalid_client"
}

// inForm is r with the client credentials of its Basic authorization
// (form-encoded, as RFC 6749 §2.3.1 has them) moved into its form body.
func inForm(r *http.Request) (*http.Request, error) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		return r, nil
	}
	var err error
	if id, err = url.QueryUnescape(id); err != nil {
		return nil, err
	}
	if secret, err = url.QueryUnescape(secret); err != nil {
		return nil, err
	}
	if r.GetBody == nil {
		return nil, errors.New("oidc: token request body cannot be read twice")
	}
	body, err := r.GetBody()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(body)
	body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, err
	}
	form.Set("client_id", id)
	form.Set("client_secret", secret)
	enc := form.Encode()
	pr := r.Clone(r.Context())
	pr.Header.Del("Authorization")
	pr.Body = io.NopCloser(strings.NewReader(enc))
	pr.ContentLength = int64(len(enc))
	pr.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
	return pr, nil
}
