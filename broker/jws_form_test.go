package broker_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/store"
)

// TestTokensOnlyInCompactForm: the broker's tokens are compact JWS, and
// only that form is accepted back. The JSON serialization of the same
// signature verifies just as well, but it takes an unprotected header of
// any size and content, so one access token would make any number of
// distinct strings: each, verified once, was kept in the verified-token
// cache under its own text, up to 100,000 of them, as large as a request
// carries (a user with one token filled a node's memory through
// UserInfo or introspection). Refused, it is never verified nor kept;
// the compact token goes on working.
func TestTokensOnlyInCompactForm(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	b := browser(t)
	tok, _ := a.exchange(t, code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}})))
	idt, _ := tok.Extra("id_token").(string)
	jsonForm := func(token string, extra map[string]any) string {
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("not a compact JWS: %q", token)
		}
		v := map[string]any{"protected": parts[0], "payload": parts[1], "signature": parts[2]}
		if extra != nil {
			v["header"] = extra
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	userinfo := func(token string) int {
		req, _ := http.NewRequest("GET", n.URL+broker.PathUserinfo, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := userinfo(tok.AccessToken); st != http.StatusOK {
		t.Fatalf("userinfo with the compact token: %d", st)
	}
	// The id_token_hint of an authorization request is read by the same
	// verifier: the compact one names the browser's user, and is answered
	// from its session.
	silent := func(hint string) string {
		resp := a.authorize(t, b, url.Values{"prompt": {"none"}, "id_token_hint": {hint}})
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("prompt=none: %d, no redirect", resp.StatusCode)
		}
		return loc.Query().Get("error")
	}
	if e := silent(idt); e != "" {
		t.Fatalf("prompt=none with the compact id_token_hint: %s", e)
	}
	// The compact form itself, written otherwise: line breaks, which
	// base64 decoding skips, inside a form-encoded token; the unused low
	// bits of the signature's last character set.
	for name, variant := range map[string]string{
		"a line break in the payload": strings.Replace(tok.AccessToken, ".", ".\n", 1),
		"line breaks everywhere":      strings.Join(strings.SplitAfter(tok.AccessToken, ""), "\r\n"),
		"unused bits of the signature": func() string {
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			last := tok.AccessToken[len(tok.AccessToken)-1]
			return tok.AccessToken[:len(tok.AccessToken)-1] + string(alphabet[strings.IndexByte(alphabet, last)^1])
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			if got := a.introspect(t, n, variant); got["active"] != false {
				t.Errorf("introspection: %v, want inactive", got)
			}
			resp, err := http.PostForm(n.URL+broker.PathUserinfo, url.Values{"access_token": {variant}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("userinfo: %d, want 401", resp.StatusCode)
			}
		})
	}
	for name, extra := range map[string]map[string]any{
		"flattened JSON":                   nil,
		"flattened JSON, a padding header": {"pad": strings.Repeat("x", 4096)},
		"flattened JSON, another padding":  {"pad": strings.Repeat("y", 4096)},
	} {
		t.Run(name, func(t *testing.T) {
			variant := jsonForm(tok.AccessToken, extra)
			if st := userinfo(variant); st != http.StatusUnauthorized {
				t.Errorf("userinfo: %d, want 401", st)
			}
			if got := a.introspect(t, n, variant); got["active"] != false {
				t.Errorf("introspection: %v, want inactive", got)
			}
			if e := silent(jsonForm(idt, extra)); e != "login_required" {
				t.Errorf("id_token_hint in JSON form: %q, want login_required", e)
			}
		})
	}
	if st := userinfo(tok.AccessToken); st != http.StatusOK {
		t.Fatalf("userinfo with the compact token, after: %d", st)
	}
}
