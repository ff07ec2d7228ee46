package broker_test

import (
	"net/url"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestSSOSessionOfTheHintedUserOnly: a browser's session is reused only
// for the user the request names. An id_token_hint of another user, or a
// login_hint that is another address, goes back to the IdP, or with
// prompt=none gets login_required (OpenID Connect Core §3.1.2.1); a hint
// that names the session's own user (any case) is answered from it; an
// id_token_hint the broker did not sign is login_required.
func TestSSOSessionOfTheHintedUserOnly(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	n.tenant("Other", "other.test", alice("other.test"))
	a1 := n.app(store.Application{})
	a2 := n.app(store.Application{RedirectURIs: []string{"https://app2.example/cb"}})

	// Someone else's ID token: alice of the other tenant, in another browser.
	otherTok, other := a1.exchange(t, code(t, a1.authorize(t, browser(t), url.Values{"login_hint": {"alice@other.test"}})))
	otherHint, _ := otherTok.Extra("id_token").(string)

	b := browser(t)
	tok, c1 := a1.exchange(t, code(t, a1.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}})))
	ownHint, _ := tok.Extra("id_token").(string)
	if other.Sub == c1.Sub {
		t.Fatal("the two tenants' alices share a sub")
	}

	loginRequired := func(q url.Values) {
		t.Helper()
		q.Set("prompt", "none")
		loc, err := a2.authorize(t, b, q).Location()
		if err != nil || loc.Query().Get("error") != "login_required" || loc.Query().Get("state") != "st8" {
			t.Fatalf("%v: %v %v, want login_required", q, loc, err)
		}
	}
	loginRequired(url.Values{"id_token_hint": {otherHint}})
	loginRequired(url.Values{"login_hint": {"bob@acme.test"}})
	loginRequired(url.Values{"id_token_hint": {"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}})

	// Without prompt=none another user's hint goes to the IdP.
	begins := n.idp.Begins()
	a2.exchange(t, code(t, a2.authorize(t, b, url.Values{"login_hint": {"bob@acme.test"}})))
	if n.idp.Begins() != begins+1 {
		t.Fatalf("a login_hint for bob was answered from alice's session")
	}
	// The session's own user, by either hint, is answered from the session.
	begins = n.idp.Begins()
	for _, q := range []url.Values{
		{"prompt": {"none"}, "id_token_hint": {ownHint}},
		{"prompt": {"none"}, "login_hint": {"ALICE@acme.test"}},
		{"prompt": {"none"}, "login_hint": {"acme.test"}},
	} {
		_, c := a2.exchange(t, code(t, a2.authorize(t, b, q)))
		if n.idp.Begins() != begins || c.Sub != c1.Sub {
			t.Fatalf("%v: not answered from the session (begins %d→%d, sub %s)", q, begins, n.idp.Begins(), c.Sub)
		}
	}
}
