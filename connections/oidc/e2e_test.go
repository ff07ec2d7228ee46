package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/connectionstest"
	"github.com/idbroker/idbroker/store"
)

// testOP is a minimal OpenID Provider: discovery, JWKS, authorize (which
// signs in at once), token with PKCE check, userinfo. Claims lets a test
// shape the id_token (Entra tid/oid, Google hd).
type testOP struct {
	t      *testing.T
	srv    *httptest.Server
	signer jose.Signer
	jwks   jose.JSONWebKeySet

	mu     sync.Mutex
	codes  map[string]opCode
	claims map[string]any
	// tamper, when set, edits the id_token claims at the token endpoint.
	tamper func(map[string]any)
	// sign, when set, serialises the id_token instead of the OP's key:
	// a forgery.
	sign func(claims map[string]any) string
	// algs, when set, is the discovery document's
	// id_token_signing_alg_values_supported.
	algs []string
	// discoveries counts reads of the discovery document.
	discoveries atomic.Int32
	// discoveryGate, when set, holds every read of the discovery
	// document until it is closed: an IdP that answers slowly.
	discoveryGate atomic.Pointer[chan struct{}]
	// userinfoStatus, when set, is the userinfo endpoint's answer: an
	// error status instead of the user's claims.
	userinfoStatus atomic.Int32
	// userinfoExtra, when set, is added to the userinfo answer.
	userinfoExtra map[string]any
	// jwksStatus, when set, is the JWKS endpoint's answer instead of the
	// keys; jwksReads counts reads of the JWKS.
	jwksStatus atomic.Int32
	jwksReads  atomic.Int32
	// omitIDToken makes the token endpoint answer without an id_token, as
	// a plain OAuth server does.
	omitIDToken atomic.Bool
	// authMethod, when set, is the one client authentication the token
	// endpoint accepts (client_secret_basic or client_secret_post);
	// authTries counts the token requests.
	authMethod atomic.Value
	authTries  atomic.Int32
	// authorizeError, when set, is the query of the error the authorize
	// endpoint redirects back with instead of a code.
	authorizeError atomic.Value
	// writeToken, when set, writes the token endpoint's successful
	// answer instead of JSON: another media type, another encoding.
	writeToken func(w http.ResponseWriter, answer map[string]any)
}

type opCode struct {
	clientID, redirect, nonce, challenge string
}

func newTestOP(t *testing.T, issuerPath string) *testOP { return newTestOPAt(t, issuerPath, "") }

// newTestOPAt is newTestOP serving TLS under issuer (its discovery
// document, its id_tokens' iss), when issuer is not "": an IdP with a
// public issuer the client reaches through a transport that dials op.srv.
func newTestOPAt(t *testing.T, issuerPath, issuer string) *testOP {
	op := &testOP{t: t, codes: map[string]opCode{}, claims: map[string]any{}}
	key := testKey()
	var err error
	op.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	op.jwks = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	mux := http.NewServeMux()
	iss := issuer
	if issuer == "" {
		op.srv = httptest.NewServer(mux)
		iss = op.srv.URL + issuerPath
	} else {
		op.srv = httptest.NewTLSServer(mux)
	}
	t.Cleanup(op.srv.Close)
	mux.HandleFunc(issuerPath+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		op.discoveries.Add(1)
		if g := op.discoveryGate.Load(); g != nil {
			<-*g
		}
		algs := []string{"RS256"}
		if op.algs != nil {
			algs = op.algs
		}
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
			"userinfo_endpoint": iss + "/userinfo", "jwks_uri": iss + "/jwks",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": algs, "code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc(issuerPath+"/jwks", func(w http.ResponseWriter, r *http.Request) {
		op.jwksReads.Add(1)
		if st := op.jwksStatus.Load(); st != 0 {
			http.Error(w, "<html>maintenance</html>", int(st))
			return
		}
		json.NewEncoder(w).Encode(op.jwks)
	})
	mux.HandleFunc(issuerPath+"/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
			http.Error(w, "PKCE, nonce and state required", 400)
			return
		}
		if e, ok := op.authorizeError.Load().(url.Values); ok && len(e) > 0 {
			http.Redirect(w, r, q.Get("redirect_uri")+"?"+e.Encode()+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
			return
		}
		code := randomToken()
		op.mu.Lock()
		op.codes[code] = opCode{q.Get("client_id"), q.Get("redirect_uri"), q.Get("nonce"), q.Get("code_challenge")}
		op.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc(issuerPath+"/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		op.authTries.Add(1)
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if m, _ := op.authMethod.Load().(string); m == "client_secret_basic" && !ok || m == "client_secret_post" && ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_client","error_description":"client authentication method not allowed"}`))
			return
		}
		op.mu.Lock()
		c, found := op.codes[r.PostForm.Get("code")]
		delete(op.codes, r.PostForm.Get("code"))
		claims := map[string]any{}
		for k, v := range op.claims {
			claims[k] = v
		}
		op.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !found || id != "client-1" || secret != "s3cret" || c.redirect != r.PostForm.Get("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		now := time.Now()
		base := map[string]any{"iss": iss, "sub": "user-1", "aud": "client-1", "exp": now.Add(5 * time.Minute).Unix(),
			"iat": now.Unix(), "nonce": c.nonce, "email": "bob@example.com", "email_verified": true, "given_name": "Bob"}
		for k, v := range claims {
			base[k] = v
		}
		if op.tamper != nil {
			op.tamper(base)
		}
		idt, err := jwt.Signed(op.signer).Claims(base).Serialize()
		if err != nil {
			t.Error(err)
		}
		if op.sign != nil {
			idt = op.sign(base)
		}
		w.Header().Set("Content-Type", "application/json")
		answer := map[string]any{"access_token": "at-" + randomToken(), "token_type": "Bearer", "expires_in": 300, "id_token": idt}
		if op.omitIDToken.Load() {
			delete(answer, "id_token")
		}
		if op.writeToken != nil {
			w.Header().Del("Content-Type")
			op.writeToken(w, answer)
			return
		}
		json.NewEncoder(w).Encode(answer)
	})
	mux.HandleFunc(issuerPath+"/userinfo", func(w http.ResponseWriter, r *http.Request) {
		if st := op.userinfoStatus.Load(); st != 0 {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(int(st))
			return
		}
		sub := "user-1"
		op.mu.Lock()
		if s, ok := op.claims["sub"].(string); ok {
			sub = s
		}
		answer := map[string]any{"sub": sub, "family_name": "Builder", "groups": []string{"Staff", "Ops"}}
		maps.Copy(answer, op.userinfoExtra)
		op.mu.Unlock()
		json.NewEncoder(w).Encode(answer)
	})
	return op
}

func (op *testOP) issuer(path string) string { return op.srv.URL + path }

// oidcLogin runs Begin, the OP's authorize redirect, and the callback.
func oidcLogin(t *testing.T, e *connectionstest.Env, conn store.Connection, brokerReq string) connectionstest.Completion {
	t.Helper()
	return e.Get(oidcCallback(t, e, conn, brokerReq))
}

// oidcCallback runs Begin and the OP's authorize redirect, and returns the
// callback URL the OP sends the browser to.
func oidcCallback(t *testing.T, e *connectionstest.Env, conn store.Connection, brokerReq string) string {
	t.Helper()
	ctx := store.WithTenant(context.Background(), conn.TenantID)
	cn, err := e.Reg.Connector(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := cn.Begin(ctx, rec, httptest.NewRequest("GET", "/authorize", nil), connections.LoginRequest{RequestID: brokerReq, LoginHint: "bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(rec.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("OP answered %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

func TestOIDCEndToEnd(t *testing.T) {
	for _, b := range connectionstest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			op := newTestOP(t, "")
			conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Generic OIDC", Settings{
				Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if conn.Status != store.ConnectionActive || conn.Secrets[SecretClientSecret] != "s3cret" {
				t.Fatalf("conn = %+v", conn)
			}
			c := oidcLogin(t, e, conn, "authreq-1")
			p := c.Res.Profile
			if c.Err != nil || c.Res.RequestID != "authreq-1" || p.IdPSubject != "user-1" || p.Email != "bob@example.com" ||
				!p.EmailVerified || p.GivenName != "Bob" || p.FamilyName != "Builder" || len(p.Groups) != 2 ||
				p.ConnectionType != Name || p.TenantID != e.Tenant {
				t.Fatalf("login = %+v, %v", c.Res, c.Err)
			}
		})
	}
}

func TestOIDCRefusals(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		tamper func(map[string]any)
		want   error
	}{
		{"nonce mismatch", func(c map[string]any) { c["nonce"] = "other" }, connections.ErrRequestMismatch},
		{"wrong audience", func(c map[string]any) { c["aud"] = "client-2" }, connections.ErrAudienceMismatch},
		{"wrong issuer", func(c map[string]any) { c["iss"] = "https://evil.example" }, connections.ErrIssuerMismatch},
		{"expired", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, connections.ErrExpired},
		{"email outside verified domains", func(c map[string]any) { c["email"] = "bob@evil.net" }, connections.ErrDomainNotAllowed},
		{"email not verified", func(c map[string]any) { c["email_verified"] = false }, connections.ErrProfile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op.tamper = tt.tamper
			defer func() { op.tamper = nil }()
			c := oidcLogin(t, e, conn, "r")
			wantErr(t, c.Err, tt.want, "")
			// A profile rule refused verified claims: they go with the
			// error, for the portal's test result to show.
			if errors.Is(tt.want, connections.ErrDomainNotAllowed) && c.Res.Profile.Raw["email"] != "bob@evil.net" {
				t.Errorf("the refused claims are not returned with the error: %v", c.Res.Profile.Raw)
			}
		})
	}
	// A state is single-use, and unknown states are refused.
	cb := oidcCallback(t, e, conn, "r")
	if c := e.Get(cb); c.Err != nil {
		t.Fatalf("first callback: %v", c.Err)
	}
	wantErr(t, e.Get(cb).Err, connections.ErrRequestMismatch, "already used")
	for _, q := range []string{"?code=x&state=unknown", "?code=x", "?error=access_denied&state=zzz"} {
		wantErr(t, e.Get(e.Srv.URL+"/sso/oidc/"+conn.ID+"/callback"+q).Err, connections.ErrRequestMismatch, "")
	}
	// An OIDC callback on another type's connection id is not found.
	sconn, err := e.DB.CreateConnection(e.Ctx, store.Connection{Type: "saml", Name: "SAML", Status: store.ConnectionActive, Config: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := http.Get(e.Srv.URL + "/sso/oidc/" + sconn.ID + "/callback?state=x&code=y")
	resp.Body.Close()
	if c := e.Last(); !errors.Is(c.Err, connections.ErrNotFound) {
		t.Fatalf("type confusion: %v", c.Err)
	}
}

// TestOIDCForgedIDTokens: id_tokens the IdP's JWKS does not vouch for are
// refused, however they are dressed: alg none, HS256 keyed with the client
// secret (which the broker holds) or with the IdP's public key, the
// IdP's kid on another key, an unknown kid, the forger's key embedded
// (jwk) or named by address (jku, x5u, never fetched); and an id_token issued to the
// client among other audiences counts only when azp names the client.
func TestOIDCForgedIDTokens(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	// Even an IdP whose discovery document offers them.
	op.algs = []string{"RS256", "HS256", "none"}
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signWith := func(alg jose.SignatureAlgorithm, key any, kid string) func(map[string]any) string {
		return func(c map[string]any) string {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
			if err != nil {
				t.Error(err)
				return ""
			}
			tok, err := jwt.Signed(s).Claims(c).Serialize()
			if err != nil {
				t.Error(err)
			}
			return tok
		}
	}
	// By hand: go-jose refuses HMAC keys shorter than the hash, and a
	// forger need not.
	hs256 := func(key []byte) func(map[string]any) string {
		return func(c map[string]any) string {
			in := b64(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "k1"}) + "." + b64(c)
			m := hmac.New(sha256.New, key)
			m.Write([]byte(in))
			return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		}
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub := op.jwks.Keys[0].Key.(*rsa.PublicKey)
	// Key-locating headers that name the forger's own key, by value (jwk)
	// or at an address (jku, x5u): none may be followed. The forger's
	// server counts every fetch.
	var fetched atomic.Int32
	forgerKeys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: other.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	}))
	t.Cleanup(forgerKeys.Close)
	signWithHeaders := func(kid string, embed bool, extra map[jose.HeaderKey]any) func(map[string]any) string {
		return func(c map[string]any) string {
			o := (&jose.SignerOptions{EmbedJWK: embed}).WithType("JWT")
			for k, v := range extra {
				o = o.WithHeader(k, v)
			}
			key := any(jose.JSONWebKey{Key: other, KeyID: kid})
			if embed {
				key = other // go-jose embeds the public half of a bare key
			}
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, o)
			if err != nil {
				t.Error(err)
				return ""
			}
			tok, err := jwt.Signed(s).Claims(c).Serialize()
			if err != nil {
				t.Error(err)
			}
			return tok
		}
	}
	for _, tc := range []struct {
		name   string
		sign   func(map[string]any) string
		tamper func(map[string]any)
		ok     bool
	}{
		{name: "alg none", sign: func(c map[string]any) string {
			return b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(c) + "."
		}},
		{name: "HS256 keyed with the client secret", sign: hs256([]byte("s3cret"))},
		{name: "HS256 keyed with the IdP's public key", sign: hs256(x509.MarshalPKCS1PublicKey(pub))},
		{name: "the IdP's kid on another key", sign: signWith(jose.RS256, other, "k1")},
		{name: "an unknown kid", sign: signWith(jose.RS256, other, "k2")},
		{name: "no kid, another key", sign: signWith(jose.RS256, other, "")},
		{name: "another key embedded as jwk", sign: signWithHeaders("", true, nil)},
		{name: "jku naming the forger's keys", sign: signWithHeaders("k1", false, map[jose.HeaderKey]any{"jku": forgerKeys.URL})},
		{name: "jku and an unknown kid", sign: signWithHeaders("k9", false, map[jose.HeaderKey]any{"jku": forgerKeys.URL})},
		{name: "x5u naming the forger's certificate", sign: signWithHeaders("k1", false, map[jose.HeaderKey]any{"x5u": forgerKeys.URL})},
		{name: "other audiences, no azp", tamper: func(c map[string]any) { c["aud"] = []string{"client-1", "client-2"} }},
		{name: "other audiences, azp another client", tamper: func(c map[string]any) {
			c["aud"], c["azp"] = []string{"client-1", "client-2"}, "client-2"
		}},
		{name: "other audiences, azp this client", ok: true, tamper: func(c map[string]any) {
			c["aud"], c["azp"] = []string{"client-1", "client-2"}, "client-1"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op.sign, op.tamper = tc.sign, tc.tamper
			defer func() { op.sign, op.tamper = nil, nil }()
			c := oidcLogin(t, e, conn, "r")
			if tc.ok {
				if c.Err != nil {
					t.Fatalf("login = %v", c.Err)
				}
				return
			}
			if c.Err == nil || c.Res.Profile.Email != "" {
				t.Fatalf("forged id_token accepted: %+v", c.Res.Profile)
			}
			if n := fetched.Load(); n > 0 {
				t.Fatalf("the forger's key server was asked %d times", n)
			}
		})
	}
}

// TestOIDCKeyRotation: an IdP that rotates its signing key (a new kid in
// its JWKS, id_tokens signed RS256, PS256 or ES256 with it) is followed
// at the first id_token with the new kid, by one read of the JWKS; the
// keys are then served from memory, not read again at every sign-in.
func TestOIDCKeyRotation(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	op.algs = []string{"RS256", "PS256", "ES256"}
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	signIn := func(step string) {
		t.Helper()
		if c := oidcLogin(t, e, conn, "r"); c.Err != nil || c.Res.Profile.Email != "bob@example.com" {
			t.Fatalf("%s: %+v, %v", step, c.Res.Profile, c.Err)
		}
	}
	signIn("first sign-in")
	signIn("second sign-in")
	if n := op.jwksReads.Load(); n != 1 {
		t.Fatalf("JWKS read %d times for two sign-ins with one key", n)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []struct {
		alg       jose.SignatureAlgorithm
		priv, pub any
	}{{jose.PS256, rk, &rk.PublicKey}, {jose.ES256, ec, &ec.PublicKey}} {
		kid := "rotated-" + string(k.alg)
		op.jwks = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.pub, KeyID: kid, Algorithm: string(k.alg), Use: "sig"}}}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		op.sign = func(c map[string]any) string {
			tok, err := jwt.Signed(signer).Claims(c).Serialize()
			if err != nil {
				t.Error(err)
			}
			return tok
		}
		signIn("after rotating to " + kid)
		signIn("again with " + kid)
		if n, want := op.jwksReads.Load(), int32(2+i); n != want {
			t.Fatalf("after rotating to %s: JWKS read %d times, want %d", kid, n, want)
		}
	}
	op.sign = nil
}

// TestOIDCTokenAnswerUnreadable: what the admin is told when the IdP was
// reached and its answer cannot be used, or a part of it could not be
// reached. Keys that cannot be fetched are the IdP's JWKS being down, not
// an invalid signature (which sends the admin after certificates); a
// token response without an id_token or with one that does not parse
// (Cognito-style string booleans gone wrong) is a malformed answer, not
// an unreachable token endpoint. (An id_token without sub or iat is
// named as such: TestOIDCRefusalReasonsNameWhatWasSent.)
func TestOIDCTokenAnswerUnreadable(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	newConn := func() store.Connection {
		conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
			Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	// Keys are read at the first id_token, so a new connection each time.
	op.jwksStatus.Store(http.StatusServiceUnavailable)
	c := oidcLogin(t, e, newConn(), "r")
	wantErr(t, c.Err, connections.ErrUpstream, op.issuer("")+"/jwks: the server answered 503")
	if strings.Contains(c.Err.Error(), "maintenance") || errors.Is(c.Err, connections.ErrSignature) {
		t.Fatalf("JWKS down: %v", c.Err)
	}
	op.jwksStatus.Store(0)
	conn := newConn()
	for _, tt := range []struct {
		name     string
		tamper   func(map[string]any)
		omit     bool
		contains string
	}{
		{name: "no id_token", omit: true, contains: "without an id_token"},
		{name: "email_verified neither a boolean nor \"true\"/\"false\"", tamper: func(c map[string]any) { c["email_verified"] = "yes" }, contains: "could not be read"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			op.tamper = tt.tamper
			op.omitIDToken.Store(tt.omit)
			defer func() { op.tamper = nil; op.omitIDToken.Store(false) }()
			c := oidcLogin(t, e, conn, "r")
			wantErr(t, c.Err, connections.ErrMalformed, tt.contains)
		})
	}
	// Cognito and Okta send email_verified as the string "true", other
	// IdPs "True": any letter case is read, and kept as sent.
	defer func() { op.tamper = nil }()
	for _, v := range []string{"true", "True", "TRUE"} {
		op.tamper = func(c map[string]any) { c["email_verified"] = v }
		if c := oidcLogin(t, e, conn, "r"); c.Err != nil || !c.Res.Profile.EmailVerified || c.Res.Profile.Raw["email_verified"] != v {
			t.Fatalf(`email_verified %q: %+v, %v`, v, c.Res.Profile, c.Err)
		}
	}
	op.tamper = func(c map[string]any) { c["email_verified"] = "False" }
	wantErr(t, oidcLogin(t, e, conn, "r").Err, connections.ErrProfile, "not verified")
	// Userinfo's too: its groups are read along with it.
	op.tamper = nil
	op.mu.Lock()
	op.userinfoExtra = map[string]any{"email_verified": "True", "phone_number_verified": "FALSE"}
	op.mu.Unlock()
	defer func() { op.mu.Lock(); op.userinfoExtra = nil; op.mu.Unlock() }()
	if c := oidcLogin(t, e, conn, "r"); c.Err != nil || len(c.Res.Profile.Groups) != 2 {
		t.Fatalf(`userinfo with email_verified "True": %+v, %v`, c.Res.Profile, c.Err)
	}
}

// TestOIDCIdPErrorReachesTheAdmin: an IdP that refuses the sign-in
// redirects back with error= (the user cancelled, is not assigned to the
// app, prompt=none found no session); the admin reads the code and the
// IdP's description on one line, Entra's trace lines included.
func TestOIDCIdPErrorReachesTheAdmin(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		query url.Values
		want  string
	}{
		{url.Values{"error": {"access_denied"}, "error_description": {"AADSTS50105: Your administrator has configured the application to block users unless they are specifically granted access.\r\nTrace ID: 0b5c\r\nCorrelation ID: 7d1e\r\nTimestamp: 2026-12-07 05:00:00Z"}},
			"idp_error: access_denied: AADSTS50105: Your administrator has configured the application to block users unless they are specifically granted access. Trace ID: 0b5c Correlation ID: 7d1e Timestamp: 2026-12-07 05:00:00Z"},
		{url.Values{"error": {"login_required"}}, "idp_error: login_required"},
		{url.Values{"error": {"access_denied"}, "error_description": {"x" + strings.Repeat("é", 400)}}, "idp_error: access_denied: x" + strings.Repeat("é", 149) + "…"},
	} {
		t.Run(tt.query.Get("error"), func(t *testing.T) {
			op.authorizeError.Store(tt.query)
			defer op.authorizeError.Store(url.Values{})
			c := oidcLogin(t, e, conn, "r")
			wantErr(t, c.Err, connections.ErrIdPError, "")
			if got := connections.Reason(c.Err) + strings.TrimPrefix(c.Err.Error(), "connections: IdP reported an error"); got != tt.want || c.Res.RequestID != "r" {
				t.Fatalf("got %q (request %q)\nwant %q", got, c.Res.RequestID, tt.want)
			}
		})
	}
}

// TestOIDCTokenEndpointAuthMethods: some IdPs accept only
// client_secret_basic, others only client_secret_post (as their discovery
// documents say, when they say it); the code exchange succeeds with
// either, trying the other method once after a refusal.
func TestOIDCTokenEndpointAuthMethods(t *testing.T) {
	for _, m := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(m, func(t *testing.T) {
			e := newEnv(t, connectionstest.Options{})
			op := newTestOP(t, "")
			op.authMethod.Store(m)
			conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
				Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				if c := oidcLogin(t, e, conn, "r"); c.Err != nil || c.Res.Profile.Email != "bob@example.com" {
					t.Fatalf("sign-in %d: %+v, %v", i, c.Res.Profile, c.Err)
				}
			}
			// The method that worked is remembered: at most one refusal.
			if n := op.authTries.Load(); n > 3 {
				t.Fatalf("%d token requests for 2 sign-ins", n)
			}
		})
	}
}

// TestOIDCUserinfoUnreadable: an access token the userinfo endpoint
// refuses (Entra's, for a connection whose scopes name another API) or an
// endpoint that fails does not fail a sign-in the id_token answers; it
// loses only what userinfo would have added. When the id_token lacks what
// the profile needs, the admin reads both why and that userinfo was not
// read.
func TestOIDCUserinfoUnreadable(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []int{http.StatusUnauthorized, http.StatusBadGateway} {
		op.userinfoStatus.Store(int32(st))
		c := oidcLogin(t, e, conn, "r")
		if p := c.Res.Profile; c.Err != nil || p.Email != "bob@example.com" || p.GivenName != "Bob" || p.FamilyName != "" || len(p.Groups) != 0 {
			t.Errorf("userinfo %d: login = %+v, %v; want the id_token's profile alone", st, p, c.Err)
		}
	}
	op.tamper = func(c map[string]any) { delete(c, "email") }
	defer func() { op.tamper = nil }()
	c := oidcLogin(t, e, conn, "r")
	wantErr(t, c.Err, connections.ErrProfile, "userinfo endpoint")
}

func TestOIDCEntraKeysByTidOid(t *testing.T) {
	const tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "/"+tid+"/v2.0")
	// The test OP is not login.microsoftonline.com, so exercise the Entra
	// rules through the connector directly.
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Entra", Settings{
		Issuer: ptr(op.issuer("/" + tid + "/v2.0")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cn, _ := e.Reg.Connector(e.Ctx, conn)
	cn.(*oidcConnector).entraTenant = tid
	op.claims = map[string]any{"tid": tid, "oid": "oid-123", "email": "bob@example.com"}
	c := oidcLogin(t, e, conn, "r")
	if c.Err != nil || c.Res.Profile.IdPSubject != tid+":oid-123" {
		t.Fatalf("Entra login = %+v, %v", c.Res.Profile, c.Err)
	}
	// Same email, another Entra tenant: refused (nOAuth).
	op.claims = map[string]any{"tid": "00000000-0000-0000-0000-000000000000", "oid": "oid-123", "email": "bob@example.com"}
	c = oidcLogin(t, e, conn, "r")
	wantErr(t, c.Err, connections.ErrProfile, "Entra tid")

	// Multi-tenant Entra issuers are refused at configuration time.
	for _, iss := range []string{"https://login.microsoftonline.com/common/v2.0", "https://login.microsoftonline.com/organizations/v2.0"} {
		_, err := e.Reg.CreateConnection(e.Ctx, Name, "Entra", Settings{Issuer: ptr(iss)}.Request(), nil)
		wantErr(t, err, connections.ErrConfig, "tenant id")
	}
}

// TestOIDCEntraGroupsOverage: through the real callback, an Entra
// id_token for a user in too many groups, which names a distributed
// groups claim (_claim_names / _claim_sources pointing at Graph) or says
// hasgroups instead of carrying groups, is flagged on the profile; one
// carrying groups is not. Graph is not called.
func TestOIDCEntraGroupsOverage(t *testing.T) {
	const tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "/"+tid+"/v2.0")
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Entra", Settings{
		Issuer: ptr(op.issuer("/" + tid + "/v2.0")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cn, _ := e.Reg.Connector(e.Ctx, conn)
	cn.(*oidcConnector).entraTenant = tid
	// Entra's userinfo never carries groups.
	op.userinfoExtra = map[string]any{"groups": nil}
	graph := "https://graph.windows.net/" + tid + "/users/oid-123/getMemberObjects"
	for _, tt := range []struct {
		name    string
		claims  map[string]any
		overage bool
		groups  []string
	}{
		{name: "distributed groups claim", claims: map[string]any{
			"_claim_names":   map[string]any{"groups": "src1"},
			"_claim_sources": map[string]any{"src1": map[string]any{"endpoint": graph}},
		}, overage: true, groups: []string{}},
		{name: "hasgroups (implicit flow)", claims: map[string]any{"hasgroups": true}, overage: true, groups: []string{}},
		{name: "groups sent", claims: map[string]any{"groups": []string{"g1", "g2"}}, groups: []string{"g1", "g2"}},
		{name: "another distributed claim only", claims: map[string]any{
			"_claim_names":   map[string]any{"memberOf": "src1"},
			"_claim_sources": map[string]any{"src1": map[string]any{"endpoint": graph}},
		}, groups: []string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			op.claims = map[string]any{"tid": tid, "oid": "oid-123", "email": "bob@example.com"}
			maps.Copy(op.claims, tt.claims)
			c := oidcLogin(t, e, conn, "r")
			if c.Err != nil {
				t.Fatal(c.Err)
			}
			if p := c.Res.Profile; p.GroupsOverage != tt.overage || !slices.Equal(p.Groups, tt.groups) {
				t.Fatalf("GroupsOverage %v groups %q, want %v %q", p.GroupsOverage, p.Groups, tt.overage, tt.groups)
			}
		})
	}
}

// TestOIDCAnyEmailDomainVouchesOnlyForVerified: a connection that allows
// any email domain signs in an address outside the tenant's verified
// domains, but the IdP's email_verified: true does not make it verified:
// otherwise one tenant's IdP could hand applications that link accounts
// by verified email an address in a domain another tenant owns.
func TestOIDCAnyEmailDomainVouchesOnlyForVerified(t *testing.T) {
	for _, b := range connectionstest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			op := newTestOP(t, "")
			conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
				Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret"),
				AllowAnyEmailDomain: ptr(true)}.Request(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct {
				email    string
				verified any
				want     bool
			}{
				{"ceo@other-tenant.example", true, false},
				{"ceo@other-tenant.example", "true", false},
				{"bob@example.com", true, true},
				{"bob@example.com", nil, true},
			} {
				op.tamper = func(c map[string]any) {
					c["email"] = tt.email
					if tt.verified == nil {
						delete(c, "email_verified")
					} else {
						c["email_verified"] = tt.verified
					}
				}
				c := oidcLogin(t, e, conn, "r")
				if c.Err != nil || c.Res.Profile.Email != tt.email || c.Res.Profile.EmailVerified != tt.want {
					t.Errorf("%s (IdP says verified %v): profile = %+v, %v; want email_verified %v",
						tt.email, tt.verified, c.Res.Profile, c.Err, tt.want)
				}
			}
			op.tamper = nil
		})
	}
}

// TestOIDCIssuerGivenAsDiscoveryURL: the discovery document's URL, which
// IdP consoles show as "Metadata URI" or "OpenID Connect metadata
// document", is taken for the issuer it is the document of.
func TestOIDCIssuerGivenAsDiscoveryURL(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "/realms/acme")
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Keycloak", Settings{
		Issuer: ptr(op.issuer("/realms/acme") + "/.well-known/openid-configuration"), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := DecodeConfig(conn.Config); cfg.Issuer != op.issuer("/realms/acme") || conn.Status != store.ConnectionActive {
		t.Fatalf("issuer %q, status %s", cfg.Issuer, conn.Status)
	}
	if c := oidcLogin(t, e, conn, "r"); c.Err != nil || c.Res.Profile.Email != "bob@example.com" {
		t.Fatalf("login = %+v, %v", c.Res.Profile, c.Err)
	}
}

// dialingRegistry is a Registry of e whose client reaches op, served over
// TLS at its public issuer, whatever host it asks for; and its transport.
func dialingRegistry(e *connectionstest.Env, op *testOP) (*connections.Registry, *http.Transport) {
	tr := op.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.ServerName = "example.com" // the test server's certificate
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, op.srv.Listener.Addr().String())
	}
	return connections.NewRegistry(connections.Config{Types: e.Types, Issuer: e.Issuer, Store: e.DB, Once: e.Once,
		HTTPClient: &http.Client{Transport: tr}, Now: e.Clock.Now}), tr
}

// TestOIDCEntraTenantByDomain: Entra answers discovery for a tenant named
// by one of its domains (…/contoso.onmicrosoft.com/v2.0), with the issuer
// naming the tenant id. The admin who typed the domain is told that
// issuer to set, rather than only that a tenant id is needed; the
// multi-tenant issuers stay refused outright.
func TestOIDCEntraTenantByDomain(t *testing.T) {
	const tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	e := newEnv(t, connectionstest.Options{})
	op := newTestOPAt(t, "/contoso.onmicrosoft.com/v2.0", "https://login.microsoftonline.com/"+tid+"/v2.0")
	reg, _ := dialingRegistry(e, op)
	_, err := reg.CreateConnection(e.Ctx, Name, "Entra", Settings{
		Issuer: ptr("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	fe, ok := errors.AsType[*connections.FieldError](err)
	if !ok || fe.Field != "oidc.issuer" || !strings.Contains(fe.Msg, `names the issuer "https://login.microsoftonline.com/`+tid+`/v2.0"`) {
		t.Fatalf("error = %v; want oidc.issuer naming the tenant-id issuer", err)
	}
	for _, iss := range []string{"https://login.microsoftonline.com/common/v2.0", "https://login.microsoftonline.com/organizations/v2.0"} {
		_, err := reg.CreateConnection(e.Ctx, Name, "Entra", Settings{Issuer: ptr(iss), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
		wantErr(t, err, connections.ErrConfig, "must name the tenant id")
	}
}

// TestOIDCGoogleIssuerForms: Google documents its id_tokens' iss as
// https://accounts.google.com or accounts.google.com, and some of its
// token endpoints still issue the bare host. A Google connection takes
// both; nothing else passes for Google, and no other IdP's issuer is
// matched loosely. The IdP is served at its real issuer, through a
// transport that dials the test server.
func TestOIDCGoogleIssuerForms(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOPAt(t, "", "https://accounts.google.com")
	reg, tr := dialingRegistry(e, op)
	conn, err := reg.CreateConnection(e.Ctx, Name, "Google", Settings{
		Issuer: ptr("https://accounts.google.com"), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cn, err := reg.Connector(e.Ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	login := func() (connections.Result, error) {
		rec := httptest.NewRecorder()
		if err := cn.Begin(e.Ctx, rec, httptest.NewRequest("GET", "/authorize", nil), connections.LoginRequest{RequestID: "r"}); err != nil {
			t.Fatal(err)
		}
		noFollow := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(rec.Header().Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return cn.Finish(e.Ctx, httptest.NewRequest("GET", resp.Header.Get("Location"), nil))
	}
	for _, tt := range []struct {
		iss string
		ok  bool
	}{
		{"https://accounts.google.com", true},
		{"accounts.google.com", true},
		{"http://accounts.google.com", false},
		{"accounts.google.com.evil.example", false},
		{"https://accounts.google.com/", false},
	} {
		t.Run(tt.iss, func(t *testing.T) {
			op.tamper = func(c map[string]any) { c["iss"] = tt.iss }
			defer func() { op.tamper = nil }()
			res, err := login()
			if tt.ok {
				if err != nil || res.Profile.Email != "bob@example.com" {
					t.Fatalf("login = %+v, %v", res.Profile, err)
				}
				return
			}
			wantErr(t, err, connections.ErrIssuerMismatch, "")
		})
	}

	// Another IdP's issuer is compared exactly: its bare host is not it.
	other := newTestOP(t, "/realms/acme")
	kc, err := e.Reg.CreateConnection(e.Ctx, Name, "Keycloak", Settings{
		Issuer: ptr(other.issuer("/realms/acme")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	other.tamper = func(c map[string]any) { c["iss"] = strings.TrimPrefix(other.issuer("/realms/acme"), "http://") }
	wantErr(t, oidcLogin(t, e, kc, "r").Err, connections.ErrIssuerMismatch, "")
}

func TestOIDCGoogleHostedDomain(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "Google", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret"), HostedDomain: ptr("example.com")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	op.claims = map[string]any{"hd": "gmail.com"}
	wantErr(t, oidcLogin(t, e, conn, "r").Err, connections.ErrProfile, "hd")
	op.claims = map[string]any{"hd": "example.com"}
	if c := oidcLogin(t, e, conn, "r"); c.Err != nil {
		t.Fatal(c.Err)
	}
}

func newEnv(t *testing.T, o connectionstest.Options) *connectionstest.Env {
	return connectionstest.New(t, connections.Types{Name: New()}, o)
}

func ptr[T any](v T) *T { return &v }

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
)

// testKey is the test OP's signing key, generated once per test binary.
func testKey() *rsa.PrivateKey {
	keyOnce.Do(func() {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return key
}

func wantErr(t *testing.T, err, want error, contains string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	if contains != "" && !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not mention %q", err, contains)
	}
}

// TestOIDCSettingsValidation: each refused setting names the check that
// refused it, and leaves nothing behind.
func TestOIDCSettingsValidation(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	for _, tt := range []struct {
		name     string
		s        Settings
		contains string
	}{
		{"scopes without openid", Settings{Scopes: &[]string{"email"}}, "openid"},
		{"unreachable issuer", Settings{Issuer: ptr("http://127.0.0.1:1"), ClientID: ptr("c"), ClientSecret: ptr("s")}, "discovery"},
		{"multi-tenant Entra issuer", Settings{Issuer: ptr("https://login.microsoftonline.com/common/v2.0")}, "tenant id"},
		{"issuer not https", Settings{Issuer: ptr("ftp://idp.example.net")}, "issuer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Reg.CreateConnection(e.Ctx, Name, "x", tt.s.Request(), nil)
			wantErr(t, err, connections.ErrConfig, tt.contains)
		})
	}
	if conns, _ := e.DB.Connections(e.Ctx); len(conns) != 0 {
		t.Fatalf("refused input left %d connections", len(conns))
	}
}

// TestInternationalisedDomainProfile: a verified domain added as
// bücher.example is stored as punycode, and a profile whose email is
// a@bücher.example (as an IdP sends it) or a@xn--bcher-kva.example is in
// that verified domain, and is one address.
func TestInternationalisedDomainProfile(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	tctx := store.WithTenant(context.Background(), e.Tenant)
	d, err := e.DB.AddDomain(tctx, store.Domain{Domain: "Bücher.example", VerificationToken: "idb-x"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Domain != "xn--bcher-kva.example" {
		t.Fatalf("stored domain %q, want the punycode form", d.Domain)
	}
	if _, err := e.DB.MarkDomainVerified(tctx, "bücher.example"); err != nil {
		t.Fatal(err)
	}
	op := newTestOP(t, "")
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every form gives the profile one address, the one a directory's
	// copy of the person is stored under (store.NormalizeEmail).
	for _, email := range []string{"a@bücher.example", "A@BÜCHER.example", "a@xn--bcher-kva.example", "a@bücher.example.", " a@ｂücher.example "} {
		op.tamper = func(c map[string]any) { c["email"] = email }
		c := oidcLogin(t, e, conn, "r")
		if c.Err != nil || !c.Res.Profile.EmailVerified || c.Res.Profile.Email != "a@bücher.example" {
			t.Errorf("login as %q: %+v, %v; want accepted in the verified domain as a@bücher.example", email, c.Res.Profile, c.Err)
		}
	}
	op.tamper = func(c map[string]any) { c["email"] = "a@bucher.example" }
	if c := oidcLogin(t, e, conn, "r"); !errors.Is(c.Err, connections.ErrDomainNotAllowed) {
		t.Errorf("a@bucher.example (no umlaut): %v, want ErrDomainNotAllowed", c.Err)
	}
}

// TestOIDCActivationDiscoversOnce: activating a connection reads the IdP's
// discovery document once, and the first login uses the connector built
// then rather than reading it again.
func TestOIDCActivationDiscoversOnce(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil || conn.Status != store.ConnectionActive {
		t.Fatalf("create: %v %s", err, conn.Status)
	}
	if c := oidcLogin(t, e, conn, "r"); c.Err != nil {
		t.Fatal(c.Err)
	}
	if n := op.discoveries.Load(); n != 1 {
		t.Fatalf("discovery read %d times for one activation and one login, want 1", n)
	}
}

// TestForcedAuthParams: a forced re-authentication asks every IdP for
// max_age and prompt=login, except Google, which refuses prompt=login.
func TestForcedAuthParams(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		maxAge int64
		want   map[string]string
	}{
		{"https://idp.example", 0, map[string]string{"max_age": "0", "prompt": "login"}},
		{"https://login.microsoftonline.com/tid/v2.0", 300, map[string]string{"max_age": "300", "prompt": "login"}},
		{"https://accounts.google.com", 0, map[string]string{"max_age": "0"}},
		{"https://accounts.google.com/", 60, map[string]string{"max_age": "60"}},
	} {
		if got := forcedAuthParams(tc.issuer, tc.maxAge); !maps.Equal(got, tc.want) {
			t.Errorf("forcedAuthParams(%q, %d) = %v, want %v", tc.issuer, tc.maxAge, got, tc.want)
		}
	}
}

// TestOIDCAuthorizeParameters: what Begin sends the upstream IdP. The
// user's email goes along as login_hint only when there is one, a forced
// re-authentication asks for prompt=login, Google's hd is sent only for a
// connection restricted to a hosted domain, and PKCE is always S256.
func TestOIDCAuthorizeParameters(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	plain, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	google, err := e.Reg.CreateConnection(e.Ctx, Name, "Google", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret"), HostedDomain: ptr("example.com")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	begin := func(conn store.Connection, req connections.LoginRequest) url.Values {
		t.Helper()
		ctx := store.WithTenant(context.Background(), conn.TenantID)
		cn, err := e.Reg.Connector(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		if err := cn.Begin(ctx, rec, httptest.NewRequest("GET", "/authorize", nil), req); err != nil {
			t.Fatal(err)
		}
		loc, err := url.Parse(rec.Header().Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		return loc.Query()
	}
	for _, tc := range []struct {
		name                      string
		conn                      store.Connection
		req                       connections.LoginRequest
		hint, prompt, hd          string
		hasHint, hasPrompt, hasHD bool
	}{
		{name: "hint", conn: plain, req: connections.LoginRequest{RequestID: "r1", LoginHint: "bob@example.com"}, hint: "bob@example.com", hasHint: true},
		{name: "no hint", conn: plain, req: connections.LoginRequest{RequestID: "r2"}},
		{name: "forced", conn: plain, req: connections.LoginRequest{RequestID: "r3", ForceAuthn: true}, prompt: "login", hasPrompt: true},
		{name: "hosted domain", conn: google, req: connections.LoginRequest{RequestID: "r4"}, hd: "example.com", hasHD: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := begin(tc.conn, tc.req)
			for _, p := range []struct {
				name, want string
				present    bool
			}{{"login_hint", tc.hint, tc.hasHint}, {"prompt", tc.prompt, tc.hasPrompt}, {"hd", tc.hd, tc.hasHD}} {
				if _, ok := q[p.name]; ok != p.present || q.Get(p.name) != p.want {
					t.Errorf("%s = %q (present %v), want %q (present %v)", p.name, q.Get(p.name), ok, p.want, p.present)
				}
			}
			if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("nonce") == "" || q.Get("state") == "" {
				t.Errorf("authorize request %v", q)
			}
		})
	}
}

// TestOIDCIdPClockAndShortTokens: an id_token is judged with the same 90 s
// allowance both ways. Before, the library's iat allowance was applied
// to exp the wrong way: an id_token with 90 s or less left (an IdP that
// issues one-minute id_tokens, or one whose clock is four minutes slow
// with five-minute ones) was refused as expired though it was valid.
func TestOIDCIdPClockAndShortTokens(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		idpClock time.Duration // the IdP's clock against ours
		lifetime time.Duration // of its id_tokens
		want     error
	}{
		{"right clock, five-minute id_token", 0, 5 * time.Minute, nil},
		{"right clock, one-minute id_token", 0, time.Minute, nil},
		{"right clock, ten-second id_token", 0, 10 * time.Second, nil},
		{"IdP four minutes slow, five-minute id_token", -4 * time.Minute, 5 * time.Minute, nil},
		{"IdP 80 s fast", 80 * time.Second, 5 * time.Minute, nil},
		{"IdP 30 s slow, id_token expired 20 s ago by our clock", -30 * time.Second, 10 * time.Second, nil},
		{"IdP three minutes fast", 3 * time.Minute, 5 * time.Minute, connections.ErrNotYetValid},
		{"IdP eight minutes slow, five-minute id_token", -8 * time.Minute, 5 * time.Minute, connections.ErrExpired},
		{"expired two minutes ago", -7 * time.Minute, 5 * time.Minute, connections.ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op.tamper = func(c map[string]any) {
				iat := time.Now().Add(tc.idpClock)
				c["iat"], c["exp"] = iat.Unix(), iat.Add(tc.lifetime).Unix()
			}
			defer func() { op.tamper = nil }()
			c := oidcLogin(t, e, conn, "r")
			wantErr(t, c.Err, tc.want, "")
		})
	}
}
