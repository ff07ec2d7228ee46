package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestRestoreFromBackupKeepsRevocations is the operations guide's runbook
// "Restoring from a backup", driven through the binary on each backend:
// PostgreSQL backed up with pg_dump and restored with pg_restore, the
// embedded SQLite with sqlite3's .backup, Redis (the test's own) kept.
// Between the backup and the restore an operator API key is revoked
// (idbroker apikey revoke), a console operator disabled, a directory token
// and an application's client secret rotated, a user deprovisioned over
// SCIM, another user's sessions revoked, a portal link opened; after the
// restore not one of them may work again:
// the key and the old token and secret answer 401, the operator is
// disabled, the link is spent, the user is inactive and every revoked
// token is refused, and `idbroker restore-check` lists what it applied
// again.
// Then a refresh token is reused (its family ends, in Redis), and the
// database restored again: the family stays ended. Then a connection is
// deactivated and the tenant paused, and the database restored again: both
// stay so. Last, Redis is emptied with the database restored (the
// case the tombstones cannot cover): the node says so in its log.
func TestRestoreFromBackupKeepsRevocations(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"postgres", "sqlite"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			restoreDrill(t, backend)
		})
	}
}

// backupFn takes a backup of the database of env and returns a function
// that restores it (the broker stopped).
type backupFn func(t *testing.T) (restore func(t *testing.T))

func restoreDrill(t *testing.T, backend string) {
	rs := sessionstest.StartServer(t)
	env := productionEnv(t, rs.URL())
	env[envListen] = freeAddr(t) // restarted where it was: tokens name its issuer
	var backup backupFn
	switch backend {
	case "postgres":
		url := env[envDatabaseURL]
		backup = func(t *testing.T) func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "backup.dump")
			mustRun(t, "pg_dump", "--format=custom", "--file="+file, url)
			return func(t *testing.T) {
				mustRun(t, "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--dbname="+url, file)
				resolverFunctionsBack(t, url)
			}
		}
	case "sqlite":
		path := filepath.Join(t.TempDir(), "data", "idbroker.db")
		env[envDatabaseURL] = "sqlite://" + path
		backup = func(t *testing.T) func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "backup.db")
			mustRun(t, "sqlite3", path, ".backup '"+file+"'")
			return func(t *testing.T) {
				for _, suffix := range []string{"-wal", "-shm"} {
					os.Remove(path + suffix)
				}
				raw, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, raw, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	n := startBroker(t, env, "--dev")

	// ---- what exists when the backup is taken ----
	var app struct {
		ID           string `json:"id"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code := n.do("POST", "/api/v1/applications", e2eBootstrapKey,
		map[string]any{"name": "Restored", "redirect_uris": []string{"https://app.example/cb"}}, &app); code != http.StatusCreated {
		t.Fatalf("POST /applications = %d", code)
	}
	c := &rpClient{t: t, node: n, clientID: app.ClientID, secret: app.ClientSecret}
	var tenants struct {
		Data []tenantJSON `json:"data"`
	}
	if code := n.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) != 1 {
		t.Fatalf("GET /tenants = %d, %+v; want the dev tenant", code, tenants)
	}
	tenant := tenants.Data[0].ID
	var dir struct {
		ID          string `json:"id"`
		SCIMBaseURL string `json:"scim_base_url"`
		BearerToken string `json:"bearer_token"`
	}
	if code := n.do("POST", "/api/v1/tenants/"+tenant+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	scim := func(token, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, dir.SCIMBaseURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := n.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	code, body := scim(dir.BearerToken, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],`+
		`"userName":"alice@example.com","active":true,"emails":[{"value":"alice@example.com","primary":true}]}`)
	if code != http.StatusCreated {
		t.Fatalf("SCIM create = %d %s", code, body)
	}
	aliceID := regexp.MustCompile(`"id":"([^"]+)"`).FindStringSubmatch(body)[1]
	alice := c.login("alice@example.com")
	bob := c.login("bob@example.com")

	out, errOut, exit := runBinary(t, env, "apikey", "create", "--name", "ops")
	key := strings.TrimSpace(out)
	if exit != 0 || !strings.HasPrefix(key, "idb_sk_") {
		t.Fatalf("apikey create = %d %q %s", exit, out, errOut)
	}
	if code := n.do("GET", "/api/v1/tenants", key, nil, nil); code != http.StatusOK {
		t.Fatalf("a new API key answers %d", code)
	}
	keyID := apiKeyID(t, env, "ops")
	if _, errOut, exit := runBinary(t, env, "operator", "create", "--email", "ops@example.com", "--issuer", n.base); exit != 0 {
		t.Fatalf("operator create = %d %s", exit, errOut)
	}

	var link struct {
		URL string `json:"url"`
	}
	if code := n.do("POST", "/api/v1/portal_links", e2eBootstrapKey, map[string]any{"tenant_id": tenant, "intent": "sso"}, &link); code != http.StatusCreated {
		t.Fatalf("POST /portal_links = %d", code)
	}
	openLink := func() int {
		t.Helper()
		noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(link.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	restore := backup(t)

	// ---- revoked after the backup ----
	if _, errOut, exit := runBinary(t, env, "apikey", "revoke", keyID); exit != 0 {
		t.Fatalf("apikey revoke = %d %s", exit, errOut)
	}
	if _, errOut, exit := runBinary(t, env, "operator", "disable", "--email", "ops@example.com"); exit != 0 {
		t.Fatalf("operator disable = %d %s", exit, errOut)
	}
	var rotated struct {
		BearerToken string `json:"bearer_token"`
	}
	if code := n.do("POST", "/api/v1/directories/"+dir.ID+"/token", e2eBootstrapKey, nil, &rotated); code != http.StatusOK || rotated.BearerToken == "" {
		t.Fatalf("rotate directory token = %d", code)
	}
	var newSecret struct {
		ClientSecret string `json:"client_secret"`
	}
	if code := n.do("POST", "/api/v1/applications/"+app.ID+"/secret", e2eBootstrapKey, nil, &newSecret); code != http.StatusOK || newSecret.ClientSecret == "" {
		t.Fatalf("rotate application secret = %d", code)
	}
	oldSecret := c.secret
	c.secret = newSecret.ClientSecret
	if code, body := scim(rotated.BearerToken, "PATCH", "/Users/"+aliceID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],`+
		`"Operations":[{"op":"replace","value":{"active":false}}]}`); code != http.StatusOK {
		t.Fatalf("SCIM deactivate = %d %s", code, body)
	}
	if code := n.do("POST", "/api/v1/users/"+bob.sub(t)+"/revoke_sessions", e2eBootstrapKey, nil, nil); code != http.StatusNoContent {
		t.Fatalf("revoke_sessions = %d", code)
	}
	if code := openLink(); code != http.StatusSeeOther {
		t.Fatalf("opening the portal link = %d, want 303", code)
	}
	if c.active(n, alice.AccessToken) || c.active(n, bob.AccessToken) {
		t.Fatal("a revoked session is active before the restore")
	}

	// ---- the runbook: stop, restore, check, start ----
	n.stop()
	restore(t)
	out, errOut, exit = runBinary(t, env, "restore-check", "--dry-run")
	if exit != 0 {
		t.Fatalf("restore-check --dry-run = %d %s", exit, errOut)
	}
	for _, want := range []string{"api_key", keyID, "operator", "directory_token", "application_secret", "user", aliceID, "portal_link",
		"rotate the directory's token", "rotate the application's secret"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore-check --dry-run does not list %q:\n%s", want, out)
		}
	}
	// It changed nothing, and its log must not say otherwise to an
	// operator reading it during a restore.
	if strings.Contains(errOut, "backup) applied again") || strings.Contains(errOut, "database applied again") ||
		!strings.Contains(errOut, "would be applied again (dry run)") {
		t.Errorf("restore-check --dry-run logs revocations as applied:\n%s", errOut)
	}
	n = startBroker(t, env, "--dev")
	c.node = n
	if !strings.Contains(n.output.String(), "a revocation the database forgot (restored from a backup) applied again") {
		t.Errorf("the node did not log the revocations it applied again:\n%s", n.output)
	}
	out, _, _ = runBinary(t, env, "restore-check")
	if !strings.Contains(out, " 0 applied again") {
		t.Errorf("restore-check after the node's start applied something again:\n%s", out)
	}

	if code := n.do("GET", "/api/v1/tenants", key, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("the API key revoked after the backup answers %d after the restore, want 401", code)
	}
	if out, _, _ := runBinary(t, env, "operator", "list"); !regexp.MustCompile(`ops@example.com\s+disabled`).MatchString(out) {
		t.Errorf("the operator disabled after the backup is not disabled after the restore:\n%s", out)
	}
	if code, _ := scim(dir.BearerToken, "GET", "/Users", ""); code != http.StatusUnauthorized {
		t.Errorf("the directory token rotated away after the backup answers %d after the restore, want 401", code)
	}
	c.secret = oldSecret
	if status, _ := c.post(n, "/oauth/introspect", map[string][]string{"token": {bob.AccessToken}}, nil); status != http.StatusUnauthorized {
		t.Errorf("the client secret rotated away after the backup answers %d at introspection, want 401", status)
	}
	// The rotated-to secret is lost with the restore: the runbook rotates
	// again, and the application uses the new one.
	if code := n.do("POST", "/api/v1/applications/"+app.ID+"/secret", e2eBootstrapKey, nil, &newSecret); code != http.StatusOK {
		t.Fatalf("rotate application secret after the restore = %d", code)
	}
	c.secret = newSecret.ClientSecret
	if code := openLink(); code == http.StatusSeeOther {
		t.Error("the portal link used after the backup opens again after the restore")
	}
	for name, tk := range map[string]tokens{"alice (deprovisioned)": alice, "bob (revoked)": bob} {
		if c.active(n, tk.AccessToken) {
			t.Errorf("%s: access token active after the restore", name)
		}
		if code := c.userinfo(n, tk.AccessToken); code == http.StatusOK {
			t.Errorf("%s: userinfo 200 after the restore", name)
		}
		var fresh tokens
		if code := c.refreshInto(n, tk.RefreshToken, &fresh); code == http.StatusOK {
			t.Errorf("%s: refresh 200 after the restore", name)
		}
	}
	var user struct {
		Active bool `json:"active"`
	}
	if code := n.do("GET", "/api/v1/directories/"+dir.ID+"/users/"+aliceID, e2eBootstrapKey, nil, &user); code != http.StatusOK || user.Active {
		t.Errorf("alice after the restore: %d, active %v; want deactivated", code, user.Active)
	}
	// Bob was not deprovisioned: he signs in again.
	bob2 := c.login("bob@example.com")
	if !c.active(n, bob2.AccessToken) {
		t.Error("a user nobody deprovisioned cannot sign in after the restore")
	}

	// ---- a refresh token reused after another backup: its family ends in
	// Redis, which the restore does not touch ----
	restore = backup(t)
	var bob2b tokens
	if code := c.refreshInto(n, bob2.RefreshToken, &bob2b); code != http.StatusOK {
		t.Fatalf("bob's refresh = %d", code)
	}
	if code := c.refreshInto(n, bob2.RefreshToken, &tokens{}); code == http.StatusOK {
		t.Fatal("a reused refresh token was honoured")
	}
	n.stop()
	restore(t)
	n = startBroker(t, env, "--dev")
	c.node = n
	for name, tk := range map[string]tokens{"the reused token's": bob2, "the family's newer": bob2b} {
		if c.active(n, tk.AccessToken) {
			t.Errorf("%s access token active after the restore", name)
		}
		if code := c.refreshInto(n, tk.RefreshToken, &tokens{}); code == http.StatusOK {
			t.Errorf("%s refresh token honoured after the restore", name)
		}
	}
	bob3 := c.login("bob@example.com")

	// ---- a connection deactivated and a tenant paused after a second backup ----
	var conns struct {
		Data []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"data"`
	}
	if code := n.do("GET", "/api/v1/tenants/"+tenant+"/connections", e2eBootstrapKey, nil, &conns); code != http.StatusOK || len(conns.Data) == 0 {
		t.Fatalf("GET connections = %d, %+v", code, conns)
	}
	conn := conns.Data[0].ID
	restore = backup(t)
	if code := n.do("PATCH", "/api/v1/connections/"+conn, e2eBootstrapKey, map[string]any{"status": "inactive"}, nil); code != http.StatusOK {
		t.Fatalf("deactivate connection = %d", code)
	}
	if code := n.do("PATCH", "/api/v1/tenants/"+tenant, e2eBootstrapKey, map[string]any{"status": "paused"}, nil); code != http.StatusOK {
		t.Fatalf("pause tenant = %d", code)
	}
	n.stop()
	restore(t)
	n = startBroker(t, env, "--dev")
	c.node = n
	var tn tenantJSON
	if code := n.do("GET", "/api/v1/tenants/"+tenant, e2eBootstrapKey, nil, &tn); code != http.StatusOK || tn.Status != "paused" {
		t.Errorf("the tenant paused after the backup: %d, status %q after the restore; want paused", code, tn.Status)
	}
	if c.active(n, bob3.AccessToken) {
		t.Error("a session of the paused tenant is active after the restore")
	}
	var cn struct {
		Status string `json:"status"`
	}
	if code := n.do("GET", "/api/v1/connections/"+conn, e2eBootstrapKey, nil, &cn); code != http.StatusOK || cn.Status != "inactive" {
		t.Errorf("the connection deactivated after the backup: %d, status %q after the restore; want inactive", code, cn.Status)
	}

	// ---- Redis emptied as well: what the tombstones cannot cover is said ----
	restore = backup(t)
	n.stop()
	restore(t)
	rs.RestartEmpty()
	n = startBroker(t, env, "--dev")
	if !strings.Contains(n.output.String(), "the tombstone ledger in Redis is older than the database's last check") {
		t.Errorf("a node started on an emptied Redis does not warn that its tombstones are lost:\n%s", n.output)
	}
}

// apiKeyID reads the id of the API key named name from `apikey list`.
func apiKeyID(t *testing.T, env map[string]string, name string) string {
	t.Helper()
	out, errOut, exit := runBinary(t, env, "apikey", "list")
	if exit != 0 {
		t.Fatalf("apikey list = %d %s", exit, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == name {
			return f[0]
		}
	}
	t.Fatalf("apikey list has no key %q:\n%s", name, out)
	return ""
}

// mustRun runs a tool (pg_dump, sqlite3) and fails t when it fails.
func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is needed for the restore drill: %v", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// resolverFunctionsBack runs the operations guide's SQL that gives the
// credential-to-tenant functions back to idbroker_resolver after a
// pg_restore --no-owner made them the restoring user's, and checks that
// they are its again: the step is a block of the runbook, so it must run
// as written.
func resolverFunctionsBack(t *testing.T, url string) {
	t.Helper()
	page, err := os.ReadFile("../../docs/reference/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sql\n([^`]*OWNER TO idbroker_resolver[^`]*)```").FindAllStringSubmatch(string(page), -1)
	if len(blocks) != 1 {
		t.Fatalf("operations.md has %d sql blocks giving functions to idbroker_resolver, want 1", len(blocks))
	}
	sql := regexp.MustCompile("(?m)^   ").ReplaceAllString(blocks[0][1], "") // the block is indented in a list
	file := filepath.Join(t.TempDir(), "owners.sql")
	if err := os.WriteFile(file, []byte(sql), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "psql", "-v", "ON_ERROR_STOP=1", "-q", "-f", file, url)
	out, err := exec.Command("psql", "-Atc", `SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc
		WHERE pronamespace = 'public'::regnamespace AND prosecdef`, url).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "idbroker_resolver" {
		t.Fatalf("owners of the SECURITY DEFINER functions after the runbook: %q %v, want idbroker_resolver", out, err)
	}
}
