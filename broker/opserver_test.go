package broker_test

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/store"
)

// TestNoUnimplementedEndpoint drives every route zitadel/oidc could serve
// and every endpoint of the discovery document, with every grant type and
// the parameters each endpoint reads, and checks that none reaches an
// op.Server method the broker left to op.UnimplementedServer: those answer
// "... not implemented on this server" (with op.UnimplementedStatusCode,
// a 404 that would not stand out), or "<grant> not supported" for a
// grant. The broker serves a whole OpenID Provider through the methods it
// implements; the library's defaults are never the answer.
func TestNoUnimplementedEndpoint(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{BackchannelLogoutURI: "https://app.example/bcl"})
	pub := n.app(store.Application{Public: true})

	// Each path is swept with the tokens, code and session of a sign-in
	// of its own, so that an earlier revocation or logout does not keep a
	// later request from reaching deep into its endpoint.
	signIn := func() (tok *oauth2.Token, idToken, unused, verifier string) {
		b := browser(t)
		verifier, challenge := pkce()
		resp := a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}})
		tok, _ = a.exchange(t, code(t, resp), oauth2.VerifierOption(verifier))
		idToken, _ = tok.Extra("id_token").(string)
		return tok, idToken, code(t, a.authorize(t, b, nil)), verifier
	}

	paths := map[string]bool{
		"/healthz": true, "/ready": true, "/.well-known/openid-configuration": true,
		"/authorize/callback": true, // op.RegisterLegacyServer's login callback
	}
	for _, e := range []*op.Endpoint{
		op.DefaultEndpoints.Authorization, op.DefaultEndpoints.Token, op.DefaultEndpoints.Introspection,
		op.DefaultEndpoints.Userinfo, op.DefaultEndpoints.Revocation, op.DefaultEndpoints.EndSession,
		op.DefaultEndpoints.CheckSessionIframe, op.DefaultEndpoints.JwksURI, op.DefaultEndpoints.DeviceAuthorization,
	} {
		if e != nil {
			paths["/"+strings.TrimPrefix(e.Relative(), "/")] = true
		}
	}
	var disco map[string]any
	getJSON(t, n.URL+broker.PathDiscovery, &disco)
	for k, v := range disco {
		if s, ok := v.(string); ok && (strings.HasSuffix(k, "_endpoint") || strings.HasSuffix(k, "_uri")) && strings.HasPrefix(s, n.URL) {
			paths[strings.TrimPrefix(s, n.URL)] = true
		}
	}
	for _, want := range []string{broker.PathAuthorize, broker.PathToken, broker.PathUserinfo, broker.PathRevoke, broker.PathIntrospect, broker.PathEndSession, broker.PathJWKS} {
		if !paths[want] {
			t.Fatalf("discovery does not name %s; the sweep would miss it", want)
		}
	}

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	reached := 0
	for _, path := range slices.Sorted(maps.Keys(paths)) {
		tok, idToken, unused, verifier := signIn()
		authz := url.Values{"client_id": {a.ID}, "redirect_uri": {a.Redirect}, "response_type": {"code"}, "scope": {"openid email"}, "state": {"s"}}
		with := func(base url.Values, kv ...string) url.Values {
			v := url.Values{}
			for k, vs := range base {
				v[k] = slices.Clone(vs)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				v.Set(kv[i], kv[i+1])
			}
			return v
		}
		params := []url.Values{
			{},
			authz,
			with(authz, "prompt", "none"),
			with(authz, "prompt", "login", "max_age", "0"),
			with(authz, "id_token_hint", idToken),
			with(authz, "request", idToken),
			with(authz, "request_uri", "https://app.example/req"),
			with(authz, "response_type", "token"),
			with(authz, "response_type", "id_token"),
			with(authz, "response_mode", "form_post"),
			with(authz, "code_challenge", strings.Repeat("c", 43), "code_challenge_method", "plain"),
			with(authz, "client_id", pub.ID, "redirect_uri", pub.Redirect),
			{"grant_type": {"authorization_code"}, "code": {unused}, "redirect_uri": {a.Redirect}},
			{"grant_type": {"authorization_code"}, "code": {"nope"}, "redirect_uri": {a.Redirect}, "code_verifier": {verifier}},
			{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}},
			{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}, "scope": {"openid"}},
			{"grant_type": {"client_credentials"}, "scope": {"openid"}},
			{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}},
			{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {idToken}},
			{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {tok.AccessToken},
				"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}},
			{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"x"}},
			{"client_id": {a.ID}, "scope": {"openid"}}, // a device authorization request
			{"client_assertion": {idToken}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "grant_type": {"refresh_token"}, "refresh_token": {"x"}},
			{"token": {tok.AccessToken}},
			{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}},
			{"token": {idToken}, "token_type_hint": {"access_token"}},
			{"access_token": {tok.AccessToken}},
			{"id_token_hint": {idToken}, "post_logout_redirect_uri": {a.Redirect}, "state": {"s"}},
			{"client_id": {a.ID}, "logout_hint": {"alice@acme.test"}},
		}
		type credential func(*http.Request)
		creds := map[string]credential{
			"none":   func(*http.Request) {},
			"basic":  func(r *http.Request) { r.SetBasicAuth(a.ID, a.Secret) },
			"public": func(r *http.Request) { r.URL.RawQuery = "" }, // with client_id in the body
			"bearer": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok.AccessToken) },
		}
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodOptions, http.MethodPut} {
			for i, form := range params {
				for name, cred := range creds {
					if name == "public" {
						form = with(form, "client_id", pub.ID)
					}
					var req *http.Request
					if method == http.MethodGet {
						req, _ = http.NewRequest(method, n.URL+path+"?"+form.Encode(), nil)
					} else {
						req, _ = http.NewRequest(method, n.URL+path, strings.NewReader(form.Encode()))
						req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					}
					if method == http.MethodOptions {
						req.Header.Set("Origin", "https://app.example")
						req.Header.Set("Access-Control-Request-Method", http.MethodPost)
					}
					cred(req)
					resp, err := noRedirect.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if unimplemented.Match(body) {
						t.Errorf("%s %s (params %d, %s credentials): %d %s", method, path, i, name, resp.StatusCode, body)
					}
					if resp.StatusCode < 500 {
						reached++
					}
				}
			}
		}
	}
	if reached == 0 {
		t.Fatal("no request was answered")
	}
}

// unimplemented matches the errors of op.UnimplementedServer, and none of
// the broker's own (e.g. "private_key_jwt is not supported; use ...").
var unimplemented = regexp.MustCompile(`not implemented on this server|[^"]* not supported"`)

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
