package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/idbroker/internal/testdb"
)

// TestDatabaseFrozen freezes the broker's PostgreSQL (SIGSTOP on the
// postmaster and its backends: connections stay open, nothing answers,
// as with a paused VM or a blackholed network). Requests that need it
// answered nothing until it continued; now each answers 503 with
// Retry-After in its own format once IDBROKER_REQUEST_TIMEOUT has passed,
// the SCIM write it refused is not there once the database continues, and
// every surface works again without a restart.
func TestDatabaseFrozen(t *testing.T) {
	t.Parallel()
	pg := testdb.StartPostgres(t)
	b, tenant, dir := startWithDirectory(t, map[string]string{
		envDatabaseURL:    pg.URL(),
		envMasterKey:      testMasterKey,
		envRequestTimeout: "2s",
	})
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code := b.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{
		"name": "Frozen", "redirect_uris": []string{"https://app.example/cb"},
	}, &app); code != http.StatusCreated {
		t.Fatalf("POST /applications = %d", code)
	}
	user := func(name string) []byte {
		return []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + name + `@acme.example"}`)
	}
	tokenForm := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}.Encode()

	pg.Freeze()
	thawed := false
	defer func() {
		if !thawed {
			pg.Thaw()
		}
	}()
	probes := []struct {
		what, method, url, auth, ctype, body string
		ok                                   func(answer) bool
	}{
		{"SCIM create", "POST", dir.SCIMBaseURL + "/Users", "Bearer " + dir.BearerToken, "application/scim+json", string(user("frozen")),
			func(a answer) bool { return isSCIMError(a, "503") }},
		{"SCIM list", "GET", dir.SCIMBaseURL + "/Users", "Bearer " + dir.BearerToken, "", "",
			func(a answer) bool { return isSCIMError(a, "503") }},
		{"operator API", "GET", b.base + "/api/v1/tenants/" + tenant.ID, "Bearer " + e2eBootstrapKey, "", "",
			func(a answer) bool { return isAPIError(a, "unavailable") }},
		{"token endpoint", "POST", b.base + "/oauth/token", "Basic " + basicCredentials(app.ClientID, app.ClientSecret), "application/x-www-form-urlencoded", tokenForm,
			func(a answer) bool { return isOAuthError(a, "temporarily_unavailable") }},
		{"SP metadata", "GET", b.base + "/sso/saml/conn_01M96ZZZZZZZZZZZZZZZZZZZZZ/metadata", "", "", "",
			func(a answer) bool { return strings.HasPrefix(a.header.Get("Content-Type"), "text/html") }},
	}
	var wg sync.WaitGroup
	for _, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			a := call(t, b, p.method, p.url, p.auth, p.ctype, []byte(p.body))
			took := time.Since(start)
			if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !p.ok(a) || took > 6*time.Second {
				t.Errorf("%s with the database frozen: %d Retry-After %q after %s: %.300s; want 503 with Retry-After in its format within about 2 s",
					p.what, a.status, a.header.Get("Retry-After"), took.Round(time.Millisecond), a.raw)
			}
		}()
	}
	wg.Wait()
	pg.Thaw()
	thawed = true

	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		a := dir.pushUser(t, b, string(user("after")))
		if a.status == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SCIM create after the database continued: %d %s", a.status, a.raw)
		}
	}
	db, err := pgx.Connect(context.Background(), pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var n int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM users WHERE user_name = 'frozen@acme.example'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the SCIM create answered 503 while the database was frozen was written (%d rows)", n)
	}
	if strings.Contains(b.output.String(), "status=500") {
		t.Errorf("a request answered 500:\n%s", b.output)
	}
}

// basicCredentials is the Authorization value of client_secret_basic.
func basicCredentials(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

// TestDatabaseStatementTimeout: with a statement_timeout on the broker's
// database (as operators set one) and the tables locked (a migration, a
// long maintenance statement), the statements that time out answer 503
// with Retry-After in each surface's format. They answered 500.
func TestDatabaseStatementTimeout(t *testing.T) {
	t.Parallel()
	pg := testdb.StartPostgres(t)
	b, tenant, dir := startWithDirectory(t, map[string]string{
		envDatabaseURL: pg.URL(),
		envMasterKey:   testMasterKey,
	})
	ctx := context.Background()
	db, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	// The setting reaches the broker's connections when they reconnect.
	for _, sql := range []string{
		"ALTER DATABASE test SET statement_timeout = '300ms'",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'test' AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	// The pool finds its dropped connections out (a connection idle for
	// a second is checked before use) and opens new ones.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(1100 * time.Millisecond) {
		if a := call(t, b, "GET", dir.SCIMBaseURL+"/Users", "Bearer "+dir.BearerToken, "", nil); a.status == http.StatusOK {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("SCIM list after the connections were dropped: %d %.300s", a.status, a.raw)
		}
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0; LOCK TABLE tenants, users, directories, api_keys IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		what, url, auth string
		ok              func(answer) bool
	}{
		{"SCIM list", dir.SCIMBaseURL + "/Users", "Bearer " + dir.BearerToken, func(a answer) bool { return isSCIMError(a, "503") }},
		{"operator API", b.base + "/api/v1/tenants/" + tenant.ID, "Bearer " + e2eBootstrapKey, func(a answer) bool { return isAPIError(a, "unavailable") }},
	} {
		a := call(t, b, "GET", p.url, p.auth, "", nil)
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !p.ok(a) {
			t.Errorf("%s with its statements timing out: %d Retry-After %q %.300s; want 503 with Retry-After in its format",
				p.what, a.status, a.header.Get("Retry-After"), a.raw)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if a := call(t, b, "GET", dir.SCIMBaseURL+"/Users", "Bearer "+dir.BearerToken, "", nil); a.status != http.StatusOK {
		t.Errorf("SCIM list once the tables are free: %d %.300s", a.status, a.raw)
	}
	if strings.Contains(b.output.String(), "status=500") {
		t.Errorf("a request answered 500:\n%s", b.output)
	}
}

// TestDatabaseReadOnly: the broker's PostgreSQL takes no writes (a standby
// after a failover, a primary being demoted, default_transaction_read_only
// set by a DBA). Writes answered 500 and /readyz kept answering 200; now
// writes answer 503 with Retry-After in their surface's format, /readyz
// turns 503 so that the load balancer drains the node, and both recover
// without a restart once the database takes writes again.
func TestDatabaseReadOnly(t *testing.T) {
	t.Parallel()
	pg := testdb.StartPostgres(t)
	b, _, dir := startWithDirectory(t, map[string]string{
		envDatabaseURL: pg.URL(),
		envMasterKey:   testMasterKey,
	})
	ctx := context.Background()
	db, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	setReadOnly := func(sql string) {
		t.Helper()
		for _, s := range []string{"SET default_transaction_read_only = off", sql,
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'test' AND pid <> pg_backend_pid() AND backend_type = 'client backend'"} {
			if _, err := db.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	user := func(name string) string {
		return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + name + `@acme.example"}`
	}
	ready := func() int {
		return call(t, b, "GET", b.base+"/readyz", "", "", nil).status
	}

	setReadOnly("ALTER DATABASE test SET default_transaction_read_only = on")
	// The pool's dropped connections are found out on their next use.
	var scim, api answer
	for range 5 {
		scim = dir.pushUser(t, b, user("readonly"))
		api = call(t, b, "POST", b.base+"/api/v1/tenants", "Bearer "+e2eBootstrapKey, "application/json", []byte(`{"name":"Read-only"}`))
	}
	if scim.status != http.StatusServiceUnavailable || scim.header.Get("Retry-After") == "" || !isSCIMError(scim, "503") {
		t.Errorf("SCIM create on a read-only database: %d Retry-After %q %.300s; want 503 with Retry-After in the SCIM error schema",
			scim.status, scim.header.Get("Retry-After"), scim.raw)
	}
	if api.status != http.StatusServiceUnavailable || api.header.Get("Retry-After") == "" || !isAPIError(api, "unavailable") {
		t.Errorf("POST /tenants on a read-only database: %d Retry-After %q %.300s; want 503 unavailable with Retry-After",
			api.status, api.header.Get("Retry-After"), api.raw)
	}
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz on a read-only database = %d, want 503", got)
	}

	setReadOnly("ALTER DATABASE test RESET default_transaction_read_only")
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		a := dir.pushUser(t, b, user("after"))
		if a.status == http.StatusCreated && ready() == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("once writable again: SCIM create %d %.300s, /readyz %d", a.status, a.raw, ready())
		}
	}
	if strings.Contains(b.output.String(), "status=500") {
		t.Errorf("a request answered 500:\n%s", b.output)
	}
}
