package broker_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
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

// TestLogoutWithoutHintAsksTheUser: a sign-out that names no session
// (no id_token_hint) may come from any site that links to the endpoint,
// and a top-level GET carries the SameSite=Lax SSO cookie. RP-Initiated
// Logout 1.0 §2 has the OP ask the user then: the broker shows a page
// and ends nothing, and a POST without the page's proof (a forged form)
// ends nothing either. The user's click on the page ends the session,
// clears the cookie, sends the back-channel logout and returns to the
// application's registered URI with its state.
func TestLogoutWithoutHintAsksTheUser(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	rcv, got := bclReceiver(t)
	a := n.app(store.Application{BackchannelLogoutURI: rcv.URL, PostLogoutRedirectURIs: []string{"https://app.example/bye"}})
	b := browser(t)
	tok, c := a.exchange(t, code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}})))
	stillSignedIn := func(when string) {
		t.Helper()
		if a.introspect(t, n, tok.AccessToken)["active"] != true {
			t.Fatalf("%s: the session ended without the user's say", when)
		}
		if loc, _ := a.authorize(t, b, url.Values{"prompt": {"none"}}).Location(); loc == nil || loc.Query().Get("code") == "" {
			t.Fatalf("%s: the SSO cookie is gone: %v", when, loc)
		}
	}
	params := url.Values{"client_id": {a.ID}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"s"}}

	resp, err := b.Get(n.URL + broker.PathEndSession + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !strings.Contains(string(page), "alice@acme.test") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("sign-out without id_token_hint: %d %v\n%s; want a page asking alice", resp.StatusCode, resp.Header, page)
	}
	stillSignedIn("after the GET")

	form := pageForm(page)
	if form.Get("confirm") == "" || form.Get("state") != "s" || form.Get("post_logout_redirect_uri") != "https://app.example/bye" {
		t.Fatalf("the page's form carries %v", form)
	}
	for name, forged := range map[string]url.Values{
		"no proof":    params,
		"wrong proof": {"client_id": {a.ID}, "post_logout_redirect_uri": {"https://app.example/bye"}, "confirm": {strings.Repeat("0", 64)}},
	} {
		resp, err := b.PostForm(n.URL+broker.PathEndSession, forged)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
			t.Fatalf("POST with %s: %d %v", name, resp.StatusCode, resp.Header.Get("Location"))
		}
		stillSignedIn("after a POST with " + name)
	}

	confirmSignOut(t, n, b, form, "https://app.example/bye?state=s")
	if a.introspect(t, n, tok.AccessToken)["active"] != false {
		t.Fatal("token active after the confirmed sign-out")
	}
	select {
	case raw := <-got:
		verifyLogoutToken(t, n, raw, a.ID, c.SID)
	case <-time.After(5 * time.Second):
		t.Fatal("no back-channel logout")
	}
	if loc, _ := a.authorize(t, b, url.Values{"prompt": {"none"}}).Location(); loc == nil || loc.Query().Get("error") != "login_required" {
		t.Fatalf("after the sign-out: %v", loc)
	}
}

// confirmLogout signs browser b out with the SSO cookie alone, as its
// user does: the page, then its form.
// pageForm reads the hidden fields of the sign-out question's form.
func pageForm(page []byte) url.Values {
	form := url.Values{}
	for _, m := range regexp.MustCompile(`name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	return form
}

// confirmSignOut posts the sign-out question's form, as the user's click
// does, and wants the redirect to the application's page.
func confirmSignOut(t *testing.T, n *node, b *http.Client, form url.Values, want string) {
	t.Helper()
	resp, err := b.PostForm(n.URL+broker.PathEndSession, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); loc == nil || loc.String() != want {
		t.Fatalf("the confirmed sign-out: %d %v; want a redirect to %s", resp.StatusCode, loc, want)
	}
}

func confirmLogout(t *testing.T, n *node, b *http.Client) *http.Response {
	t.Helper()
	resp, err := b.Get(n.URL + broker.PathEndSession)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="confirm" value="([^"]+)"`).FindStringSubmatch(string(page))
	if m == nil {
		return resp
	}
	resp, err = b.PostForm(n.URL+broker.PathEndSession, url.Values{"confirm": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestLogoutHintOfAnotherSession: the application signs out the session
// its id_token names, while the browser is signed in with a later one
// (prompt=login made a new session). The named session ends; the
// browser's own is not silently dropped — its cookie cleared and the
// session left alive, its applications signed in — nor ended unasked:
// the user is asked, and their answer ends it.
func TestLogoutHintOfAnotherSession(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{PostLogoutRedirectURIs: []string{"https://app.example/bye"}})
	b := browser(t)
	first, _ := a.exchange(t, code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}})))
	later, _ := a.exchange(t, code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}, "prompt": {"login"}})))
	idt, _ := first.Extra("id_token").(string)

	resp, err := b.Get(n.URL + broker.PathEndSession + "?" + url.Values{"id_token_hint": {idt},
		"post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"s"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if a.introspect(t, n, first.AccessToken)["active"] != false {
		t.Fatal("the session the id_token_hint names is still active")
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `name="confirm"`) ||
		!strings.Contains(string(page), `href="https://app.example/bye?state=s"`) {
		t.Fatalf("sign-out of another session than the browser's: %d %v\n%s; want the question, with a way back to the application",
			resp.StatusCode, resp.Header.Get("Location"), page)
	}
	if a.introspect(t, n, later.AccessToken)["active"] != true {
		t.Fatal("the browser's own session ended unasked")
	}
	if loc, _ := a.authorize(t, b, url.Values{"prompt": {"none"}}).Location(); loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("the browser's SSO cookie was dropped with its session alive: %v", loc)
	}

	form := pageForm(page)
	confirmSignOut(t, n, b, form, "https://app.example/bye?state=s")
	if a.introspect(t, n, later.AccessToken)["active"] != false {
		t.Fatal("the browser's session is active after the user said sign out")
	}
}

// TestLogoutQuestionWithoutRedirect: asked without a
// post_logout_redirect_uri, the question offers no "Stay signed in" link
// to the broker's "you are signed out" page.
func TestLogoutQuestionWithoutRedirect(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	b := browser(t)
	code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}}))
	resp, err := b.Get(n.URL + broker.PathEndSession)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `name="confirm"`) || strings.Contains(string(page), "Stay signed in") ||
		strings.Contains(string(page), broker.PathLoggedOut) {
		t.Fatalf("the question without a redirect:\n%s", page)
	}
}

// TestLogoutEndsTheSessionsASignInAgainReplaced: signing in again in the
// same browser as the same user (prompt=login) opens a new session, and
// the SSO cookie forgets the one application A signed in with. Signing
// out of the new one, from application B, ends the old one too and tells
// A, as if there had been one session: the user signed out of the
// broker. Another user's session that the browser held is not ended:
// that user did not sign out.
func TestLogoutEndsTheSessionsASignInAgainReplaced(t *testing.T) {
	onBackends(t, func(t *testing.T, n *node) {
		tn := n.tenant("Acme", "acme.test", alice("acme.test"))
		rcv, got := bclReceiver(t)
		a := n.app(store.Application{BackchannelLogoutURI: rcv.URL})
		b := n.app(store.Application{PostLogoutRedirectURIs: []string{"https://app.example/bye"}})
		br := browser(t)
		first, c1 := a.exchange(t, code(t, a.authorize(t, br, url.Values{"login_hint": {"alice@acme.test"}})))
		again := url.Values{"login_hint": {"alice@acme.test"}, "prompt": {"login"}}
		second, c2 := b.exchange(t, code(t, b.authorize(t, br, again)))
		third, c3 := b.exchange(t, code(t, b.authorize(t, br, again)))
		if c1.SID == c2.SID || c2.SID == c3.SID {
			t.Fatalf("sessions %s, %s, %s: the test needs prompt=login to open new ones", c1.SID, c2.SID, c3.SID)
		}
		if a.introspect(t, n, first.AccessToken)["active"] != true {
			t.Fatal("A's session ended at the sign-in again")
		}
		idt, _ := third.Extra("id_token").(string)
		resp, err := br.Get(n.URL + broker.PathEndSession + "?" + url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://app.example/bye"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc, _ := resp.Location(); loc == nil || loc.String() != "https://app.example/bye" {
			t.Fatalf("end_session: %d %v", resp.StatusCode, loc)
		}
		for _, tok := range []*oauth2.Token{first, second, third} {
			if got := a.introspect(t, n, tok.AccessToken); got["active"] != false {
				t.Fatalf("a token of session %v lives after the user signed out: %v", got["sid"], got)
			}
		}
		select {
		case raw := <-got:
			verifyLogoutToken(t, n, raw, a.ID, c1.SID)
		case <-time.After(10 * time.Second):
			t.Fatal("no back-channel logout for A, signed in with the session the sign-in again replaced")
		}

		// Alice, then Bob, in one browser: Bob signing out leaves Alice's
		// session as it is.
		br = browser(t)
		alices, _ := a.exchange(t, code(t, a.authorize(t, br, url.Values{"login_hint": {"alice@acme.test"}})))
		bob := alice("acme.test")
		bob.IdPSubject, bob.Email, bob.GivenName = "idp-bob", "bob@acme.test", "Bob"
		n.idp.mu.Lock()
		n.idp.profiles[tn.ConnID] = bob
		n.idp.mu.Unlock()
		bobs, _ := b.exchange(t, code(t, b.authorize(t, br, url.Values{"login_hint": {"bob@acme.test"}})))
		idt, _ = bobs.Extra("id_token").(string)
		resp, err = br.Get(n.URL + broker.PathEndSession + "?" + url.Values{"id_token_hint": {idt}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if b.introspect(t, n, bobs.AccessToken)["active"] != false || a.introspect(t, n, alices.AccessToken)["active"] != true {
			t.Fatal("Bob's sign-out: want Bob's session ended and Alice's alive")
		}
	})
}
