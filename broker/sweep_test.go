package broker_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/store"
)

// TestEndSessionParameters: RP-initiated logout reads each parameter
// once. One given twice (in the query, or in the query and the body of a
// POST) is ambiguous — which state to echo, which address to return to,
// which session to end — and is refused with the error page, before
// anything ends or redirects, as the authorization endpoint refuses one
// (RFC 6749 §3.1). A hint of one application with another's client_id or
// post_logout_redirect_uri is refused too; a registered address with the
// hint returns there with state, exactly as sent.
func TestEndSessionParameters(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{PostLogoutRedirectURIs: []string{"https://app.example/bye"}})
	b := n.app(store.Application{RedirectURIs: []string{"https://app2.example/cb"}, PostLogoutRedirectURIs: []string{"https://app2.example/bye"}})
	const bye = "https://app.example/bye"
	for _, tc := range []struct {
		name     string
		method   string
		query    func(idt string) string
		body     func(idt string) string
		location string // "" for the 400 page
	}{
		{"hint and registered address", "GET", func(idt string) string {
			return url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {bye}, "state": {"a b&c"}}.Encode()
		}, nil, bye + "?state=a+b%26c"},
		{"POST, all in the body", "POST", nil, func(idt string) string {
			return url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {bye}, "state": {"s"}}.Encode()
		}, bye + "?state=s"},
		{"hint twice", "GET", func(idt string) string {
			return url.Values{"id_token_hint": {idt, idt}, "post_logout_redirect_uri": {bye}}.Encode()
		}, nil, ""},
		{"address twice", "GET", func(idt string) string {
			return url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {bye, bye}}.Encode()
		}, nil, ""},
		{"state twice", "GET", func(idt string) string {
			return url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {bye}, "state": {"a", "b"}}.Encode()
		}, nil, ""},
		{"client_id twice", "GET", func(idt string) string {
			return url.Values{"id_token_hint": {idt}, "client_id": {a.ID, a.ID}, "post_logout_redirect_uri": {bye}}.Encode()
		}, nil, ""},
		{"POST, state in the query and the body", "POST", func(string) string { return "state=q" }, func(idt string) string {
			return url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {bye}, "state": {"b"}}.Encode()
		}, ""},
		{"another application's address", "GET", func(idt string) string {
			return url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://app2.example/bye"}}.Encode()
		}, nil, ""},
		{"another application's client_id", "GET", func(idt string) string {
			return url.Values{"id_token_hint": {idt}, "client_id": {b.ID}, "post_logout_redirect_uri": {"https://app2.example/bye"}}.Encode()
		}, nil, ""},
		{"address with a trailing slash", "GET", func(idt string) string {
			return url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {bye + "/"}}.Encode()
		}, nil, ""},
		{"an unknown parameter is ignored", "GET", func(idt string) string {
			return url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {bye}, "foo": {"1", "2"}}.Encode()
		}, nil, bye},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := browser(t)
			tok, claims := a.exchange(t, code(t, a.authorize(t, br, url.Values{"login_hint": {"alice@acme.test"}})))
			idt, _ := tok.Extra("id_token").(string)
			target := n.URL + broker.PathEndSession
			if tc.query != nil {
				target += "?" + tc.query(idt)
			}
			var body io.Reader
			if tc.body != nil {
				body = strings.NewReader(tc.body(idt))
			}
			req, _ := http.NewRequest(tc.method, target, body)
			if tc.body != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, err := br.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			live := a.introspect(t, n, tok.AccessToken)["active"] == true
			if tc.location == "" {
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
					!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					t.Fatalf("%d %q %q, want the 400 page", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Content-Type"))
				}
				if !live {
					t.Fatalf("a refused sign-out ended session %s", claims.SID)
				}
				return
			}
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tc.location {
				t.Fatalf("%d %q, want a redirect to %s", resp.StatusCode, resp.Header.Get("Location"), tc.location)
			}
			if live {
				t.Fatalf("session %s still live after the sign-out", claims.SID)
			}
		})
	}
}

// TestRequestObjectsRefused: request objects (OpenID Connect Core §6) are
// not supported, by value or by reference: the application gets
// request_not_supported or request_uri_not_supported, with a description,
// its state and iss, at its registered redirect_uri, and no sign-in
// starts (the parameters inside would otherwise be silently ignored).
func TestRequestObjectsRefused(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	for _, tc := range []struct {
		name  string
		extra url.Values
		code  string
	}{
		{"request", url.Values{"request": {"eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6Im90aGVyIn0."}}, "request_not_supported"},
		{"request_uri", url.Values{"request_uri": {"https://app.example/req"}}, "request_uri_not_supported"},
		{"both", url.Values{"request": {"x.y."}, "request_uri": {"https://app.example/req"}}, "request_not_supported"},
		{"request twice", url.Values{"request": {"x.y.", "x.y."}}, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			begins := n.idp.Begins()
			tc.extra.Set("login_hint", "alice@acme.test")
			loc, err := a.authorize(t, browser(t), tc.extra).Location()
			if err != nil || loc.Host != "app.example" {
				t.Fatalf("%v %v, want a redirect to the application", loc, err)
			}
			q := loc.Query()
			if q.Get("error") != tc.code || q.Get("error_description") == "" || q.Get("state") != "st8" || q.Get("iss") != n.URL || q.Has("code") {
				t.Fatalf("answer %s, want %s with a description, state and iss", loc, tc.code)
			}
			if n.idp.Begins() != begins {
				t.Fatal("a sign-in started")
			}
		})
	}
}

// TestEmptyParametersAreOmitted: "Parameters sent without a value MUST be
// treated as if they were omitted from the request" (RFC 6749 §3.1).
// Libraries that build the query from a settings object send prompt= or
// max_age= when the setting is empty; each such request signs in as if
// the parameter were absent. A prompt with extra spaces between values
// is read as its values.
func TestEmptyParametersAreOmitted(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	for _, q := range []url.Values{
		{"prompt": {""}}, {"max_age": {""}}, {"response_mode": {""}}, {"nonce": {""}}, {"id_token_hint": {""}},
		{"ui_locales": {""}}, {"acr_values": {""}}, {"display": {""}}, {"request": {""}}, {"request_uri": {""}},
		{"code_challenge": {""}, "code_challenge_method": {""}}, {"domain_hint": {""}}, {"connection": {""}}, {"tenant": {""}},
		{"prompt": {"login  consent"}}, {"prompt": {" login"}},
	} {
		t.Run(q.Encode(), func(t *testing.T) {
			q.Set("login_hint", "alice@acme.test")
			code(t, a.authorize(t, browser(t), q))
		})
	}
}

// TestRedirectURIExact: a redirect_uri is one of the application's,
// character for character (OAuth 2.0 Security BCP §4.1.3); anything else
// — another port, the default port written out, a trailing slash, other
// letter case, a query or fragment added — is the error page, never a
// redirect, since the address cannot be trusted with an error either.
// Another application's registered address is no better.
func TestRedirectURIExact(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{RedirectURIs: []string{"https://app.example/callback"}})
	n.app(store.Application{RedirectURIs: []string{"https://app2.example/cb"}})
	for _, uri := range []string{
		"https://app.example:8443/callback", "https://app.example:443/callback", "https://app.example/callback/",
		"https://app.example/Callback", "https://APP.example/callback", "HTTPS://app.example/callback",
		"https://app.example/callback?x=1", "https://app.example/callback#x", "http://app.example/callback",
		"https://app2.example/cb", "https://app.example/callback/../callback",
	} {
		t.Run(uri, func(t *testing.T) {
			resp := a.authorize(t, browser(t), url.Values{"redirect_uri": {uri}, "login_hint": {"alice@acme.test"}})
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %q, want the 400 page", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}
