package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestApplicationSecretRotation: two brokers on one PostgreSQL, an
// application whose client secret both nodes have cached. It is rotated
// on node 1 with an overlap: node 2 accepts the new secret at once (well
// within its application cache's 30 s TTL) and both nodes still accept
// the old one, for introspection and refresh. A second rotation without
// an overlap stops the old secrets on node 1 at once, and on node 2 as
// soon as node 1's announcement arrives. No node logs a secret.
func TestApplicationSecretRotation(t *testing.T) {
	t.Parallel()
	rs := sessionstest.StartServer(t)
	nodes := startNodes(t, productionEnv(t, rs.URL()), 2)
	n1, n2 := nodes[0], nodes[1]
	app := newRPClient(t, n1, "Rotating", nil)
	tok := app.login("alice@example.com")
	for _, n := range nodes { // both nodes cache the application
		if !app.active(n, tok.AccessToken) {
			t.Fatalf("%s: fresh token inactive", n.base)
		}
	}
	time.Sleep(1100 * time.Millisecond) // older than the cache's recheck interval

	rotate := func(body any) string {
		t.Helper()
		var out struct {
			ClientSecret string `json:"client_secret"`
		}
		if code := n1.do("POST", "/api/v1/applications/"+app.clientID+"/secret", e2eBootstrapKey, body, &out); code != http.StatusOK || out.ClientSecret == "" {
			t.Fatalf("rotate = %d %+v", code, out)
		}
		return out.ClientSecret
	}
	old := app.secret
	newer := rotate(map[string]any{"previous_secret_expires_in": 3600})
	with := func(secret string) *rpClient { c := *app; c.secret = secret; return &c }

	rotated := time.Now()
	if !with(newer).active(n2, tok.AccessToken) {
		t.Fatal("node 2 refused the new secret right after the rotation (it answered from its cache)")
	}
	t.Logf("node 2 accepted the new secret %v after the rotation", time.Since(rotated))
	for _, n := range nodes {
		for name, c := range map[string]*rpClient{"old": with(old), "new": with(newer)} {
			if !c.active(n, tok.AccessToken) {
				t.Errorf("%s: the %s secret is refused during the overlap", n.base, name)
			}
		}
	}
	var fresh tokens
	if code := with(old).refreshInto(n2, tok.RefreshToken, &fresh); code != http.StatusOK {
		t.Fatalf("refresh with the old secret during the overlap = %d", code)
	}
	if code := with(newer).refreshInto(n1, fresh.RefreshToken, &fresh); code != http.StatusOK {
		t.Fatalf("refresh with the new secret = %d", code)
	}

	// A second rotation without an overlap: on node 1 both older secrets
	// stop at once (node 2 within its cache TTL, as the docs say).
	newest := rotate(nil)
	for name, s := range map[string]string{"first": old, "second": newer} {
		if code, _ := with(s).post(n1, "/oauth/introspect", url.Values{"token": {fresh.AccessToken}}, nil); code != http.StatusUnauthorized {
			t.Errorf("node 1: the %s secret after a rotation without overlap = %d, want 401", name, code)
		}
	}
	if !with(newest).active(n1, fresh.AccessToken) {
		t.Error("node 1 refuses the newest secret")
	}
	// Node 2 read the application again less than a second ago: it asks
	// the database again once its copy is a second old.
	for start := time.Now(); !with(newest).active(n2, fresh.AccessToken); time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatal("node 2 still refuses the newest secret 2 s after the rotation")
		}
	}
	// Node 2 holds the application with the newest secret; a rotation
	// without overlap on node 1 (a leaked secret) stops it on node 2 at
	// once too: node 1 announces the change, and node 2 reads the
	// application again rather than answer from its copy for 30 s.
	if !with(newest).active(n2, fresh.AccessToken) {
		t.Fatal("node 2 refuses the newest secret")
	}
	latest := rotate(nil)
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		code, _ := with(newest).post(n2, "/oauth/introspect", url.Values{"token": {fresh.AccessToken}}, nil)
		if code == http.StatusUnauthorized {
			t.Logf("node 2 refused the rotated-away secret %v after the rotation", time.Since(start))
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("node 2 still accepts a secret rotated away without overlap 5 s later (%d): it answers from its cache", code)
		}
	}
	if !with(latest).active(n2, fresh.AccessToken) {
		t.Error("node 2 refuses the latest secret")
	}
	for _, n := range nodes {
		for _, s := range []string{old, newer, newest, latest} {
			if strings.Contains(n.output.String(), s) {
				t.Errorf("%s logged a client secret", n.base)
			}
		}
	}
}
