package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/store"
)

type idTokenClaims struct {
	Sub            string   `json:"sub"`
	Nonce          string   `json:"nonce"`
	SID            string   `json:"sid"`
	AuthTime       int64    `json:"auth_time"`
	Email          string   `json:"email"`
	EmailVerified  bool     `json:"email_verified"`
	Name           string   `json:"name"`
	Groups         []string `json:"groups"`
	TenantID       string   `json:"tenant_id"`
	ConnectionID   string   `json:"connection_id"`
	ConnectionType string   `json:"connection_type"`
	IdPSubject     string   `json:"idp_subject"`
}

// exchange redeems code and verifies the id_token with go-oidc, nonce and
// at_hash included.
func (a *app) exchange(t *testing.T, code string, opts ...oauth2.AuthCodeOption) (*oauth2.Token, idTokenClaims) {
	t.Helper()
	tok, err := a.Conf.Exchange(context.Background(), code, opts...)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok, a.verifyID(t, tok, "n0nce")
}

func (a *app) verifyID(t *testing.T, tok *oauth2.Token, nonce string) idTokenClaims {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.Verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify id_token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Fatalf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	var c idTokenClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDiscovery(t *testing.T) {
	n := sqliteNode(t)
	resp, err := http.Get(n.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer":                                n.URL,
		"code_challenge_methods_supported":      []any{"S256"},
		"backchannel_logout_supported":          true,
		"scopes_supported":                      []any{"openid", "email", "profile", "groups", "offline_access"},
		"token_endpoint_auth_methods_supported": []any{"client_secret_basic", "client_secret_post", "none"},
		"id_token_signing_alg_values_supported": []any{"RS256", "ES256"},
		"response_types_supported":              []any{"code"},
		"grant_types_supported":                 []any{"authorization_code", "refresh_token"},
		"request_uri_parameter_supported":       false, // absent would mean true
	}
	for k, v := range want {
		got, _ := json.Marshal(d[k])
		w, _ := json.Marshal(v)
		if string(got) != string(w) {
			t.Errorf("%s = %s, want %s", k, got, w)
		}
	}
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
		"introspection_endpoint", "revocation_endpoint", "end_session_endpoint"} {
		if s, _ := d[k].(string); !strings.HasPrefix(s, n.URL+"/") {
			t.Errorf("%s = %v", k, d[k])
		}
	}
}

func TestFullFlow(t *testing.T) {
	n := sqliteNode(t)
	tn := n.tenant("Acme", "acme.test", alice("acme.test"))
	for _, tc := range []struct{ idAlg, atAlg, wantAT string }{
		{"RS256", "", "RS256"},
		{"ES256", "", "ES256"},
		// RS256 id_tokens for the relying party, cheap ES256 access tokens.
		{"RS256", "ES256", "ES256"},
	} {
		alg := tc.idAlg
		t.Run(tc.idAlg+"/"+tc.wantAT, func(t *testing.T) {
			a := n.app(store.Application{IDTokenSigningAlg: tc.idAlg, AccessTokenSigningAlg: tc.atAlg})
			b := browser(t)
			verifier, challenge := pkce()
			resp := a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"},
				"code_challenge": {challenge}, "code_challenge_method": {"S256"}})
			tok, c := a.exchange(t, code(t, resp), oauth2.VerifierOption(verifier))
			if !store.HasPrefix(c.Sub, store.PrefixUser) || !store.HasPrefix(c.SID, store.PrefixSession) ||
				c.Email != "alice@acme.test" || !c.EmailVerified || c.Name != "Alice Liddell" ||
				!slices.Equal(c.Groups, []string{"eng"}) || c.TenantID != tn.ID || c.ConnectionID != tn.ConnID ||
				c.ConnectionType != "oidc" || c.IdPSubject != "idp-alice" || c.AuthTime == 0 {
				t.Fatalf("claims %+v", c)
			}
			// Access token: RFC 9068.
			jws, err := jose.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			if typ := jws.Signatures[0].Header.ExtraHeaders["typ"]; typ != "at+jwt" || jws.Signatures[0].Header.Algorithm != tc.wantAT {
				t.Fatalf("access token header typ %v alg %s", typ, jws.Signatures[0].Header.Algorithm)
			}
			idt, _ := tok.Extra("id_token").(string)
			if ijws, err := jose.ParseSigned(idt, []jose.SignatureAlgorithm{jose.RS256, jose.ES256}); err != nil || ijws.Signatures[0].Header.Algorithm != alg {
				t.Fatalf("id_token alg: %v, %v", ijws, err)
			}
			in := a.introspect(t, n, tok.AccessToken)
			if in["active"] != true || in["sub"] != c.Sub || in["client_id"] != a.ID || in["sid"] != c.SID ||
				in["tenant_id"] != tn.ID || in["token_type"] != "Bearer" || in["scope"] == nil || in["exp"] == nil || in["iat"] == nil {
				t.Fatalf("introspection %v", in)
			}
			if tok.RefreshToken == "" {
				t.Fatal("no refresh token with offline_access")
			}
			// Userinfo.
			ui, err := a.Conf.Client(context.Background(), tok).Get(n.URL + broker.PathUserinfo)
			if err != nil {
				t.Fatal(err)
			}
			var info map[string]any
			json.NewDecoder(ui.Body).Decode(&info)
			ui.Body.Close()
			if info["sub"] != c.Sub || info["email"] != "alice@acme.test" {
				t.Fatalf("userinfo %v", info)
			}
			// A person's profile is kept by no cache on the way.
			if cc := ui.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("userinfo Cache-Control %q, want no-store", cc)
			}
		})
	}
	// The same person logging in again is the same user.
	a := n.app(store.Application{})
	_, c1 := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
	_, c2 := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"domain_hint": {"acme.test"}})))
	if c1.Sub != c2.Sub || c1.SID == c2.SID {
		t.Fatalf("sub %s vs %s, sid %s vs %s", c1.Sub, c2.Sub, c1.SID, c2.SID)
	}
}

// TestProfileWhateverTheScopes: the id_token and UserInfo carry the whole
// profile (email, name, groups) and the broker's own claims whatever
// scopes the application asked for (docs/reference/oidc.md).
func TestProfileWhateverTheScopes(t *testing.T) {
	n := sqliteNode(t)
	tn := n.tenant("Acme", "acme.test", alice("acme.test"))
	for _, scopes := range [][]string{{"openid"}, {"openid", "email"}, {"openid", "email", "profile", "groups"}} {
		t.Run(strings.Join(scopes, "+"), func(t *testing.T) {
			a := n.app(store.Application{})
			a.Conf.Scopes = scopes
			tok, c := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
			idt, _ := tok.Extra("id_token").(string)
			jws, err := jose.ParseSigned(idt, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			var claims map[string]any
			if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
				t.Fatal(err)
			}
			ui, err := a.Conf.Client(context.Background(), tok).Get(n.URL + broker.PathUserinfo)
			if err != nil {
				t.Fatal(err)
			}
			var info map[string]any
			err = json.NewDecoder(ui.Body).Decode(&info)
			ui.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			for what, got := range map[string]map[string]any{"id_token": claims, "userinfo": info} {
				if got["tenant_id"] != tn.ID || got["sub"] != c.Sub || got["connection_id"] != tn.ConnID {
					t.Errorf("%s: %v", what, got)
				}
				for _, k := range []string{"email", "email_verified", "name", "given_name", "family_name", "groups"} {
					if _, has := got[k]; !has {
						t.Errorf("%s with scopes %v: no %s", what, scopes, k)
					}
				}
			}
		})
	}
}

func TestEmailPageRoutes(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	b := browser(t)
	resp := a.authorize(t, b, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("no hint: status %d, want the email page", resp.StatusCode)
	}
	id := resp.Request.URL.Query().Get("id")
	post := func(email string) *http.Response {
		resp, err := b.PostForm(n.URL+broker.PathLogin, url.Values{"id": {id}, "email": {email}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := post("not-an-email"); r.StatusCode != 400 {
		t.Fatalf("bad email: status %d", r.StatusCode)
	}
	a.exchange(t, code(t, post("alice@ACME.test")))
}

func TestRoutingRefusals(t *testing.T) {
	n := sqliteNode(t)
	ta := n.tenant("A", "a.test", alice("a.test"))
	tb := n.tenant("B", "b.test", alice("b.test"))
	// A known domain whose tenant has no active connection.
	tc := n.tenant("C", "c.test", alice("c.test"))
	ctxC := store.WithTenant(context.Background(), tc.ID)
	conn, _ := n.Store.Connection(ctxC, tc.ConnID)
	conn.Status = store.ConnectionInactive
	if _, err := n.Store.UpdateConnection(ctxC, conn); err != nil {
		t.Fatal(err)
	}
	// An unverified domain routes no one.
	if _, err := n.Store.AddDomain(store.WithTenant(context.Background(), ta.ID), store.Domain{Domain: "unverified.test", VerificationToken: "v"}); err != nil {
		t.Fatal(err)
	}
	a := n.app(store.Application{})
	body := func(resp *http.Response) string {
		r, _ := http.Get(resp.Request.URL.String())
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		return string(b)
	}
	tests := []struct {
		name   string
		params url.Values
		status int
	}{
		{"connection of another tenant", url.Values{"tenant": {ta.ID}, "connection": {tb.ConnID}}, 400},
		{"login_hint outside the tenant", url.Values{"tenant": {ta.ID}, "login_hint": {"bob@b.test"}}, 400},
		{"domain_hint and login_hint disagree", url.Values{"domain_hint": {"a.test"}, "login_hint": {"bob@b.test"}}, 400},
		{"unknown domain", url.Values{"login_hint": {"x@nowhere.test"}}, 404},
		{"unverified domain", url.Values{"login_hint": {"x@unverified.test"}}, 404},
		{"known domain without active connection", url.Values{"domain_hint": {"c.test"}}, 404},
		{"inactive connection named", url.Values{"connection": {tc.ConnID}}, 403},
		{"unknown tenant", url.Values{"tenant": {store.NewID(store.PrefixTenant)}}, 404},
		{"garbage connection", url.Values{"connection": {"conn_'--"}}, 404},
	}
	pages := map[int]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := a.authorize(t, browser(t), tc.params)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if _, err := resp.Location(); err == nil {
				t.Fatal("redirected")
			}
			if tc.status == 404 {
				pages[404] = body(resp)
			}
		})
	}
	if n.idp.Begins() != 0 {
		t.Fatalf("%d upstream logins began", n.idp.Begins())
	}
	// Paused tenant.
	paused := store.TenantPaused
	if _, err := n.Store.UpdateTenant(store.WithTenant(context.Background(), tb.ID), store.TenantUpdate{Status: &paused}); err != nil {
		t.Fatal(err)
	}
	if resp := a.authorize(t, browser(t), url.Values{"domain_hint": {"b.test"}}); resp.StatusCode != 403 {
		t.Fatalf("paused tenant: status %d", resp.StatusCode)
	}
	// A deleted tenant is out of service and unknown, however it is named:
	// the page must not tell that it was ever a customer.
	td := n.tenant("D", "d.test", alice("d.test"))
	if _, err := n.Store.SoftDeleteTenant(store.WithTenant(context.Background(), td.ID)); err != nil {
		t.Fatal(err)
	}
	for _, params := range []url.Values{{"tenant": {td.ID}}, {"connection": {td.ConnID}}, {"domain_hint": {"d.test"}}, {"login_hint": {"alice@d.test"}}} {
		resp := a.authorize(t, browser(t), params)
		if resp.StatusCode != 404 {
			t.Errorf("deleted tenant, %v: status %d, want 404", params, resp.StatusCode)
		} else if got := body(resp); !sameExceptReference(got, pages[404]) {
			t.Errorf("deleted tenant, %v: page differs from an unknown tenant's:\n%s", params, got)
		}
	}
}

// sameExceptReference compares two error pages but for the reference
// (request id) each carries.
func sameExceptReference(a, b string) bool {
	cut := func(s string) string {
		if i := strings.Index(s, "<code>"); i >= 0 {
			return s[:i]
		}
		return s
	}
	return cut(a) == cut(b)
}

func TestNoTenantEnumeration(t *testing.T) {
	n := sqliteNode(t)
	tc := n.tenant("C", "c.test", alice("c.test"))
	ctx := store.WithTenant(context.Background(), tc.ID)
	conn, _ := n.Store.Connection(ctx, tc.ConnID)
	conn.Status = store.ConnectionInactive
	n.Store.UpdateConnection(ctx, conn)
	a := n.app(store.Application{})
	page := func(hint string) string {
		resp, err := browser(t).Get(n.URL + "/authorize?" + url.Values{"client_id": {a.ID}, "redirect_uri": {a.Redirect},
			"response_type": {"code"}, "scope": {"openid"}, "login_hint": {hint}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The reference differs per request; the rest must not.
		s := string(b)
		if i := strings.Index(s, "<code>"); i >= 0 {
			s = s[:i]
		}
		return s
	}
	if known, unknown := page("x@c.test"), page("x@unknown.test"); known != unknown {
		t.Fatalf("a known domain without connection and an unknown one differ:\n%s\n---\n%s", known, unknown)
	}
}

func TestBadClientAndRedirect(t *testing.T) {
	n := sqliteNode(t)
	a := n.app(store.Application{})
	b := n.app(store.Application{})
	for name, q := range map[string]url.Values{
		// Which one would the answer go to? The broker checked the first
		// and op acted on the last.
		"client_id twice":    {"client_id": {a.ID, b.ID}, "redirect_uri": {a.Redirect}},
		"redirect_uri twice": {"client_id": {a.ID}, "redirect_uri": {a.Redirect, "https://evil.example/cb"}},
		"unknown client":     {"client_id": {store.NewID(store.PrefixApplication)}, "redirect_uri": {a.Redirect}},
		"redirect differs":   {"client_id": {a.ID}, "redirect_uri": {a.Redirect + "/x"}},
		"redirect prefix":    {"client_id": {a.ID}, "redirect_uri": {"https://app.example/callback?x=1"}},
		"no client":          {"redirect_uri": {a.Redirect}},
	} {
		t.Run(name, func(t *testing.T) {
			q.Set("response_type", "code")
			q.Set("scope", "openid")
			resp, err := browser(t).Get(n.URL + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("status %d, location %q, type %q", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Content-Type"))
			}
		})
	}
	// Only the code flow is served: any other response_type goes back to
	// the (verified) redirect_uri as unsupported_response_type, with the
	// state, also for an http://localhost redirect_uri.
	local := n.app(store.Application{RedirectURIs: []string{"http://localhost:3000/cb"}})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, app := range []*app{a, local} {
		for _, rt := range []string{"token", "id_token", "code id_token", "bogus"} {
			q := url.Values{"client_id": {app.ID}, "redirect_uri": {app.Redirect}, "response_type": {rt}, "scope": {"openid"}, "state": {"st"}}
			resp, err := noRedirect.Get(n.URL + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, err := resp.Location()
			if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), app.Redirect+"?") ||
				loc.Query().Get("error") != "unsupported_response_type" || loc.Query().Get("state") != "st" {
				t.Errorf("%s, response_type=%s: %d %v", app.Redirect, rt, resp.StatusCode, loc)
			}
		}
	}
	// The error goes back the way the application asked for answers:
	// posted with response_mode=form_post, in the query otherwise (a mode
	// the broker does not serve, such as fragment, is not followed). So do
	// the errors op finds before the broker's own checks run (prompt=none
	// beside another prompt, a PKCE method op does not know), which op
	// itself redirects in the query whatever the mode.
	for _, tc := range []struct {
		name  string
		extra url.Values
		want  string
		modes []string
	}{
		{"response_type=token", url.Values{"response_type": {"token"}}, "unsupported_response_type", []string{"form_post", "query", "fragment"}},
		{"prompt=none login", url.Values{"prompt": {"none login"}}, "invalid_request", []string{"form_post", "query"}},
		{"code_challenge_method=S512", url.Values{"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S512"}}, "invalid_request", []string{"form_post", "query"}},
		// op answered these three with a JSON 400 (blaming an http
		// redirect_uri's scheme) or not at all.
		{"no response_type", url.Values{"response_type": {""}}, "invalid_request", []string{"form_post", "query"}},
		{"max_age=-1", url.Values{"max_age": {"-1"}}, "invalid_request", []string{"form_post", "query"}},
		{"max_age=soon", url.Values{"max_age": {"soon"}}, "invalid_request", []string{"query"}},
		{"request_uri", url.Values{"request_uri": {"https://app.example/request.jwt"}}, "request_uri_not_supported", []string{"form_post", "query"}},
		// RFC 6749 §4.1.2.1: a repeated parameter is invalid_request.
		{"prompt twice", url.Values{"prompt": {"login", "none"}}, "invalid_request", []string{"form_post", "query"}},
		{"response_type twice", url.Values{"response_type": {"code", "token"}}, "invalid_request", []string{"query"}},
		{"connection twice", url.Values{"connection": {"conn_a", "conn_b"}}, "invalid_request", []string{"query"}},
		// A mode the broker does not serve: op sent this one in the
		// fragment, without iss, which a client that holds RFC 9207 to
		// discovery's word must refuse.
		{"response_mode=fragment", url.Values{"response_mode": {"fragment"}}, "invalid_request", []string{"query"}},
		{"response_mode=query.jwt", url.Values{"response_mode": {"query.jwt"}}, "invalid_request", []string{"query"}},
	} {
		for i, mode := range tc.modes {
			a := a
			if i == 0 {
				a = local // an http://localhost redirect_uri, which op treats apart
			}
			q := url.Values{"client_id": {a.ID}, "redirect_uri": {a.Redirect}, "response_type": {"code"}, "scope": {"openid"},
				"state": {"st"}, "response_mode": {mode}}
			for k, v := range tc.extra {
				q[k] = v
			}
			resp, err := noRedirect.Get(n.URL + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if mode == "form_post" {
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" ||
					!strings.Contains(string(body), `name="error" value="`+tc.want+`"`) ||
					!strings.Contains(string(body), `name="state" value="st"`) {
					t.Errorf("%s, response_mode=form_post: %d, location %q, body %.300s: want %s posted to %s",
						tc.name, resp.StatusCode, resp.Header.Get("Location"), body, tc.want, a.Redirect)
				}
				checkFormPost(t, resp.Header, string(body), a.Redirect, "error", "error_description", "state", "iss")
				if !strings.Contains(string(body), `name="iss" value="`+n.URL+`"`) {
					t.Errorf("%s, response_mode=form_post: iss is not %s: %.300s", tc.name, n.URL, body)
				}
				continue
			}
			loc, err := resp.Location()
			if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), a.Redirect+"?") ||
				loc.Query().Get("error") != tc.want || loc.Query().Get("state") != "st" || loc.Query().Get("iss") != n.URL {
				t.Errorf("%s, response_mode=%s: %d %v: want %s in the query, with iss %s", tc.name, mode, resp.StatusCode, loc, tc.want, n.URL)
			}
		}
	}

	// Wrong secret: 401 invalid_client.
	bad := a.Conf
	bad.ClientSecret = "nope"
	_, err := bad.Exchange(context.Background(), "idbc_x")
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != 401 || re.ErrorCode != "invalid_client" {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestPKCE(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		n.tenant("Acme", "acme.test", alice("acme.test"))
		pub := n.app(store.Application{Public: true})
		hint := url.Values{"login_hint": {"alice@acme.test"}}

		// A public client without PKCE, or with plain, is refused at the app.
		for name, extra := range map[string]url.Values{
			"none":  {},
			"plain": {"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}},
		} {
			q := url.Values{"login_hint": hint["login_hint"]}
			for k, v := range extra {
				q[k] = v
			}
			loc, err := pub.authorize(t, browser(t), q).Location()
			if err != nil || loc.Query().Get("error") != "invalid_request" {
				t.Fatalf("%s: %v %v", name, loc, err)
			}
		}
		verifier, challenge := pkce()
		q := url.Values{"login_hint": hint["login_hint"], "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		c := code(t, pub.authorize(t, browser(t), q))
		_, err := pub.Conf.Exchange(context.Background(), c, oauth2.VerifierOption(verifier+"x"))
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("wrong verifier: %v", err)
		}
		// The code was spent by the failed attempt.
		if _, err := pub.Conf.Exchange(context.Background(), c, oauth2.VerifierOption(verifier)); err == nil {
			t.Fatal("code redeemed after a failed attempt")
		}
		// No verifier for a code with a challenge, or one for a code
		// without (a confidential client's): the grant fails its proof.
		// (Sent by hand: x/oauth2 retries a refused exchange with the
		// credentials in the body, and the retry finds the code spent.)
		exchange := func(a *app, c, verifier string) (int, map[string]any) {
			f := url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {a.Redirect}}
			if verifier != "" {
				f.Set("code_verifier", verifier)
			}
			call := oauthCall{"POST", broker.PathToken, "application/x-www-form-urlencoded", f.Encode(), a.ID, a.Secret, ""}
			if a.Secret == "" {
				f.Set("client_id", a.ID)
				call = oauthCall{"POST", broker.PathToken, "application/x-www-form-urlencoded", f.Encode(), "", "", ""}
			}
			st, _, body := call.do(t, n.URL)
			return st, body
		}
		c = code(t, pub.authorize(t, browser(t), q))
		if st, body := exchange(pub, c, ""); st != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("no verifier: %d %v, want 400 invalid_grant", st, body)
		}
		conf := n.app(store.Application{})
		c = code(t, conf.authorize(t, browser(t), url.Values{"login_hint": hint["login_hint"]}))
		if st, body := exchange(conf, c, verifier); st != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("verifier without a challenge: %d %v, want 400 invalid_grant", st, body)
		}
		c = code(t, pub.authorize(t, browser(t), q))
		pub.exchange(t, c, oauth2.VerifierOption(verifier))
	})
}

// TestCodeReuseRevokes: a code presented again after it was redeemed has
// leaked; what was issued from it (RFC 6749 §4.1.2) is revoked: the
// application's grant in the session. The session, and another application
// signed in with it, live on, without a back-channel logout: the thief got
// this application's tokens, never the browser's session.
func TestCodeReuseRevokes(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		n.tenant("Acme", "acme.test", alice("acme.test"))
		rcv, got := bclReceiver(t)
		other := n.app(store.Application{BackchannelLogoutURI: rcv.URL})
		a := n.app(store.Application{})
		b := browser(t)
		otherTok, _ := other.exchange(t, code(t, other.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}})))
		c := code(t, a.authorize(t, b, nil))
		tok, _ := a.exchange(t, c)
		if a.introspect(t, n, tok.AccessToken)["active"] != true {
			t.Fatal("fresh token inactive")
		}
		if _, err := a.Conf.Exchange(context.Background(), c); err == nil {
			t.Fatal("code redeemed twice")
		}
		if in := a.introspect(t, n, tok.AccessToken); in["active"] != false {
			t.Fatalf("access token of a reused code still active: %v", in)
		}
		if _, err := a.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Fatal("refresh token of a reused code still works")
		}
		if in := a.introspect(t, n, tok.RefreshToken); in["active"] != false {
			t.Fatalf("refresh token of a reused code introspects %v", in)
		}
		if in := other.introspect(t, n, otherTok.AccessToken); in["active"] != true {
			t.Fatalf("another application's token in the same session: %v, want active", in)
		}
		if _, err := other.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: otherTok.RefreshToken}).Token(); err != nil {
			t.Fatalf("another application's refresh: %v", err)
		}
		select {
		case <-got:
			t.Fatal("a back-channel logout for a reused code")
		case <-time.After(time.Second):
		}
		// The application signs the user in again through the session.
		again, _ := a.exchange(t, code(t, a.authorize(t, b, nil)))
		if in := a.introspect(t, n, again.AccessToken); in["active"] != true {
			t.Fatalf("a sign-in after the revocation: %v, want active", in)
		}
	})
}

// TestRefusedCodePresentedAgainRevokesNothing: a redemption refused for
// a wrong verifier spends the code and issues nothing; the code presented
// again (x/oauth2 retries a refused exchange with the credentials in the
// body; a stolen code tried first by someone else) is refused too, but is
// no reuse: the session, and the other application signed in with it,
// live on, and no back-channel logout goes out.
func TestRefusedCodePresentedAgainRevokesNothing(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		n.tenant("Acme", "acme.test", alice("acme.test"))
		rcv, got := bclReceiver(t)
		other := n.app(store.Application{BackchannelLogoutURI: rcv.URL})
		a := n.app(store.Application{})
		b := browser(t)
		tok, _ := other.exchange(t, code(t, other.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}})))
		verifier, challenge := pkce()
		wrong, _ := pkce()
		c := code(t, a.authorize(t, b, url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
		redeem := func(v string, basic bool) (int, map[string]any) {
			f := url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {a.Redirect}, "code_verifier": {v}}
			call := oauthCall{"POST", broker.PathToken, "application/x-www-form-urlencoded", f.Encode(), a.ID, a.Secret, ""}
			if !basic {
				f.Set("client_id", a.ID)
				f.Set("client_secret", a.Secret)
				call = oauthCall{"POST", broker.PathToken, "application/x-www-form-urlencoded", f.Encode(), "", "", ""}
			}
			st, _, body := call.do(t, n.URL)
			return st, body
		}
		if st, body := redeem(wrong, true); st != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("wrong verifier: %d %v, want 400 invalid_grant", st, body)
		}
		if st, body := redeem(wrong, false); st != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("the same, retried with the credentials in the body: %d %v, want 400 invalid_grant", st, body)
		}
		if st, body := redeem(verifier, true); st != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("the right verifier after a refused attempt: %d %v, want 400 invalid_grant (the code is spent)", st, body)
		}
		if in := other.introspect(t, n, tok.AccessToken); in["active"] != true {
			t.Fatalf("a refused code presented again ended the session: %v", in)
		}
		select {
		case <-got:
			t.Fatal("a back-channel logout for a code that issued nothing")
		case <-time.After(2 * time.Second):
		}
		// A code that did issue tokens is still reuse when seen again.
		verifier, challenge = pkce()
		c = code(t, a.authorize(t, b, url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
		st, body := redeem(verifier, true)
		if st != 200 {
			t.Fatalf("redeem: %d %v", st, body)
		}
		if st, _ := redeem(verifier, true); st != 400 {
			t.Fatalf("a redeemed code presented again: %d, want 400", st)
		}
		if in := a.introspect(t, n, body["access_token"].(string)); in["active"] != false {
			t.Fatalf("a redeemed code presented again left its tokens active: %v", in)
		}
	})
}

func TestCodeRace(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		n.tenant("Acme", "acme.test", alice("acme.test"))
		a := n.app(store.Application{})
		c := code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}}))
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := a.Conf.Exchange(context.Background(), c); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		// At most one: the losers see a spent code, which is reuse and ends
		// the session, so the winner may itself be refused if a loser got
		// there first (RFC 6749 §4.1.2: deny, and revoke what the code gave).
		if wins > 1 {
			t.Fatalf("%d redemptions won", wins)
		}
	})
}

func TestCodeBoundToClientAndRedirect(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		n.tenant("Acme", "acme.test", alice("acme.test"))
		a := n.app(store.Application{RedirectURIs: []string{"https://app.example/callback", "https://app.example/other"}})
		other := n.app(store.Application{})
		c := code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}}))
		if _, err := other.Conf.Exchange(context.Background(), c); err == nil {
			t.Fatal("another client redeemed the code")
		}
		c = code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}}))
		wrong := a.Conf
		wrong.RedirectURL = "https://app.example/other"
		if _, err := wrong.Exchange(context.Background(), c); err == nil {
			t.Fatal("code redeemed with another redirect_uri")
		}
	})
}

func TestRefreshRotationAndReuse(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		n.tenant("Acme", "acme.test", alice("acme.test"))
		a := n.app(store.Application{})
		tok, _ := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
		refresh := func(rt string) (*oauth2.Token, error) {
			return a.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
		}
		t1, err := refresh(tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if t1.RefreshToken == "" || t1.RefreshToken == tok.RefreshToken {
			t.Fatal("refresh token not rotated")
		}
		a.verifyID(t, t1, "")
		t2, err := refresh(t1.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		// Reusing the spent t1 fails and kills the family: t2 no longer works.
		if _, err := refresh(t1.RefreshToken); err == nil {
			t.Fatal("spent refresh token accepted")
		}
		if _, err := refresh(t2.RefreshToken); err == nil {
			t.Fatal("family survived reuse")
		}
		// A token the family's record contradicts — the family and
		// generation of the live token, with another secret — is refused
		// and ends the family like reuse: it is what a record rewound by a
		// restored Redis sees once its spent token was taken again. Only a
		// holder of one of the family's tokens knows its id (and could
		// present an older generation as it is).
		tok, _ = a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
		cut := strings.LastIndexByte(tok.RefreshToken, '.')
		if _, err := refresh(tok.RefreshToken[:cut+1] + "forged"); err == nil {
			t.Fatal("forged refresh token accepted")
		}
		if _, err := refresh(tok.RefreshToken); err == nil {
			t.Fatal("the family survived a token its record contradicts")
		}
		// Another client cannot use the token.
		tok, _ = a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
		other := n.app(store.Application{})
		if _, err := other.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Fatal("another client refreshed")
		}
		if _, err := refresh(tok.RefreshToken); err != nil {
			t.Fatalf("owner's token harmed by another client's attempt: %v", err)
		}
		// A refresh asking for more scope is refused and spends nothing: the
		// client's next, correct refresh works and is not taken for reuse.
		tok, _ = a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
		st, _, body := oauthCall{"POST", broker.PathToken, "application/x-www-form-urlencoded",
			"grant_type=refresh_token&scope=openid+admin&refresh_token=" + url.QueryEscape(tok.RefreshToken), a.ID, a.Secret, ""}.do(t, n.URL)
		if st != 400 || body["error"] != "invalid_scope" {
			t.Fatalf("widening refresh: %d %v", st, body)
		}
		if _, err := refresh(tok.RefreshToken); err != nil {
			t.Fatalf("refresh token spent by a refused request: %v", err)
		}
	})
}

func TestPromptNoneAndSSO(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a1 := n.app(store.Application{})
	a2 := n.app(store.Application{RedirectURIs: []string{"https://app2.example/cb"}})
	b := browser(t)

	loc, err := a1.authorize(t, b, url.Values{"prompt": {"none"}}).Location()
	if err != nil || loc.Query().Get("error") != "login_required" || loc.Query().Get("state") != "st8" {
		t.Fatalf("prompt=none without session: %v %v", loc, err)
	}
	_, c1 := a1.exchange(t, code(t, a1.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}})))
	begins := n.idp.Begins()
	// A second app in the same browser skips the IdP, even with prompt=none,
	// and so does a max_age the login is younger than (an hour: max_age is
	// in seconds, not nanoseconds).
	for _, q := range []url.Values{{"prompt": {"none"}}, {"max_age": {"3600"}}} {
		_, c2 := a2.exchange(t, code(t, a2.authorize(t, b, q)))
		if n.idp.Begins() != begins || c1.SID != c2.SID || c1.Sub != c2.Sub || c1.AuthTime != c2.AuthTime {
			t.Fatalf("%v: SSO did not reuse the session: begins %d→%d, %+v vs %+v", q, begins, n.idp.Begins(), c1, c2)
		}
	}
	// prompt=login and max_age=0 go back to the IdP.
	for _, q := range []url.Values{{"prompt": {"login"}}, {"max_age": {"0"}}} {
		q.Set("login_hint", "alice@acme.test")
		time.Sleep(1100 * time.Millisecond) // auth_time has second resolution
		_, c := a2.exchange(t, code(t, a2.authorize(t, b, q)))
		if n.idp.Begins() == begins || c.SID == c1.SID {
			t.Fatalf("%v reused the session", q)
		}
		begins = n.idp.Begins()
	}
	// prompt=none with a max_age the session is older than: login_required,
	// saying why (the user is signed in, too long ago).
	time.Sleep(1100 * time.Millisecond)
	loc, err = a2.authorize(t, b, url.Values{"prompt": {"none"}, "max_age": {"1"}}).Location()
	if err != nil || loc.Query().Get("error") != "login_required" || !strings.Contains(loc.Query().Get("error_description"), "max_age") {
		t.Fatalf("prompt=none past max_age: %v %v", loc, err)
	}
	// The SSO cookie is set (its attributes: TestSSOCookieAttributes).
	u, _ := url.Parse(n.URL)
	for _, ck := range b.Jar.Cookies(u) {
		if ck.Name == broker.SessionCookie && strings.HasPrefix(ck.Value, "ses_") {
			return
		}
	}
	t.Fatal("no session cookie")
}

func TestUpstreamFailureAndDeactivatedUser(t *testing.T) {
	n := sqliteNode(t)
	tn := n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	n.idp.mu.Lock()
	n.idp.fail[tn.ConnID] = errors.New("signature invalid: certificate mismatch")
	n.idp.mu.Unlock()
	resp := a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})
	if resp.StatusCode != 403 || resp.Header.Get("Location") != "" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	evs, _, err := n.Store.ListEvents(context.Background(), store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		if e.Type == broker.EventAuthFailed && e.TenantID == tn.ID && strings.Contains(string(e.Data), "certificate mismatch") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no authentication.failed event with the reason: %v", evs)
	}
	n.idp.mu.Lock()
	delete(n.idp.fail, tn.ConnID)
	n.idp.mu.Unlock()

	// A SCIM-deactivated user is refused.
	_, c := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
	ctx := store.WithTenant(context.Background(), tn.ID)
	u, _ := n.Store.User(ctx, c.Sub)
	u.Active = false
	if _, err := n.Store.UpdateUser(ctx, u, 0); err != nil {
		t.Fatal(err)
	}
	if resp := a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}}); resp.StatusCode != 403 {
		t.Fatalf("deactivated user: status %d", resp.StatusCode)
	}
}

// TestRoutingInternationalisedDomain: a tenant that verified bücher.example
// (stored as punycode) is found by a login_hint or domain_hint in either
// form and any case, and the login completes with the hinted address.
func TestRoutingInternationalisedDomain(t *testing.T) {
	n := sqliteNode(t)
	tn := n.tenant("Bücher", "bücher.example", alice("bücher.example"))
	a := n.app(store.Application{})
	for _, hint := range []url.Values{
		{"login_hint": {"a@bücher.example"}},
		{"login_hint": {"a@BÜCHER.Example"}},
		{"login_hint": {"a@xn--bcher-kva.example"}},
		{"domain_hint": {"bücher.example"}},
	} {
		_, c := a.exchange(t, code(t, a.authorize(t, browser(t), hint)))
		if c.TenantID != tn.ID || c.ConnectionID != tn.ConnID {
			t.Errorf("%v: signed in to tenant %q connection %q, want %s %s", hint, c.TenantID, c.ConnectionID, tn.ID, tn.ConnID)
		}
	}
}
