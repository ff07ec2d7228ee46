package broker_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/store"
)

// TestRefreshMayNarrowTheScope: a refresh asking for part of the granted
// scope gets exactly that part (RFC 6749 §6), and the narrower token
// refreshes again. The narrowing is that refresh's only: the next refresh
// without scope gets the scope originally granted, as the RFC reads an
// omitted scope, and may ask for all of it again.
func TestRefreshMayNarrowTheScope(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		n.tenant("Acme", "acme.test", alice("acme.test"))
		a := n.app(store.Application{})
		tok, _ := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
		granted, _ := tok.Extra("scope").(string)
		if granted == "openid offline_access" {
			t.Fatalf("granted scope %q: the test needs more to narrow", granted)
		}
		refresh := func(rt, scope string) (int, map[string]any) {
			t.Helper()
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
			if scope != "" {
				form.Set("scope", scope)
			}
			st, _, body := oauthCall{"POST", broker.PathToken, "application/x-www-form-urlencoded", form.Encode(), a.ID, a.Secret, ""}.do(t, n.URL)
			return st, body
		}
		st, body := refresh(tok.RefreshToken, "openid offline_access")
		if st != 200 || body["scope"] != "openid offline_access" {
			t.Fatalf("narrowing refresh: %d %v, want 200 with scope \"openid offline_access\"", st, body)
		}
		rt, _ := body["refresh_token"].(string)
		next, err := a.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			t.Fatalf("refreshing the narrowed token: %v", err)
		}
		if got, _ := next.Extra("scope").(string); got != granted {
			t.Fatalf("refresh without scope after narrowing: scope %q, want the granted %q", got, granted)
		}
		st, body = refresh(next.RefreshToken, "openid offline_access")
		rt, _ = body["refresh_token"].(string)
		if st != 200 || rt == "" {
			t.Fatalf("narrowing again: %d %v", st, body)
		}
		if st, body := refresh(rt, granted); st != 200 || body["scope"] != granted {
			t.Fatalf("asking for the whole granted scope after narrowing: %d %v, want 200 with %q", st, body, granted)
		}
	})
}

// TestNarrowingAwayOfflineAccessStillRotates: a refresh whose scope leaves
// out offline_access still answers the next refresh token, which stands
// for the whole grant (RFC 6749 §6), since the one presented is spent.
// Relying-party libraries keep the token they hold when an answer has
// none (x/oauth2 does, below): answering none made their next refresh a
// reuse that ended the user's session in every application.
func TestNarrowingAwayOfflineAccessStillRotates(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		n.tenant("Acme", "acme.test", alice("acme.test"))
		a := n.app(store.Application{})
		tok, _ := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
		granted, _ := tok.Extra("scope").(string)
		narrow := oauthCall{"POST", broker.PathToken, "application/x-www-form-urlencoded",
			"grant_type=refresh_token&scope=openid+email&refresh_token=" + url.QueryEscape(tok.RefreshToken), a.ID, a.Secret, ""}
		st, _, body := narrow.do(t, n.URL)
		rt, _ := body["refresh_token"].(string)
		if st != 200 || body["scope"] != "openid email" || rt == "" || rt == tok.RefreshToken {
			t.Fatalf("refresh without offline_access: %d %v, want 200, scope \"openid email\" and a new refresh token", st, body)
		}
		at, _ := body["access_token"].(string)
		// x/oauth2 refreshes with the token the answer gave, or keeps its
		// own when there was none.
		next, err := a.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			t.Fatalf("refreshing with the token the narrowing refresh answered: %v", err)
		}
		if got, _ := next.Extra("scope").(string); got != granted || next.RefreshToken == "" {
			t.Fatalf("refresh after narrowing: scope %q, refresh token %q; want the granted %q and a refresh token", got, next.RefreshToken, granted)
		}
		if got := a.introspect(t, n, at); got["active"] != true {
			t.Fatalf("the narrowed access token is not active: %v", got)
		}
		// The token the narrowing refresh spent is spent: reuse, as ever.
		if st, _, body := narrow.do(t, n.URL); st != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("spent token presented again: %d %v, want 400 invalid_grant", st, body)
		}
		if got := a.introspect(t, n, next.AccessToken); got["active"] != false {
			t.Fatalf("after the reuse the session lives on: %v", got)
		}
	})
}

// TestRefreshReuseSendsBackchannelLogout: refresh-token reuse ends the
// session, and the applications that got tokens in it are told, like any
// other end of a session.
func TestRefreshReuseSendsBackchannelLogout(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		n.tenant("Acme", "acme.test", alice("acme.test"))
		rcv, got := bclReceiver(t)
		a := n.app(store.Application{BackchannelLogoutURI: rcv.URL})
		tok, c := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
		refresh := func(rt string) error {
			_, err := a.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
			return err
		}
		if err := refresh(tok.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if err := refresh(tok.RefreshToken); err == nil {
			t.Fatal("spent refresh token accepted")
		}
		select {
		case raw := <-got:
			verifyLogoutToken(t, n, raw, a.ID, c.SID)
		case <-time.After(30 * time.Second):
			t.Fatal("no back-channel logout 30 s after the reuse ended the session")
		}
	})
}
