package oidc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/connectionstest"
)

// TestOIDCRefusalReasonsNameWhatWasSent: each refusal of a callback tells
// the tenant admin what the IdP sent beside what was expected (the
// audience received, not only the client id; the times and the skew; the
// kid and the JWKS URL), enough to fix the IdP's side, and never the
// id_token itself, a nonce, or markup of the IdP's as the broker's own.
func TestOIDCRefusalReasonsNameWhatWasSent(t *testing.T) {
	e := newEnv(t, connectionstest.Options{})
	op := newTestOP(t, "")
	conn, err := e.Reg.CreateConnection(e.Ctx, Name, "OIDC", Settings{
		Issuer: ptr(op.issuer("")), ClientID: ptr("client-1"), ClientSecret: ptr("s3cret")}.Request(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Whole seconds: the reasons show times to the second.
	past := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	future := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signWith := func(alg jose.SignatureAlgorithm, key any, kid string) func(map[string]any) string {
		return func(c map[string]any) string {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
			if err != nil {
				t.Fatal(err)
			}
			idt, err := jwt.Signed(s).Claims(c).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			return idt
		}
	}
	for _, tt := range []struct {
		name   string
		tamper func(map[string]any)
		sign   func(map[string]any) string
		query  url.Values // the IdP's error redirect instead of a code
		want   error
		has    []string
		hasNot []string
	}{
		{name: "wrong audience", tamper: func(c map[string]any) { c["aud"] = "api://other-app" },
			want: connections.ErrAudienceMismatch, has: []string{`(aud) was "api://other-app"`, `client_id "client-1"`}},
		{name: "several audiences, no azp", tamper: func(c map[string]any) { c["aud"] = []string{"client-1", "client-2"} },
			want: connections.ErrAudienceMismatch, has: []string{`"client-1", "client-2"`, "no authorized party (azp)", `client_id "client-1"`}},
		{name: "azp of another client", tamper: func(c map[string]any) { c["aud"], c["azp"] = []string{"client-1", "client-2"}, "client-2" },
			want: connections.ErrAudienceMismatch, has: []string{`(azp) was "client-2"`, `client_id "client-1"`}},
		{name: "wrong issuer", tamper: func(c map[string]any) { c["iss"] = "https://sts.windows.net/0b5c/" },
			want: connections.ErrIssuerMismatch, has: []string{`(iss) was "https://sts.windows.net/0b5c/"`, `expected "` + op.issuer("") + `"`}},
		{name: "expired", tamper: func(c map[string]any) { c["exp"], c["iat"] = past.Unix(), past.Add(-5*time.Minute).Unix() },
			want: connections.ErrExpired, has: []string{"expired at " + past.Format(time.RFC3339), "issued at " + past.Add(-5*time.Minute).Format(time.RFC3339), "1m30s allowed for clock skew"}},
		{name: "issued in the future", tamper: func(c map[string]any) { c["iat"], c["exp"] = future.Unix(), future.Add(5*time.Minute).Unix() },
			want: connections.ErrNotYetValid, has: []string{"issued at " + future.Format(time.RFC3339), "ahead of the broker's clock", "1m30s allowed for clock skew"}},
		{name: "nonce of another sign-in", tamper: func(c map[string]any) { c["nonce"] = "n-0ther" },
			want: connections.ErrRequestMismatch, has: []string{"a nonce of another sign-in"}, hasNot: []string{"n-0ther"}},
		{name: "no nonce", tamper: func(c map[string]any) { delete(c, "nonce") },
			want: connections.ErrRequestMismatch, has: []string{"has no nonce"}},
		// The claims every id_token must have: the admin is told which
		// one is missing, not that the answer could not be read.
		{name: "no sub", tamper: func(c map[string]any) { delete(c, "sub") },
			want: connections.ErrProfile, has: []string{"has no subject (sub)", `issuer "` + op.issuer("") + `"`}, hasNot: []string{"could not be read"}},
		{name: "empty sub", tamper: func(c map[string]any) { c["sub"] = "" },
			want: connections.ErrProfile, has: []string{"has no subject (sub), or an empty one"}, hasNot: []string{"could not be read"}},
		{name: "no iat", tamper: func(c map[string]any) { delete(c, "iat"); c["exp"] = future.Unix() },
			want: connections.ErrMalformed, has: []string{"has no issued-at time (iat)", "exp " + future.Format(time.RFC3339)}, hasNot: []string{"could not be read"}},
		{name: "unknown kid", sign: signWith(jose.RS256, testKey(), "rotated-2026"),
			want: connections.ErrSignature, has: []string{`(kid) "rotated-2026"`, "JWKS at " + op.issuer("/jwks")}},
		{name: "the IdP's kid on another key", sign: signWith(jose.RS256, otherKey, "k1"),
			want: connections.ErrSignature, has: []string{`(kid) "k1"`, `alg "RS256"`, "JWKS at " + op.issuer("/jwks")}},
		{name: "unsupported alg", sign: signWith(jose.ES256, ecKey, "k1"),
			want: connections.ErrSignature, has: []string{`alg "ES256"`, "(RS256)"}},
		{name: "email not verified", tamper: func(c map[string]any) { c["email_verified"] = false },
			want: connections.ErrProfile, has: []string{`email "bob@example.com" is not verified (email_verified is false)`}},
		{name: "IdP error with markup", query: url.Values{"error": {"access_denied"}, "error_description": {"<script>alert(1)</script>\r\n<b>AADSTS50105</b> " + strings.Repeat("x", 500)}},
			want: connections.ErrIdPError, has: []string{"access_denied: <script>alert(1)</script> <b>AADSTS50105</b> xxx", "x…"}, hasNot: []string{"\r", "\n", strings.Repeat("x", 300)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			op.tamper, op.sign = tt.tamper, tt.sign
			op.authorizeError.Store(tt.query)
			defer func() { op.tamper, op.sign = nil, nil; op.authorizeError.Store(url.Values{}) }()
			c := oidcLogin(t, e, conn, "r")
			wantErr(t, c.Err, tt.want, "")
			msg := c.Err.Error()
			for _, s := range tt.has {
				if !strings.Contains(msg, s) {
					t.Errorf("reason %q\ndoes not say %q", msg, s)
				}
			}
			// No token (a JWS starts eyJ), secret or nonce in a reason.
			for _, s := range append(tt.hasNot, "eyJ", "s3cret", "expected but was") {
				if strings.Contains(msg, s) {
					t.Errorf("reason %q\nsays %q", msg, s)
				}
			}
		})
	}
}
