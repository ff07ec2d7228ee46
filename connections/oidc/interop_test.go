package oidc

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/connectionstest"
	"github.com/idbroker/idbroker/store"
)

// The shapes here are what OpenID Providers in the field send beyond the
// big three's defaults, each through a real sign-in: Begin, the test OP's
// authorize redirect, the callback, the code exchange and the id_token
// checks of the connector.

func genericConn(t *testing.T, e *connectionstest.Env, op *testOP) store.Connection {
	t.Helper()
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func wantBob(t *testing.T, c connectionstest.Completion) {
	t.Helper()
	if p := c.Res.Profile; c.Err != nil || p.Email != "bob@example.com" || p.IdPSubject != "user-1" || p.GivenName != "Bob" {
		t.Fatalf("sign-in = %+v, %v", p, c.Err)
	}
}

// TestOIDCTokenAnswerMediaTypes: the token endpoint's answer is read
// whatever media type the IdP labels it with. golang.org/x/oauth2 reads
// text/plain as a form (as GitHub once answered), so JSON under
// text/plain, which small and home-made OpenID Providers send, was read
// as a response without an access token; form-encoded answers (GitHub
// style, with or without the text/plain label) keep working.
func TestOIDCTokenAnswerMediaTypes(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn := genericConn(t, e, op)
	asJSON := func(ct string) func(http.ResponseWriter, map[string]any) {
		return func(w http.ResponseWriter, a map[string]any) {
			if ct != "" {
				w.Header().Set("Content-Type", ct)
			} else {
				w.Header()["Content-Type"] = nil // no sniffing either
			}
			json.NewEncoder(w).Encode(a)
		}
	}
	asForm := func(ct string) func(http.ResponseWriter, map[string]any) {
		return func(w http.ResponseWriter, a map[string]any) {
			w.Header().Set("Content-Type", ct)
			v := url.Values{}
			for k, x := range a {
				v.Set(k, fmt.Sprint(x))
			}
			w.Write([]byte(v.Encode()))
		}
	}
	for _, tt := range []struct {
		name  string
		write func(http.ResponseWriter, map[string]any)
	}{
		{"JSON with a charset", asJSON("application/json; charset=utf-8")},
		{"JSON as text/plain", asJSON("text/plain")},
		{"JSON as text/plain with a charset", asJSON("text/plain; charset=UTF-8")},
		{"JSON as text/html", asJSON("text/html")},
		{"JSON without a media type", asJSON("")},
		{"form-encoded (GitHub style)", asForm("application/x-www-form-urlencoded")},
		{"form-encoded as text/plain", asForm("text/plain")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			op.writeToken = tt.write
			defer func() { op.writeToken = nil }()
			wantBob(t, oidcLogin(t, e, conn, "r"))
		})
	}
}

// TestOIDCSigningAlgorithms: id_tokens signed with what the IdPs offer —
// RS512 and PS256 (PingFederate, Keycloak's RSA choices), ES256/ES384/
// ES512 (Keycloak's and Auth0's EC keys), EdDSA (Keycloak's Ed25519 realm
// keys) — are verified against the JWKS, with and without a kid.
func TestOIDCSigningAlgorithms(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	e256, e384, e521 := ec(elliptic.P256()), ec(elliptic.P384()), ec(elliptic.P521())
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		alg       jose.SignatureAlgorithm
		priv, pub any
	}{
		{jose.RS384, rk, &rk.PublicKey}, {jose.RS512, rk, &rk.PublicKey}, {jose.PS256, rk, &rk.PublicKey}, {jose.PS512, rk, &rk.PublicKey},
		{jose.ES256, e256, &e256.PublicKey}, {jose.ES384, e384, &e384.PublicKey}, {jose.ES512, e521, &e521.PublicKey},
		{jose.EdDSA, edPriv, edPub},
	} {
		for _, kid := range []string{"key-" + string(k.alg), ""} {
			t.Run(fmt.Sprintf("%s kid %q", k.alg, kid), func(t *testing.T) {
				e := newEnv(t, connectionstest.Options{})
				op := newTestOP(t, "")
				op.algs = []string{"RS256", string(k.alg)}
				op.jwks = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.pub, KeyID: kid, Use: "sig"}}}
				op.sign = signer(t, k.alg, k.priv, kid)
				wantBob(t, oidcLogin(t, e, genericConn(t, e, op), "r"))
			})
		}
	}
}

// TestOIDCKeysWithoutKid: an IdP whose JWKS holds several keys without
// kids (a rotation at an IdP that names none) signs id_tokens that name
// no key either. The token is the IdP's when one of those keys verifies
// it; a key the JWKS does not hold is refused, as is a kid of a key the
// JWKS names with another. Rotating to yet another unnamed key is
// followed by reading the JWKS again.
func TestOIDCKeysWithoutKid(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn := genericConn(t, e, op)
	keys := make([]*rsa.PrivateKey, 4)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	unnamed := func(ks ...*rsa.PrivateKey) jose.JSONWebKeySet {
		var set jose.JSONWebKeySet
		for _, k := range ks {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, Use: "sig", Algorithm: "RS256"})
		}
		return set
	}
	defer func() { op.sign = nil }()
	op.jwks = unnamed(keys[0], keys[1])
	for _, k := range keys[:2] {
		op.sign = signer(t, jose.RS256, k, "")
		wantBob(t, oidcLogin(t, e, conn, "r"))
	}
	op.sign = signer(t, jose.RS256, keys[2], "")
	wantErr(t, oidcLogin(t, e, conn, "r").Err, connections.ErrSignature, "")
	op.sign = signer(t, jose.RS256, keys[2], "k-forged")
	wantErr(t, oidcLogin(t, e, conn, "r").Err, connections.ErrSignature, "")
	// The IdP rotates: the keys are read again, and the new one signs in.
	op.jwks = unnamed(keys[1], keys[3])
	op.sign = signer(t, jose.RS256, keys[3], "")
	wantBob(t, oidcLogin(t, e, conn, "r"))
	// And the JWKS down is the IdP unreachable, not a bad signature.
	op.jwks = unnamed(keys[0], keys[1])
	op.jwksStatus.Store(http.StatusServiceUnavailable)
	defer op.jwksStatus.Store(0)
	op.sign = signer(t, jose.RS256, keys[2], "")
	wantErr(t, oidcLogin(t, e, conn, "r").Err, connections.ErrUpstream, "/jwks: the server answered 503")
}

// TestOIDCClaimShapesByVendor: what the IdPs put where. Keycloak and
// Auth0 leave email_verified out for users imported without it; Okta's
// org authorization server and some Ping setups put the email only in
// userinfo; an at_hash that does not match the access token, or an
// id_token without the nonce, is refused with the reason.
func TestOIDCClaimShapesByVendor(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn := genericConn(t, e, op)
	for _, tt := range []struct {
		name     string
		tamper   func(map[string]any)
		userinfo map[string]any
		verified bool
		want     error
		contains string
	}{
		{name: "email_verified left out", tamper: func(c map[string]any) { delete(c, "email_verified") }, verified: true},
		{name: "email only in userinfo", tamper: func(c map[string]any) { delete(c, "email"); delete(c, "email_verified") },
			userinfo: map[string]any{"email": "bob@example.com", "email_verified": true}, verified: true},
		{name: "email only in userinfo, not verified there", tamper: func(c map[string]any) { delete(c, "email"); delete(c, "email_verified") },
			userinfo: map[string]any{"email": "bob@example.com", "email_verified": false}, want: connections.ErrProfile, contains: "not verified"},
		{name: "at_hash of another access token", tamper: func(c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" },
			want: connections.ErrSignature, contains: "at_hash"},
		// An Entra ID guest's account name in the host directory, sent as
		// the email by an IdP that maps the UPN: the guest's own address.
		{name: "email is an Entra guest's account name", tamper: func(c map[string]any) { c["email"] = "bob_example.com#EXT#@contoso.onmicrosoft.com" },
			verified: true},
		{name: "no nonce", tamper: func(c map[string]any) { delete(c, "nonce") }, want: connections.ErrRequestMismatch, contains: "nonce"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			op.mu.Lock()
			op.tamper, op.userinfoExtra = tt.tamper, tt.userinfo
			op.mu.Unlock()
			defer func() { op.mu.Lock(); op.tamper, op.userinfoExtra = nil, nil; op.mu.Unlock() }()
			c := oidcLogin(t, e, conn, "r")
			if tt.want != nil {
				wantErr(t, c.Err, tt.want, tt.contains)
				return
			}
			wantBob(t, c)
			if c.Res.Profile.EmailVerified != tt.verified {
				t.Fatalf("email_verified %v, want %v", c.Res.Profile.EmailVerified, tt.verified)
			}
		})
	}
}

// signer serialises id_token claims with key under alg, naming kid when
// it is not "".
func signer(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string) func(map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return func(c map[string]any) string {
		tok, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			t.Error(err)
		}
		return tok
	}
}

// TestOIDCOddlyTypedOptionalClaims: a standard claim the broker does not
// use, typed otherwise than OpenID Connect says (a locale of "English",
// a picture object as Facebook-style IdPs send it, numbers for
// phone_number, preferred_username, zoneinfo, gender or acr, an address
// string, a null email_verified), failed the whole sign-in as a
// malformed answer. It is now left to the side: the user signs in, and
// the claims keep it as sent. The claims the checks rest on stay strict.
func TestOIDCOddlyTypedOptionalClaims(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn := genericConn(t, e, op)
	defer func() { op.tamper = nil }()
	for _, tt := range []struct {
		claim string
		value any
	}{
		{"locale", "English"}, {"locale", map[string]any{"country": "US"}}, {"picture", map[string]any{"data": map[string]any{"url": "https://x"}}},
		{"phone_number", 5551234}, {"preferred_username", 42}, {"zoneinfo", 0}, {"gender", 1}, {"acr", 1},
		{"address", "1 Main St"}, {"updated_at", "yesterday"}, {"amr", 7}, {"sid", 99}, {"name", map[string]any{"first": "Bob"}},
		{"email_verified", nil}, {"middle_name", nil},
	} {
		t.Run(fmt.Sprintf("%s %v", tt.claim, tt.value), func(t *testing.T) {
			op.tamper = func(c map[string]any) { c[tt.claim] = tt.value }
			c := oidcLogin(t, e, conn, "r")
			wantBob(t, c)
			if got, err := json.Marshal(c.Res.Profile.Raw[tt.claim]); err != nil || !jsonEqual(t, got, tt.value) {
				t.Fatalf("claim %s kept as %s, want it as sent (%v)", tt.claim, got, tt.value)
			}
			if tt.claim == "email_verified" && !c.Res.Profile.EmailVerified {
				t.Fatalf("email_verified null: the email in a verified domain is not passed on as verified")
			}
		})
	}
	for _, tt := range []struct {
		claim string
		value any
	}{
		{"sub", 12345}, {"email_verified", 0}, {"email_verified", "yes"},
	} {
		t.Run(fmt.Sprintf("strict %s %v", tt.claim, tt.value), func(t *testing.T) {
			op.tamper = func(c map[string]any) { c[tt.claim] = tt.value }
			wantErr(t, oidcLogin(t, e, conn, "r").Err, connections.ErrMalformed, "")
		})
	}
}

func jsonEqual(t *testing.T, got []byte, want any) bool {
	t.Helper()
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	return json.Unmarshal(got, &a) == nil && json.Unmarshal(w, &b) == nil && fmt.Sprint(a) == fmt.Sprint(b)
}

// TestOIDCTokenEndpointFirstAnswerReachesTheAdmin: golang.org/x/oauth2,
// left to detect the client authentication method, sends the code a
// second time with the other method after ANY failure of the first. The
// IdP has by then spent the code, so the admin read the second answer —
// invalid_grant, "the code was already redeemed" (Entra's AADSTS54005) —
// instead of the first, which said what was wrong: an expired code, the
// token endpoint down. The code is now sent again only when the IdP
// refused the client authentication method (invalid_client), and the
// admin reads the IdP's own answer.
func TestOIDCTokenEndpointFirstAnswerReachesTheAdmin(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn := genericConn(t, e, op)
	defer func() { op.writeToken = nil }()
	for _, tt := range []struct {
		name     string
		status   int
		ct, body string
		want     error
		contains string
	}{
		{"an expired code", http.StatusBadRequest, "application/json",
			`{"error":"invalid_grant","error_description":"AADSTS70008: The provided authorization code or refresh token has expired due to inactivity."}`,
			connections.ErrIdPError, "invalid_grant: AADSTS70008"},
		{"an OAuth error with status 200", http.StatusOK, "application/json", `{"error":"invalid_request","error_description":"redirect_uri mismatch"}`,
			connections.ErrIdPError, "invalid_request: redirect_uri mismatch"},
		{"the token endpoint down", http.StatusServiceUnavailable, "text/html", `<html>Service Unavailable</html>`,
			connections.ErrUpstream, "503"},
		{"a web page for an answer", http.StatusOK, "text/html", `<html>Sign in</html>`,
			connections.ErrMalformed, "could not be read"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			op.writeToken = func(w http.ResponseWriter, _ map[string]any) {
				w.Header().Set("Content-Type", tt.ct)
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}
			before := op.authTries.Load()
			c := oidcLogin(t, e, conn, "r")
			wantErr(t, c.Err, tt.want, tt.contains)
			if n := op.authTries.Load() - before; n != 1 {
				t.Fatalf("the code was sent %d times", n)
			}
		})
	}
}

// TestOIDCAlgorithmNotListed: an IdP that signs id_tokens with an
// algorithm its discovery document does not list (a Keycloak client set
// to RS256 in a realm whose discovery, here, offers ES256 only) is
// refused, and the admin reads which algorithms the document lists, not
// only "signature algorithm not supported".
func TestOIDCAlgorithmNotListed(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	op.algs = []string{"ES256", "ES384"}
	wantErr(t, oidcLogin(t, e, genericConn(t, e, op), "r").Err, connections.ErrSignature, "id_token_signing_alg_values_supported (ES256, ES384)")
}

// TestEntraTenantOfNationalClouds: Entra ID in the cloud operated by
// 21Vianet (login.partner.microsoftonline.cn, formerly
// login.chinacloudapi.cn) and Azure Government is Entra ID: its users are
// keyed by tenant and object id, and its multi-tenant issuers, which any
// tenant of that cloud can mint tokens for, are refused.
func TestEntraTenantOfNationalClouds(t *testing.T) {
	const tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	for _, tt := range []struct {
		issuer, tenant string
		multi          bool
	}{
		{"https://login.microsoftonline.com/" + tid + "/v2.0", tid, false},
		{"https://login.partner.microsoftonline.cn/" + tid + "/v2.0", tid, false},
		{"https://login.chinacloudapi.cn/" + tid + "/v2.0", tid, false},
		{"https://sts.chinacloudapi.cn/" + tid + "/", tid, false},
		{"https://login.microsoftonline.us/" + tid + "/v2.0", tid, false},
		{"https://login.partner.microsoftonline.cn/common/v2.0", "", true},
		{"https://login.chinacloudapi.cn/organizations/v2.0", "", true},
		{"https://login.example.cn/" + tid + "/v2.0", "", false},
	} {
		got, err := entraTenantOf(tt.issuer)
		if got != tt.tenant || (err != nil) != tt.multi {
			t.Errorf("entraTenantOf(%s) = %q, %v; want %q, refused %v", tt.issuer, got, err, tt.tenant, tt.multi)
		}
	}
	if p := defaultPreset("https://login.chinacloudapi.cn/" + tid + "/v2.0"); p != connections.PresetEntra {
		t.Errorf("preset %s", p)
	}
}

// TestOIDCTimeClaims: the times an id_token's checks rest on (auth_time,
// iat, exp, nbf) as IdPs send them. A number, with or without a fraction
// (some IdPs write milliseconds as decimals), and the same number as a
// string of digits ("1700000000", as some send auth_time) mean one thing
// and are read; an RFC 3339 date the library reads already (Auth0 of
// old). Anything else — a word, an empty or signed string, a number out
// of any sensible range, a time far in the future or the past — is a
// malformed answer, never a time made up.
func TestOIDCTimeClaims(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn := genericConn(t, e, op)
	defer func() { op.tamper = nil }()
	now := time.Now().Truncate(time.Second)
	authAt := now.Add(-time.Minute)
	num := func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
	for _, tt := range []struct {
		name     string
		claims   map[string]any
		authTime time.Time // the profile's, when the sign-in succeeds
		err      error
	}{
		{"auth_time a number", map[string]any{"auth_time": authAt.Unix()}, authAt, nil},
		{"auth_time a string of digits", map[string]any{"auth_time": num(authAt)}, authAt, nil},
		{"auth_time a decimal", map[string]any{"auth_time": float64(authAt.Unix()) + 0.25}, authAt, nil},
		{"auth_time a decimal string", map[string]any{"auth_time": num(authAt) + ".250"}, authAt, nil},
		{"auth_time RFC 3339", map[string]any{"auth_time": authAt.UTC().Format(time.RFC3339)}, authAt, nil},
		{"iat and exp decimals", map[string]any{"iat": float64(now.Unix()) + 0.5, "exp": float64(now.Add(5*time.Minute).Unix()) + 0.5}, time.Time{}, nil},
		{"iat and exp strings of digits", map[string]any{"iat": num(now), "exp": num(now.Add(5 * time.Minute))}, time.Time{}, nil},
		{"exp a string of digits, past", map[string]any{"exp": num(now.Add(-time.Hour))}, time.Time{}, connections.ErrExpired},
		{"auth_time a word", map[string]any{"auth_time": "yesterday"}, time.Time{}, connections.ErrMalformed},
		{"auth_time empty", map[string]any{"auth_time": ""}, time.Time{}, connections.ErrMalformed},
		{"auth_time signed", map[string]any{"auth_time": "+" + num(authAt)}, time.Time{}, connections.ErrMalformed},
		{"auth_time negative", map[string]any{"auth_time": -5}, time.Time{}, connections.ErrMalformed},
		{"auth_time with spaces", map[string]any{"auth_time": " " + num(authAt)}, time.Time{}, connections.ErrMalformed},
		{"auth_time hex", map[string]any{"auth_time": "0x6553f100"}, time.Time{}, connections.ErrMalformed},
		{"auth_time exponent string", map[string]any{"auth_time": "1.7e9"}, time.Time{}, connections.ErrMalformed},
		{"auth_time huge", map[string]any{"auth_time": 1e300}, time.Time{}, connections.ErrMalformed},
		{"auth_time milliseconds", map[string]any{"auth_time": authAt.UnixMilli()}, time.Time{}, connections.ErrMalformed},
		{"auth_time a boolean", map[string]any{"auth_time": true}, time.Time{}, connections.ErrMalformed},
		{"exp huge", map[string]any{"exp": 1e300}, time.Time{}, connections.ErrMalformed},
		{"iat a word", map[string]any{"iat": "now"}, time.Time{}, connections.ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			op.tamper = func(c map[string]any) { maps.Copy(c, tt.claims) }
			c := oidcLogin(t, e, conn, "r")
			if tt.err != nil {
				if c.Err == nil {
					t.Fatalf("signed in with %v; want %v", tt.claims, tt.err)
				}
				wantErr(t, c.Err, tt.err, "")
				return
			}
			wantBob(t, c)
			if !c.Res.Profile.AuthTime.Equal(tt.authTime) {
				t.Fatalf("AuthTime = %v, want %v", c.Res.Profile.AuthTime, tt.authTime)
			}
			// The claims keep what the IdP sent.
			for k, v := range tt.claims {
				if got, err := json.Marshal(c.Res.Profile.Raw[k]); err != nil || !jsonEqual(t, got, v) {
					t.Errorf("claim %s kept as %s, want %v", k, got, v)
				}
			}
		})
	}
}
