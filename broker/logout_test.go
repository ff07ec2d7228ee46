package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// bclReceiver is an application's back-channel logout endpoint.
func bclReceiver(t *testing.T) (*httptest.Server, chan string) {
	got := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.PostFormValue("logout_token")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// verifyLogoutToken checks a logout token against the broker's JWKS, as
// an application would.
func verifyLogoutToken(t *testing.T, n *node, raw, clientID, sid string) {
	t.Helper()
	resp, err := http.Get(n.URL + broker.PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Header
	if h.ExtraHeaders["typ"] != "logout+jwt" {
		t.Fatalf("typ %v", h.ExtraHeaders["typ"])
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %s not in JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(payload, &c)
	events, _ := c["events"].(map[string]any)
	if c["iss"] != n.URL || c["aud"] != clientID || c["sid"] != sid || c["sub"] == nil || c["jti"] == nil || c["iat"] == nil ||
		events["http://schemas.openid.net/event/backchannel-logout"] == nil || c["nonce"] != nil {
		t.Fatalf("logout token claims %v", c)
	}
}

func TestBackchannelLogoutOnEndSession(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	rcv, got := bclReceiver(t)
	a := n.app(store.Application{BackchannelLogoutURI: rcv.URL, PostLogoutRedirectURIs: []string{"https://app.example/bye"}})
	b := browser(t)
	tok, c := a.exchange(t, code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}})))
	idt, _ := tok.Extra("id_token").(string)

	// An unregistered post_logout_redirect_uri is refused on a page.
	resp, err := b.Get(n.URL + broker.PathEndSession + "?" + url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || a.introspect(t, n, tok.AccessToken)["active"] != true {
		t.Fatalf("bad post_logout_redirect_uri: status %d", resp.StatusCode)
	}
	resp, err = b.Get(n.URL + broker.PathEndSession + "?" + url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"s"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); loc == nil || loc.String() != "https://app.example/bye?state=s" {
		t.Fatalf("end_session redirect %v (status %d)", loc, resp.StatusCode)
	}
	if a.introspect(t, n, tok.AccessToken)["active"] != false {
		t.Fatal("token active after logout")
	}
	select {
	case raw := <-got:
		verifyLogoutToken(t, n, raw, a.ID, c.SID)
	case <-time.After(5 * time.Second):
		t.Fatal("no back-channel logout")
	}
	// The SSO cookie is gone: prompt=none needs a login again.
	loc, _ := a.authorize(t, b, url.Values{"prompt": {"none"}}).Location()
	if loc == nil || loc.Query().Get("error") != "login_required" {
		t.Fatalf("after logout: %v", loc)
	}
}

func TestKeyRotationOverlap(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	old, _ := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
	// Warm the broker's own key cache before the rotation: it must notice
	// the new key (checked with the fresh token below).
	if a.introspect(t, n, old.AccessToken)["active"] != true {
		t.Fatal("fresh access token inactive")
	}
	if _, err := n.Keys.Rotate(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	// Old tokens still verify (id_token with go-oidc, access token by
	// introspection) and new ones are signed by the new key.
	a.verifyID(t, old, "n0nce")
	if a.introspect(t, n, old.AccessToken)["active"] != true {
		t.Fatal("access token of the overlapping key inactive")
	}
	a2 := n.app(store.Application{}) // a fresh go-oidc key cache
	fresh, _ := a2.exchange(t, code(t, a2.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
	if a2.introspect(t, n, fresh.AccessToken)["active"] != true {
		t.Fatal("access token of the new key inactive: the broker's key cache is stale")
	}
	prov, err := oidc.NewProvider(context.Background(), n.URL) // a fresh JWKS cache
	if err != nil {
		t.Fatal(err)
	}
	a.Verifier = prov.Verifier(&oidc.Config{ClientID: a.ID})
	a.verifyID(t, old, "n0nce")
	kid := func(tok string) string {
		j, _ := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
		return j.Signatures[0].Header.KeyID
	}
	if kid(old.AccessToken) == kid(fresh.AccessToken) {
		t.Fatal("new tokens signed by the rotated-out key")
	}
}

// TestTwoNodes: two brokers on one Postgres and one Redis. A session
// revoked on one is inactive on the other by message (before a cached entry expires), and exactly one
// back-channel logout is sent.
func TestTwoNodes(t *testing.T) {
	url1 := storetest.PostgresURL(t)
	cipher := storetest.NewCipher(t)
	st1 := storetest.Open(t, url1, cipher)
	if err := st1.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	st2 := storetest.Open(t, url1, cipher)
	rdb := sessionstest.Redis(t)
	prefix := sessionstest.Prefix(t, rdb)
	r1 := sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: prefix})
	r2 := sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: prefix})
	n1 := newNode(t, st1, r1, r1)
	n2 := newNodeIssuer(t, st2, r2, r2, n1.URL)
	tn := n1.tenant("Acme", "acme.test", alice("acme.test"))
	n2.idp.profiles[tn.ConnID] = alice("acme.test")
	rcv, got := bclReceiver(t)
	a := n1.app(store.Application{BackchannelLogoutURI: rcv.URL})

	tok, c := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}})))
	if a.introspect(t, n2, tok.AccessToken)["active"] != true {
		t.Fatal("node 2 does not see node 1's session")
	}
	// Node 2 refreshes node 1's token.
	if _, err := (&oauth2.Config{ClientID: a.ID, ClientSecret: a.Secret, Endpoint: oauth2.Endpoint{TokenURL: n2.URL + broker.PathToken}}).
		TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("refresh on node 2: %v", err)
	}
	// Deprovisioning's path: an order recorded with the change, applied
	// by node 1's revoker.
	rv, err := st1.RecordRevocation(context.Background(), store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: c.Sub})
	if err != nil {
		t.Fatal(err)
	}
	revoker, err := events.NewRevoker(events.RevokerConfig{Store: st1, Sessions: n1.Sess})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := revoker.Apply(context.Background(), rv); err != nil {
		t.Fatal(err)
	}
	// Generous for a loaded machine, yet under the session cache's TTL
	// (sessions.DefaultCacheTTL in the harness), so that the revocation
	// message, not the entry's expiry, is what ends the wait.
	deadline := time.Now().Add(sessions.DefaultCacheTTL - time.Second)
	for a.introspect(t, n2, tok.AccessToken)["active"] != false {
		if time.Now().After(deadline) {
			t.Fatal("node 2 still says active after the revocation, for most of the cache's TTL")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case raw := <-got:
		verifyLogoutToken(t, n1, raw, a.ID, c.SID)
	case <-time.After(5 * time.Second):
		t.Fatal("no back-channel logout")
	}
	select {
	case <-got:
		t.Fatal("back-channel logout sent twice")
	case <-time.After(300 * time.Millisecond):
	}
}
