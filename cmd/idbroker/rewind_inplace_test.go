package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestRevocationSurvivesSameEpochRestore: Redis comes back holding a
// snapshot taken after the last epoch advance — the epoch the database
// names — so that only the count of applied revocations tells that an
// operator's revoke_sessions was lost. Two ways:
//
//   - INFO refused by the ACL from the start (the nodes serve, and know no
//     run_id) and Redis restarted from the snapshot: the broken connections
//     suspend every node at once, and the count decides to replay, so no
//     node ever answers for the revoked tokens.
//   - INFO allowed, and the snapshot's keys restored into the running
//     server (same run_id, no connection breaks): nothing tells a node
//     before its next check, up to a second later (see the operations
//     guide); from then on no node answers for them.
//
// A user nobody revoked is answered for again once the nodes trust Redis.
func TestRevocationSurvivesSameEpochRestore(t *testing.T) {
	for _, tc := range []struct {
		name  string
		blind bool
		grace time.Duration // how long after Redis came back an answer may be stale
	}{
		{name: "INFO refused, restarted from the snapshot", blind: true},
		{name: "restored in place", grace: 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := sessionstest.StartServer(t)
			if tc.blind {
				rs.DenyInfo()
			}
			env := productionEnv(t, rs.URL())
			nodes := startNodes(t, env, 2)
			a := nodes[0]
			c := newRPClient(t, a, "Restored", nil)
			alice := c.login("alice@example.com")
			bob := c.login("bob@example.com")
			for _, n := range nodes {
				if !c.active(n, alice.AccessToken) || !c.active(n, bob.AccessToken) {
					t.Fatalf("%s does not answer for fresh sessions", n.base)
				}
			}

			snap := rs.Snapshot()
			if code := a.do("POST", "/api/v1/users/"+alice.sub(t)+"/revoke_sessions", e2eBootstrapKey, nil, nil); code != http.StatusNoContent {
				t.Fatalf("revoke_sessions = %d", code)
			}
			// Every node reads the count every second; the restore comes
			// after they have.
			time.Sleep(2500 * time.Millisecond)
			if tc.blind {
				rs.RestartFrom(snap)
			} else {
				rs.RestoreInPlace(snap)
			}
			time.Sleep(tc.grace)

			for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				for _, n := range nodes {
					if c.active(n, alice.AccessToken) {
						t.Fatalf("%s introspects a revoked session's access token active after the restore", n.base)
					}
					if code := c.userinfo(n, alice.AccessToken); code == http.StatusOK {
						t.Fatalf("%s answers userinfo 200 for a revoked session after the restore", n.base)
					}
					var fresh tokens
					if code := c.refreshInto(n, alice.RefreshToken, &fresh); code == http.StatusOK {
						t.Fatalf("%s refreshed a revoked session's refresh token after the restore", n.base)
					}
				}
			}
			for _, n := range nodes {
				deadline := time.Now().Add(20 * time.Second)
				for !c.active(n, bob.AccessToken) {
					if time.Now().After(deadline) {
						t.Fatalf("20 s after the restore, %s still does not answer for a live session", n.base)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
}
