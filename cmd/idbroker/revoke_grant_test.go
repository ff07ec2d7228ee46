package main

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestTokenRevocationEndsOneGrant: two brokers on one PostgreSQL and a
// Redis of the test's own, one browser signed in to applications A and B
// (B through the SSO cookie). B revokes its access token on node 1: node
// 2, which had the session cached, introspects B's token inactive at once
// (well within its cache's TTL: the revocation's announcement, not the
// TTL, did it) and refuses B's refresh, while A's token and refresh keep
// working there and A gets no back-channel logout. B signs in again
// through the SSO cookie and its new tokens work on both nodes. Then Redis
// is killed and B revokes again: the broker answers 200, and once Redis is
// back the revocation is applied (node 2 introspects B's new token
// inactive) and A's session is still alive.
func TestTokenRevocationEndsOneGrant(t *testing.T) {
	t.Parallel()
	rs := sessionstest.StartServer(t)
	env := productionEnv(t, rs.URL())
	nodes := startNodes(t, env, 2)
	n1, n2 := nodes[0], nodes[1]

	logouts := make(chan string, 4)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil {
			logouts <- r.PostForm.Get("logout_token")
		}
	}))
	defer rcv.Close()
	jar, _ := cookiejar.New(nil)
	newApp := func(name string) *rpClient {
		c := newRPClient(t, n1, name, map[string]any{"backchannel_logout_uri": rcv.URL})
		c.jar = jar
		return c
	}
	a, b := newApp("A"), newApp("B")
	tokA := a.login("alice@example.com")
	tokB := b.login("alice@example.com")
	if claim(t, tokA.IDToken, "sid") != claim(t, tokB.IDToken, "sid") {
		t.Fatal("B did not sign in through A's session")
	}
	for _, n := range nodes { // node 2 caches the session
		if !a.active(n, tokA.AccessToken) || !b.active(n, tokB.AccessToken) {
			t.Fatalf("%s does not see the fresh tokens", n.base)
		}
	}

	if code, body := b.post(n1, "/oauth/revoke", url.Values{"token": {tokB.AccessToken}}, nil); code != http.StatusOK {
		t.Fatalf("revoke on node 1 = %d %s", code, body)
	}
	revoked := time.Now()
	for b.active(n2, tokB.AccessToken) {
		if time.Since(revoked) > 2*time.Second { // the cache's TTL is 5 s
			t.Fatal("node 2 still introspects B's revoked access token active 2 s after the revocation")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("node 2 saw the revocation %v after node 1 answered", time.Since(revoked))
	if code := b.userinfo(n2, tokB.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("node 2 userinfo with B's revoked token = %d, want 401", code)
	}
	var fresh tokens
	if code := b.refreshInto(n2, tokB.RefreshToken, &fresh); code != http.StatusBadRequest {
		t.Errorf("node 2 refresh of B's revoked grant = %d, want 400 invalid_grant", code)
	}
	if !a.active(n2, tokA.AccessToken) || a.userinfo(n2, tokA.AccessToken) != http.StatusOK {
		t.Fatal("A's access token died with B's grant")
	}
	if code := a.refreshInto(n2, tokA.RefreshToken, &fresh); code != http.StatusOK || !a.active(n1, fresh.AccessToken) {
		t.Fatalf("A's refresh on node 2 = %d, want a working one", code)
	}
	tokA = fresh

	// B signs in again with the SSO cookie, and its new tokens work.
	again := b.login("alice@example.com")
	for _, n := range nodes {
		if !b.active(n, again.AccessToken) {
			t.Fatalf("%s: B's tokens after signing in again are inactive", n.base)
		}
	}
	if code := b.refreshInto(n2, again.RefreshToken, &fresh); code != http.StatusOK {
		t.Fatalf("B's refresh after signing in again = %d", code)
	}
	again = fresh

	// Redis down at the revocation: answered 200, applied once it is back.
	rs.Kill()
	if code, body := b.post(n1, "/oauth/revoke", url.Values{"token": {again.AccessToken}}, nil); code != http.StatusOK {
		t.Fatalf("revoke with Redis down = %d %s, want 200 (queued)", code, body)
	}
	rs.Start()
	deadline := time.Now().Add(20 * time.Second)
	for b.active(n2, again.AccessToken) || !a.active(n2, tokA.AccessToken) {
		if time.Now().After(deadline) {
			t.Fatalf("20 s after Redis returned: B's token active %v, A's active %v; want false, true",
				b.active(n2, again.AccessToken), a.active(n2, tokA.AccessToken))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := b.refreshInto(n2, again.RefreshToken, &fresh); code != http.StatusBadRequest {
		t.Errorf("refresh of the grant revoked while Redis was down = %d, want 400", code)
	}
	select {
	case <-logouts:
		t.Error("a back-channel logout was sent: revoking a token ends no session")
	case <-time.After(2 * time.Second):
	}
}
