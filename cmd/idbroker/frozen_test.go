package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestRevocationWhileRedisFrozen: three nodes on one PostgreSQL and a
// Redis of the test's own. Every node has introspected a user's access
// token (and so caches its session) when Redis freezes (SIGSTOP: its
// connections stay open, nothing answers, no node's subscription notices
// for many seconds). An operator then revokes the user's sessions: the
// revocation is committed, not acknowledged. From then on no node may
// answer active:true for the token — 503 (the session store does not
// answer) or active:false — and once Redis continues, every node answers
// active:false.
func TestRevocationWhileRedisFrozen(t *testing.T) {
	t.Parallel()
	rs := sessionstest.StartServer(t)
	env := productionEnv(t, rs.URL())
	dbURL := env[envDatabaseURL]
	nodes := startNodes(t, env, 3)
	a := nodes[0]

	c := newRPClient(t, a, "Frozen", nil)
	tok := c.login("alice@example.com")
	for i, n := range nodes {
		if !c.active(n, tok.AccessToken) {
			t.Fatalf("node %d does not see the fresh session", i)
		}
	}

	rs.Pause()
	resumed := false
	defer func() {
		if !resumed {
			rs.Resume()
		}
	}()
	done := make(chan int, 1)
	go func() {
		done <- a.do("POST", "/api/v1/users/"+tok.sub(t)+"/revoke_sessions", e2eBootstrapKey, nil, nil)
	}()
	// Once the revocation has committed, the nodes get a moment to hear
	// of it from the database (they poll the queue every 250 ms); then,
	// for longer than the session cache's 5 s, none may vouch for the
	// session.
	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := db.QueryRow(context.Background(), "SELECT count(*) FROM revocations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("revoke_sessions committed no revocation in 10 s")
		}
	}
	time.Sleep(600 * time.Millisecond)
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); {
		for i, n := range nodes {
			if activeOrHung(t, c, n, tok.AccessToken) {
				t.Errorf("node %d: the token introspects active after its sessions were revoked (Redis frozen)", i)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	rs.Resume()
	resumed = true
	if code := <-done; code != http.StatusNoContent && code != http.StatusServiceUnavailable {
		t.Errorf("revoke_sessions with Redis frozen = %d; want 204 (queued) or 503", code)
	}
	deadline := time.Now().Add(20 * time.Second)
	for i, n := range nodes {
		for c.active(n, tok.AccessToken) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d: 20 s after Redis continued, the token is still active", i)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// activeOrHung introspects tok on n, as rpClient.active does, but counts
// no answer within 15 s (a request waiting on the frozen Redis) as not
// active.
func activeOrHung(t *testing.T, c *rpClient, n *node, tok string) bool {
	req, _ := http.NewRequest("POST", n.base+"/oauth/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.secret))
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Logf("introspection on %s: %v", n.base, err)
		return false
	}
	defer resp.Body.Close()
	var out struct{ Active bool }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode == http.StatusOK && out.Active
}
