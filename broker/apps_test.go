package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/store"
)

// TestApplicationChangesAtOnce: after the operator API changes or deletes
// an application and tells the broker (ForgetApplication), the node acts
// on the new state at once, not at the end of its cache TTL.
func TestApplicationChangesAtOnce(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{RedirectURIs: []string{"https://app.example/callback", "https://app.example/other"}})
	rs := n.app(store.Application{}) // a resource server introspecting a's tokens
	ctx := context.Background()
	tok := a.login(t)
	if in := rs.introspect(t, n, tok.AccessToken); in["active"] != true {
		t.Fatalf("fresh token: %v", in)
	}

	// A redirect URI taken away is refused on the next request.
	only := []string{"https://app.example/other"}
	if _, err := n.Store.UpdateApplication(ctx, a.ID, store.ApplicationUpdate{RedirectURIs: &only}); err != nil {
		t.Fatal(err)
	}
	n.P.ForgetApplication(a.ID)
	if resp := a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}}); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("removed redirect_uri: status %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A deleted application's tokens die with it, and its credentials open
	// nothing.
	if err := n.Store.DeleteApplication(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	n.P.ForgetApplication(a.ID)
	if in := rs.introspect(t, n, tok.AccessToken); in["active"] != false {
		t.Fatalf("token of a deleted application: %v", in)
	}
	_, err := a.Conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != "invalid_client" {
		t.Fatalf("refresh by a deleted application: %v", err)
	}
}

// TestApplicationLifetimes: an application's own token lifetimes are
// those its tokens get.
func TestApplicationLifetimes(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{AccessTokenTTL: 90 * time.Second, IDTokenTTL: 120 * time.Second, RefreshTokenTTL: time.Hour})
	oauthTok, _ := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
	life := func(raw string) int64 {
		jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var c struct{ Exp, Iat int64 }
		if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
			t.Fatal(err)
		}
		return c.Exp - c.Iat
	}
	idt, _ := oauthTok.Extra("id_token").(string)
	if at, id := life(oauthTok.AccessToken), life(idt); at != 90 || id != 120 {
		t.Fatalf("access token lives %d s, id token %d s", at, id)
	}
	in := a.introspect(t, n, oauthTok.RefreshToken)
	exp, _ := in["exp"].(float64)
	iat, _ := in["iat"].(float64)
	if in["active"] != true || int64(exp-iat) != 3600 {
		t.Fatalf("refresh token: %v", in)
	}
}
