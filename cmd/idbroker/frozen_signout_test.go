package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/testdb"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestSignOutWhileDatabaseFrozen: the broker's PostgreSQL freezes (SIGSTOP:
// connections stay open, nothing answers) while Redis is up. A token
// revocation first keeps its order in the database for replay, on a
// context detached from the request (so that a client that leaves does
// not cut it short) and without any bound: it waited until the database
// continued, however long, past IDBROKER_REQUEST_TIMEOUT. Now the
// detached step gives up after a few seconds: the revocation still
// reaches Redis, and the request answers within a bounded time.
func TestSignOutWhileDatabaseFrozen(t *testing.T) {
	t.Parallel()
	pg := testdb.StartPostgres(t)
	rs := sessionstest.StartServer(t)
	b := startBroker(t, map[string]string{
		envDatabaseURL:     pg.URL(),
		envRedisURL:        rs.URL(),
		envMasterKey:       testMasterKey,
		envBootstrapAPIKey: e2eBootstrapKey,
		envRequestTimeout:  "2s",
	}, "--dev")
	c := newRPClient(t, b, "Frozen sign-out", nil)
	tok := c.login("alice@example.com")
	if !c.active(b, tok.AccessToken) {
		t.Fatal("the fresh token is not active")
	}

	pg.Freeze()
	thawed := false
	defer func() {
		if !thawed {
			pg.Thaw()
		}
	}()
	req, _ := http.NewRequest("POST", b.base+"/oauth/revoke", strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.secret))
	start := time.Now()
	resp, err := (&http.Client{Timeout: 40 * time.Second}).Do(req)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("token revocation with the database frozen: no answer after %s: %v", took.Round(time.Millisecond), err)
	}
	resp.Body.Close()
	if took > 15*time.Second {
		t.Errorf("token revocation with the database frozen answered %d after %s; want an answer within about the request timeout (2 s) plus the detached step's bound",
			resp.StatusCode, took.Round(time.Millisecond))
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("token revocation with the database frozen = %d, want 200 or 503", resp.StatusCode)
	}
	pg.Thaw()
	thawed = true
	if resp.StatusCode == http.StatusOK {
		for deadline := time.Now().Add(20 * time.Second); c.active(b, tok.AccessToken); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the revocation answered 200 while the database was frozen did not end the token")
			}
		}
	}
}
