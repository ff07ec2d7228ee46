package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestRevocationSurvivesRedisRewind: two brokers on one PostgreSQL and a
// Redis of the test's own that persists to disk. Redis is made to forget
// revocations the way production Redis does — restarted from a snapshot
// taken before a user was deprovisioned over SCIM (then before an
// operator's revoke_sessions), restarted with all its data under a new
// run_id (a failover), restarted empty — and through all of it neither
// node may answer introspection active, userinfo 200 or a refresh 200 for
// a revoked user's tokens. A user nobody revoked is active again once the
// nodes trust Redis (a rewind signs no one out who was not revoked, except
// by emptying Redis, which signs everyone out).
func TestRevocationSurvivesRedisRewind(t *testing.T) {
	t.Parallel()
	rs := sessionstest.StartServer(t)
	env := productionEnv(t, rs.URL())
	nodes := startNodes(t, env, 2)
	a := nodes[0]

	c := newRPClient(t, a, "Rewound", nil)
	var tenants struct {
		Data []tenantJSON `json:"data"`
	}
	if code := a.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) != 1 {
		t.Fatalf("GET /tenants = %d, %+v; want the dev tenant", code, tenants)
	}
	var dir struct {
		SCIMBaseURL string `json:"scim_base_url"`
		BearerToken string `json:"bearer_token"`
	}
	if code := a.do("POST", "/api/v1/tenants/"+tenants.Data[0].ID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	scim := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, dir.SCIMBaseURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+dir.BearerToken)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}

	alice := c.login("alice@example.com")
	if code, body := scim("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@example.com",`+
		`"active":true,"emails":[{"value":"alice@example.com","primary":true}]}`); code != http.StatusCreated {
		t.Fatalf("SCIM create = %d %s", code, body)
	}
	bob := c.login("bob@example.com")
	for _, n := range nodes {
		for _, tk := range []tokens{alice, bob} {
			if !c.active(n, tk.AccessToken) {
				t.Fatalf("%s does not see a fresh session", n.base)
			}
		}
	}

	// neverActive watches the revoked tokens on every node for a while
	// after Redis came back: not one answer may say they are alive.
	neverActive := func(what string, revoked ...tokens) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			for _, n := range nodes {
				for _, tk := range revoked {
					if c.active(n, tk.AccessToken) {
						t.Fatalf("%s: %s introspects a revoked session's access token active", what, n.base)
					}
					if code := c.userinfo(n, tk.AccessToken); code == http.StatusOK {
						t.Fatalf("%s: %s answers userinfo 200 for a revoked session", what, n.base)
					}
					var fresh tokens
					if code := c.refreshInto(n, tk.RefreshToken, &fresh); code == http.StatusOK {
						t.Fatalf("%s: %s refreshed a revoked session's refresh token", what, n.base)
					}
				}
			}
		}
	}
	// activeAgain waits until every node trusts Redis again and answers
	// for tk's live session.
	activeAgain := func(what string, tk tokens) {
		t.Helper()
		for _, n := range nodes {
			deadline := time.Now().Add(20 * time.Second)
			for !c.active(n, tk.AccessToken) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: 20 s after Redis returned, %s still does not answer for a live session", what, n.base)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}

	// 1. Restarted from a snapshot taken before alice was deprovisioned.
	snap := rs.Snapshot()
	sub := alice.sub(t)
	if code, body := scim("DELETE", "/Users/"+sub, ""); code != http.StatusNoContent {
		t.Fatalf("SCIM DELETE = %d %s", code, body)
	}
	for _, n := range nodes {
		if c.active(n, alice.AccessToken) {
			t.Fatalf("%s: alice active right after her deprovisioning", n.base)
		}
	}
	rs.RestartFrom(snap)
	neverActive("restarted from an older snapshot", alice)
	activeAgain("restarted from an older snapshot", bob)

	// 2. Alice signs in again (a new user: the deleted one is gone) and an
	// operator revokes her sessions; Redis restarts from a snapshot taken
	// before that.
	alice2 := c.login("alice@example.com")
	if alice2.sub(t) == sub {
		t.Fatalf("the deprovisioned user signed in as herself again")
	}
	snap = rs.Snapshot()
	if code := a.do("POST", "/api/v1/users/"+alice2.sub(t)+"/revoke_sessions", e2eBootstrapKey, nil, nil); code != http.StatusNoContent {
		t.Fatalf("revoke_sessions = %d", code)
	}
	rs.RestartFrom(snap)
	neverActive("restarted from a snapshot older than revoke_sessions", alice, alice2)
	activeAgain("restarted from a snapshot older than revoke_sessions", bob)

	// 2b. Bob signs in a second time and his application revokes that
	// session's access token (which ends its grant in the session, not
	// queued: Redis answered); Redis restarts from a snapshot taken
	// before, where the grant was alive: the replay revokes it again.
	bob2 := c.login("bob@example.com")
	snap = rs.Snapshot()
	if code, body := c.post(a, "/oauth/revoke", url.Values{"token": {bob2.AccessToken}}, nil); code != http.StatusOK {
		t.Fatalf("token revocation = %d %s", code, body)
	}
	rs.RestartFrom(snap)
	neverActive("restarted from a snapshot older than a token revocation", alice, alice2, bob2)
	activeAgain("restarted from a snapshot older than a token revocation", bob)

	// 3. Failed over: every write there, but another server (run_id).
	rs.Kill()
	rs.Start()
	neverActive("failed over", alice, alice2, bob2)
	activeAgain("failed over", bob)

	// 4. Restarted empty: everyone is signed out, and signs in again. The
	// revoked sessions are never active; bob's, live until the restart
	// and never revoked, ends as each node notices that its store came
	// back empty (its copy of the session may vouch until then).
	rs.RestartEmpty()
	neverActive("restarted empty", alice, alice2, bob2)
	for _, n := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for c.active(n, bob.AccessToken) {
			if time.Now().After(deadline) {
				t.Fatalf("restarted empty: 10 s later, %s still answers for a session the store lost", n.base)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	again := c.login("bob@example.com")
	activeAgain("restarted empty", again)
}
