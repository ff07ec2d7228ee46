package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/jackc/pgx/v5"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/migrations"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// oldBinaryEnv names an idbroker binary built from an earlier commit
// (`go build -o /tmp/idbroker-old ./cmd/idbroker` in a worktree of it).
// The tests that run one are skipped without it: CI has neither the
// network nor the minutes to build old releases. They are how an upgrade
// is checked by hand before a release; the compatibility they found is
// kept in CI by tests that encode the old formats (rows, Redis keys and
// messages as the earlier version wrote them).
const oldBinaryEnv = "IDBROKER_TEST_OLD_BINARY"

func oldBinary(t *testing.T) string {
	t.Helper()
	p := os.Getenv(oldBinaryEnv)
	if p == "" {
		t.Skip("set " + oldBinaryEnv + " to an idbroker built from an earlier commit")
	}
	return p
}

// hookSink receives webhook deliveries, checks their signature with the
// secret it is given, and counts them by event id.
type hookSink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	seen   map[string]int
	types  map[string]string
	bad    int
}

func newHookSink(t *testing.T) *hookSink {
	h := &hookSink{seen: map[string]int{}, types: map[string]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := events.Verify(h.secret, r.Header.Get(events.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			h.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ev struct{ ID, Type string }
		_ = json.Unmarshal(body, &ev)
		h.seen[ev.ID]++
		h.types[ev.ID] = ev.Type
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// waitType waits until an event of type typ containing nothing else in
// particular has been received n times in all, and returns the counts.
func (h *hookSink) waitType(t *testing.T, typ string, n int) map[string]int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		h.mu.Lock()
		got := map[string]int{}
		total := 0
		for id, c := range h.seen {
			if h.types[id] == typ {
				got[id] = c
				total++
			}
		}
		bad := h.bad
		h.mu.Unlock()
		if bad > 0 {
			t.Fatalf("%d webhook deliveries with a bad signature", bad)
		}
		if total >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s deliveries within 30 s, want %d", total, typ, n)
		}
	}
}

// upgradeFixture is what the old binary created, for the new one to use.
type upgradeFixture struct {
	tenantID string
	app      *rpClient
	dir      scimDirectory
	hook     *hookSink
	portal   string
	// Tokens issued by the old binary: kept (introspected, refreshed),
	// and one more set to revoke.
	kept, spare tokens
	usage       map[string]string // idempotency_key → its line
	// apiKey was created by the old binary's "apikey create".
	apiKey string
	// oldLog is the old binary's output, with the --dev operator's
	// credentials when it had a console.
	oldLog *syncBuffer
	// An OIDC connection (its client secret sealed) to op, in a tenant
	// of upstream up.
	up     *upstream
	op     *vendorOP
	oidcID string
}

func scimCall(t *testing.T, n *node, d scimDirectory, method, path, body string) answer {
	t.Helper()
	return call(t, n, method, d.SCIMBaseURL+path, "Bearer "+d.BearerToken, "application/scim+json", []byte(body))
}

func usageLines(t *testing.T, n *node) map[string]string {
	t.Helper()
	from := time.Now().UTC().AddDate(0, 0, -1)
	q := url.Values{"from": {from.Format(time.DateOnly)}, "to": {from.AddDate(0, 0, 3).Format(time.DateOnly)}}
	req, _ := http.NewRequest("GET", n.base+"/api/v1/usage/export?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+e2eBootstrapKey)
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		t.Log("no usage export on this binary")
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("usage export = %d %s", resp.StatusCode, raw)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if line == "" {
			continue
		}
		var r struct {
			Key string `json:"idempotency_key"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Key == "" {
			t.Fatalf("usage line %q: %v", line, err)
		}
		out[r.Key] = line
	}
	return out
}

// seedOld fills a deployment through node n (the old binary) with what a
// deployment in use holds.
func seedOld(t *testing.T, n *node, env map[string]string) *upgradeFixture {
	t.Helper()
	f := &upgradeFixture{hook: newHookSink(t), oldLog: n.output}
	out, errOut, code := runBinary(t, env, "apikey", "create", "--name", "upgrade")
	if f.apiKey = strings.TrimSpace(out); code != 0 || !strings.HasPrefix(f.apiKey, "idb_") {
		t.Fatalf("old binary's apikey create = %d\n%s\n%s", code, out, errOut)
	}
	if code := n.do("GET", "/api/v1/tenants", f.apiKey, nil, nil); code != http.StatusOK {
		t.Fatalf("the old binary refuses its own API key: %d", code)
	}
	var tenants struct {
		Data []tenantJSON `json:"data"`
	}
	if code := n.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) == 0 {
		t.Fatalf("GET /tenants = %d, %+v; want the dev tenant", code, tenants)
	}
	f.tenantID = tenants.Data[0].ID
	var other tenantJSON
	if code := n.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Globex"}, &other); code != http.StatusCreated {
		t.Fatalf("POST /tenants = %d", code)
	}
	if code := n.do("POST", "/api/v1/tenants/"+other.ID+"/domains", e2eBootstrapKey, map[string]any{"domain": "globex.example"}, nil); code != http.StatusCreated {
		t.Fatalf("POST domain = %d", code)
	}
	f.app = newRPClient(t, n, "Upgraded", nil)
	f.up = &upstream{t: t, b: n, domain: "initech.example", clientID: f.app.clientID, secret: f.app.secret}
	var initech tenantJSON
	if code := n.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Initech",
		"domains": []map[string]any{{"domain": f.up.domain, "verified": true}}}, &initech); code != http.StatusCreated {
		t.Fatalf("POST /tenants with a verified domain = %d", code)
	}
	f.up.tenantID = initech.ID
	f.op = newVendorOP(t, "/oauth2/default")
	f.op.set(func(op *vendorOP) {
		op.claims = map[string]any{"sub": "00u1", "email": "gina@" + f.up.domain, "email_verified": true}
	})
	f.oidcID = f.up.oidcConnection(f.op, nil)
	if c := f.up.mustSignIn(f.oidcID); c["idp_subject"] != "00u1" {
		t.Fatalf("OIDC sign-in on the old binary: claims %v", c)
	}
	if code := n.do("POST", "/api/v1/tenants/"+f.tenantID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &f.dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	var wh webhookJSON
	if code := n.do("POST", "/api/v1/webhooks", e2eBootstrapKey, map[string]any{"url": f.hook.srv.URL, "events": []string{"*"}}, &wh); code != http.StatusCreated {
		t.Fatalf("POST /webhooks = %d", code)
	}
	f.hook.mu.Lock()
	f.hook.secret = wh.Secret
	f.hook.mu.Unlock()
	var link struct {
		URL string `json:"url"`
	}
	switch code := n.do("POST", "/api/v1/portal_links", e2eBootstrapKey, map[string]any{"tenant_id": other.ID, "intent": "sso"}, &link); {
	case code == http.StatusNotFound:
		t.Log("the old binary has no portal links")
	case code != http.StatusCreated || link.URL == "":
		t.Fatalf("POST /portal_links = %d %+v", code, link)
	}
	f.portal = link.URL
	f.kept = f.app.login("alice@example.com")
	f.spare = f.app.login("bob@example.com")
	if a := scimCall(t, n, f.dir, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"carol@example.com",`+
		`"active":true,"emails":[{"value":"carol@example.com","primary":true}]}`); a.status != http.StatusCreated {
		t.Fatalf("SCIM POST /Users = %d %s", a.status, a.raw)
	}
	if a := scimCall(t, n, f.dir, "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Staff"}`); a.status != http.StatusCreated {
		t.Fatalf("SCIM POST /Groups = %d %s", a.status, a.raw)
	}
	f.hook.waitType(t, "dsync.group.created", 1)
	f.usage = usageLines(t, n)
	return f
}

// checkUpgraded checks, through node n (the new binary, on the old one's
// data and issuer), that everything the old binary issued still works.
func checkUpgraded(t *testing.T, n *node, env map[string]string, f *upgradeFixture) {
	t.Helper()
	c := f.app
	c.node = n
	ctx := context.Background()
	// Tokens of the old binary are signed by a key in the JWKS.
	ks := oidc.NewRemoteKeySet(ctx, n.base+"/.well-known/jwks.json")
	for name, tok := range map[string]string{"access token": f.kept.AccessToken, "id_token": f.kept.IDToken} {
		if _, err := ks.VerifySignature(ctx, tok); err != nil {
			t.Errorf("the old binary's %s does not verify against the new JWKS: %v", name, err)
		}
	}
	if env[envRedisURL] == "" {
		// Sessions lived in the old process: every one ended with it, and
		// its tokens are refused as those of an ended session.
		if c.active(n, f.kept.AccessToken) || c.userinfo(n, f.kept.AccessToken) != http.StatusUnauthorized ||
			c.refreshInto(n, f.kept.RefreshToken, &tokens{}) != http.StatusBadRequest {
			t.Error("with sessions in process, a token of the old process is not refused as one of an ended session")
		}
	} else {
		checkOldTokens(t, n, f)
	}
	// The SCIM token, the directory's data, and its webhook (whose sealed
	// secret signs the delivery).
	if a := scimCall(t, n, f.dir, "GET", "/Users?filter="+url.QueryEscape(`userName eq "carol@example.com"`), ""); a.status != http.StatusOK || !strings.Contains(a.raw, "carol@example.com") {
		t.Errorf("SCIM GET with the old binary's token = %d %s", a.status, a.raw)
	}
	if a := scimCall(t, n, f.dir, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"dave@example.com",`+
		`"active":true,"emails":[{"value":"dave@example.com","primary":true}]}`); a.status != http.StatusCreated {
		t.Errorf("SCIM POST /Users after the upgrade = %d %s", a.status, a.raw)
	}
	f.hook.waitType(t, "dsync.user.created", 2)
	// The API key the old binary created.
	if code := n.do("GET", "/api/v1/tenants", f.apiKey, nil, nil); code != http.StatusOK {
		t.Errorf("the old binary's API key after the upgrade: %d", code)
	}
	// The OIDC connection's sealed client secret opens: the IdP's token
	// endpoint accepts it.
	up := *f.up
	up.t, up.b = t, n
	if c := up.mustSignIn(f.oidcID); c["idp_subject"] != "00u1" {
		t.Errorf("OIDC sign-in after the upgrade: claims %v", c)
	}
	// The console operator the old binary created signs in with its
	// password and authenticator (a sealed TOTP secret).
	if devOperatorRE.MatchString(f.oldLog.String()) {
		consoleSession(t, &node{t: t, base: n.base, output: f.oldLog, client: n.client})
	} else {
		t.Log("the old binary had no console operator")
	}
	// The portal link opens.
	jar, _ := cookiejar.New(nil)
	if f.portal == "" {
		// The old binary had none.
	} else if resp, err := (&http.Client{Jar: jar, Timeout: 10 * time.Second}).Get(f.portal); err != nil {
		t.Error(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("the old binary's portal link = %d", resp.StatusCode)
		}
	}
	// A new sign-in, its grant revoked (RFC 7009): what a downgrade
	// finds among the kept revocations.
	tk := c.login("alice@example.com")
	if code, raw := c.post(n, "/oauth/revoke", url.Values{"token": {tk.AccessToken}}, nil); code != http.StatusOK || c.active(n, tk.AccessToken) {
		t.Errorf("revoke a new token = %d %s, or it stayed active", code, raw)
	}
	// Usage: the old records keep their idempotency keys.
	now := usageLines(t, n)
	for k, line := range f.usage {
		if now[k] != line {
			t.Errorf("usage record %s was %s, now %q", k, line, now[k])
		}
	}
	// The audit chain verifies across the version boundary, and the
	// migrations are done once.
	cli := maps.Clone(env)
	delete(cli, binaryEnv)
	if out, errOut, code := runBinary(t, cli, "audit", "verify"); code != 0 {
		t.Errorf("audit verify = %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := runBinary(t, cli, "migrate", "up"); code != 0 {
		t.Errorf("migrate up again = %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := runBinary(t, cli, "migrate", "status"); code != 0 || strings.Contains(out, "pending") {
		t.Errorf("migrate status = %d\n%s\n%s", code, out, errOut)
	}
}

// checkOldTokens: tokens the old binary issued, in sessions kept in Redis,
// work on the new one: introspection, UserInfo, one refresh, reuse
// detection, RFC 7009 revocation.
func checkOldTokens(t *testing.T, n *node, f *upgradeFixture) {
	t.Helper()
	c := f.app
	if !c.active(n, f.kept.AccessToken) {
		t.Error("an access token issued by the old binary is inactive after the upgrade")
	}
	if code := c.userinfo(n, f.kept.AccessToken); code != http.StatusOK {
		t.Errorf("userinfo with the old binary's token = %d", code)
	}
	// Its refresh token refreshes once; reusing it ends the family.
	var fresh tokens
	if code := c.refreshInto(n, f.kept.RefreshToken, &fresh); code != http.StatusOK || fresh.RefreshToken == "" {
		t.Fatalf("refresh of the old binary's refresh token = %d", code)
	}
	if code := c.refreshInto(n, f.kept.RefreshToken, &tokens{}); code != http.StatusBadRequest {
		t.Errorf("reuse of the old binary's refresh token = %d, want 400", code)
	}
	if code := c.refreshInto(n, fresh.RefreshToken, &tokens{}); code != http.StatusBadRequest {
		t.Errorf("the family's newest token after the reuse = %d, want 400 (family ended)", code)
	}
	if c.active(n, fresh.AccessToken) {
		t.Error("the session survived refresh-token reuse")
	}
	// RFC 7009 revocation of the old binary's access token.
	if code, raw := c.post(n, "/oauth/revoke", url.Values{"token": {f.spare.AccessToken}}, nil); code != http.StatusOK {
		t.Errorf("revoke = %d %s", code, raw)
	}
	if c.active(n, f.spare.AccessToken) {
		t.Error("a revoked token of the old binary is still active")
	}
}

// rollBack runs the statements "Rolling back" in operations.md gives for
// the database at url.
func rollBack(t *testing.T, url string) {
	t.Helper()
	page, err := os.ReadFile("../../docs/reference/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	pg := strings.HasPrefix(url, "postgres")
	var stmts []string
	for _, block := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(page), -1) {
		if strings.Contains(block[1], "kind = 'client'") && strings.Contains(block[1], "split_part") == pg {
			stmts = strings.Split(block[1], ";")
		}
	}
	if len(stmts) == 0 {
		t.Fatal("operations.md gives no statements for a rollback")
	}
	ctx := context.Background()
	var exec func(string) error
	if pg {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		exec = func(q string) error { _, err := c.Exec(ctx, q); return err }
	} else {
		db, err := sql.Open("sqlite", strings.TrimPrefix(url, "sqlite://"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		exec = func(q string) error { _, err := db.ExecContext(ctx, q); return err }
	}
	for _, q := range stmts {
		if q = strings.TrimSpace(q); q != "" {
			if err := exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
}

// checkDowngraded: the old binary, started again on what the new one
// migrated and wrote, signs users in, and its tokens work.
func checkDowngraded(t *testing.T, n *node, env, newEnv map[string]string, f *upgradeFixture) {
	t.Helper()
	c := f.app
	c.t, c.node = t, n
	tk := c.login("alice@example.com")
	if !eventually(func() bool { return c.active(n, tk.AccessToken) }) {
		t.Error("after the downgrade, a fresh token is not active")
	}
	var fresh tokens
	if code := c.refreshInto(n, tk.RefreshToken, &fresh); code != http.StatusOK {
		t.Errorf("after the downgrade, refresh = %d", code)
	}
	if a := scimCall(t, n, f.dir, "GET", "/Users", ""); a.status != http.StatusOK {
		t.Errorf("after the downgrade, SCIM GET = %d %s", a.status, a.raw)
	}
	// The chain both versions wrote verifies with either binary: the old
	// one checks the hashes (the macs are not its business), the new one
	// the macs too.
	for by, e := range map[string]map[string]string{"old": env, "new": newEnv} {
		if out, errOut, code := runBinary(t, e, "audit", "verify"); code != 0 {
			t.Errorf("after the downgrade, the %s binary's audit verify = %d\n%s\n%s", by, code, out, errOut)
		}
	}
}

// TestUpgradeInPlace: the old binary serves a deployment in use, stops;
// the new binary starts on the same data (SQLite file, or PostgreSQL and
// Redis) at the same address, and everything the old one issued works.
func TestUpgradeInPlace(t *testing.T) {
	old := oldBinary(t)
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			env := map[string]string{envBootstrapAPIKey: e2eBootstrapKey, envListen: freeAddr(t)}
			if backend == "sqlite" {
				env[envDatabaseURL] = "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db"))
			} else {
				maps.Copy(env, productionEnv(t, sessionstest.StartServer(t).URL()))
			}
			oldEnv := maps.Clone(env)
			oldEnv[binaryEnv] = old
			a := startBroker(t, oldEnv, "--dev")
			f := seedOld(t, a, oldEnv)
			a.stop()
			b := startBroker(t, env, "--dev")
			checkUpgraded(t, b, env, f)
			b.stop()
			// Rolled back as the page says: the old binary on what the
			// new one migrated and wrote.
			rollBack(t, env[envDatabaseURL])
			a = startBroker(t, oldEnv, "--dev")
			checkDowngraded(t, a, oldEnv, env, f)
			a.stop()
		})
	}
}

// lastMigration is the newest migration applied to the database at url
// (PostgreSQL or SQLite).
func lastMigration(t *testing.T, url string) int {
	t.Helper()
	ctx := context.Background()
	const q = "SELECT max(version) FROM schema_migrations"
	var v int
	if !strings.HasPrefix(url, "postgres") {
		db, err := sql.Open("sqlite", strings.TrimPrefix(url, "sqlite://"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRowContext(ctx, q).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, q).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// rewriteACS sends a browser's posts to the SSO endpoints (/sso/…) to
// node to instead of the issuer's host: a login begun on one node
// finishes on another.
type rewriteACS struct {
	from, to string // host:port
}

func (r rewriteACS) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == r.from && strings.HasPrefix(req.URL.Path, "/sso/") {
		req = req.Clone(req.Context())
		req.URL.Host = r.to
		req.Host = r.to
	}
	return http.DefaultTransport.RoundTrip(req)
}

// loginAcross signs email in with the authorize request sent to start
// and the IdP's answer posted to finish.
func loginAcross(t *testing.T, c *rpClient, start, finish, issuer *node) tokens {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	savedNode := c.node
	c.jar, c.node = jar, start
	defer func() { c.jar, c.node = nil, savedNode }()
	code := c.authorizeVia(rewriteACS{from: strings.TrimPrefix(issuer.base, "http://"), to: strings.TrimPrefix(finish.base, "http://")}, "alice@example.com")
	var tk tokens
	status, raw := c.post(finish, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://app.example/cb"}}, &tk)
	if status != http.StatusOK {
		t.Fatalf("code exchange = %d %s", status, raw)
	}
	return tk
}

// eventually waits up to 5 s for cond.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// TestRollingUpgrade: an old node and a new node serve one deployment
// (PostgreSQL and Redis) at once, as during a rolling upgrade. What one
// revokes the other honours, a login may begin on one and end on the
// other, refresh rotation and reuse detection span both, one-time values
// are spent once, and each webhook delivery is sent once.
func TestRollingUpgrade(t *testing.T) {
	old := oldBinary(t)
	rs := sessionstest.StartServer(t)
	env := productionEnv(t, rs.URL())
	oldEnv := maps.Clone(env)
	oldEnv[binaryEnv] = old
	a := startBroker(t, oldEnv, "--dev")
	oldLast := lastMigration(t, env[envDatabaseURL])
	if oldLast < 81 {
		t.Skipf("the old binary's last migration is %04d: operations.md says not to roll from below 0081", oldLast)
	}
	f := seedOld(t, a, oldEnv)
	newEnv := maps.Clone(env)
	newEnv[envIssuer] = a.base
	b := startBroker(t, newEnv, "--dev")
	c := f.app
	nodes := map[string]*node{"old": a, "new": b}
	other := map[string]string{"old": "new", "new": "old"}
	// use points the application at node n within subtest t.
	use := func(t *testing.T, n *node) {
		c.t, c.node = t, n
	}
	// alice, provisioned over SCIM, so that either node can deprovision
	// her (and provision her again).
	use(t, a)
	alice := c.login("alice@example.com").sub(t)
	if r := scimCall(t, a, f.dir, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@example.com",`+
		`"active":true,"emails":[{"value":"alice@example.com","primary":true}]}`); r.status != http.StatusCreated || !strings.Contains(r.raw, alice) {
		t.Fatalf("SCIM create = %d %s; want the signed-in user %s adopted", r.status, r.raw, alice)
	}
	setActive := func(t *testing.T, n *node, active bool) {
		t.Helper()
		if p := scimCall(t, n, f.dir, "PATCH", "/Users/"+alice, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],`+
			`"Operations":[{"op":"replace","value":{"active":`+strconv.FormatBool(active)+`}}]}`); p.status != http.StatusOK {
			t.Fatalf("SCIM active:%v = %d %s", active, p.status, p.raw)
		}
	}

	for _, on := range []string{"old", "new"} {
		by, seen := nodes[on], nodes[other[on]]
		t.Run("login begun on "+on, func(t *testing.T) {
			use(t, by)
			tk := loginAcross(t, c, by, seen, a)
			if !c.active(by, tk.AccessToken) || !c.active(seen, tk.AccessToken) {
				t.Fatal("a login finished across the nodes is not active on both")
			}
		})
		t.Run("SCIM deprovision on "+on, func(t *testing.T) {
			use(t, seen)
			tk := c.login("alice@example.com")
			setActive(t, by, false)
			defer setActive(t, by, true)
			for _, n := range []*node{seen, by} {
				if !eventually(func() bool { return !c.active(n, tk.AccessToken) }) {
					t.Errorf("deprovisioned on the %s node, the token is still active on %s", on, n.base)
				}
				if code := c.refreshInto(n, tk.RefreshToken, &tokens{}); code == http.StatusOK {
					t.Errorf("deprovisioned on the %s node, the refresh token still works on %s", on, n.base)
				}
			}
		})
		t.Run("operator revoke on "+on, func(t *testing.T) {
			use(t, seen)
			tk := c.login("alice@example.com")
			if code := by.do("POST", "/api/v1/users/"+tk.sub(t)+"/revoke_sessions", e2eBootstrapKey, nil, nil); code/100 != 2 {
				t.Fatalf("revoke_sessions = %d", code)
			}
			if !eventually(func() bool { return !c.active(seen, tk.AccessToken) }) {
				t.Errorf("revoked on the %s node, the token is still active on the other", on)
			}
		})
		t.Run("token revocation on "+on, func(t *testing.T) {
			use(t, seen)
			tk := c.login("alice@example.com")
			if !c.active(seen, tk.AccessToken) {
				t.Fatal("fresh token inactive")
			}
			if code, raw := c.post(by, "/oauth/revoke", url.Values{"token": {tk.AccessToken}}, nil); code != http.StatusOK {
				t.Fatalf("revoke = %d %s", code, raw)
			}
			for _, n := range []*node{by, seen} {
				if !eventually(func() bool { return !c.active(n, tk.AccessToken) }) {
					t.Errorf("an access token revoked (RFC 7009) on the %s node is still active on %s", on, n.base)
				}
			}
		})
		t.Run("refresh rotation from "+on, func(t *testing.T) {
			use(t, by)
			tk := c.login("alice@example.com")
			var r1, r2 tokens
			if code := c.refreshInto(by, tk.RefreshToken, &r1); code != http.StatusOK {
				t.Fatalf("refresh on %s = %d", on, code)
			}
			if code := c.refreshInto(seen, r1.RefreshToken, &r2); code != http.StatusOK {
				t.Fatalf("refresh of the rotated token on the other node = %d", code)
			}
			if code := c.refreshInto(seen, tk.RefreshToken, &tokens{}); code != http.StatusBadRequest {
				t.Errorf("reuse of the first refresh token on the other node = %d, want 400", code)
			}
			if code := c.refreshInto(by, r2.RefreshToken, &tokens{}); code != http.StatusBadRequest {
				t.Errorf("after the reuse, the family's newest token on %s = %d, want 400", on, code)
			}
			if !eventually(func() bool { return !c.active(by, r2.AccessToken) && !c.active(seen, r2.AccessToken) }) {
				t.Error("the session outlived refresh-token reuse on one of the nodes")
			}
		})
		t.Run("code spent once across from "+on, func(t *testing.T) {
			use(t, by)
			code := c.authorize("alice@example.com")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example/cb"}}
			if s, raw := c.post(by, "/oauth/token", form, nil); s != http.StatusOK {
				t.Fatalf("exchange = %d %s", s, raw)
			}
			if s, _ := c.post(seen, "/oauth/token", form, nil); s != http.StatusBadRequest {
				t.Errorf("the same code on the other node = %d, want 400", s)
			}
		})
		t.Run("portal link from "+on, func(t *testing.T) {
			var l struct{ URL string }
			if code := by.do("POST", "/api/v1/portal_links", e2eBootstrapKey, map[string]any{"tenant_id": f.tenantID, "intent": "sso"}, &l); code != http.StatusCreated {
				t.Fatalf("POST portal_links = %d", code)
			}
			// Both nodes serve the old one's issuer: the link names it.
			path := strings.TrimPrefix(l.URL, a.base)
			jar, _ := cookiejar.New(nil)
			cl := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			get := func(n *node, path string) (int, string) {
				t.Helper()
				resp, err := cl.Get(n.base + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(raw)
			}
			if code, _ := get(seen, path); code != http.StatusSeeOther {
				t.Fatalf("a link made on the %s node, opened on the other = %d, want 303", on, code)
			}
			if code, _ := get(by, path); code != http.StatusGone {
				t.Errorf("the link, opened again on the %s node = %d, want 410 (spent once for both)", on, code)
			}
			var page string
			for _, n := range []*node{seen, by} {
				var code int
				if code, page = get(n, "/portal/sso"); code != http.StatusOK {
					t.Fatalf("the portal session on %s = %d", n.base, code)
				}
			}
			csrf := csrfFieldRE.FindStringSubmatch(page)
			if csrf == nil {
				t.Fatalf("no CSRF field on the portal page:\n%.500s", page)
			}
			kept := jar.Cookies(mustURL(t, a.base+"/portal"))
			resp, err := cl.PostForm(by.base+"/portal/signout", url.Values{"csrf_token": {csrf[1]}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("portal sign-out on the %s node = %d", on, resp.StatusCode)
			}
			cl.Jar, _ = cookiejar.New(nil)
			cl.Jar.SetCookies(mustURL(t, a.base+"/portal"), kept)
			for _, n := range []*node{seen, by} {
				if code, _ := get(n, "/portal/sso"); code == http.StatusOK {
					t.Errorf("signed out on the %s node, the portal session still works on %s", on, n.base)
				}
			}
		})
	}
	t.Run("console across", func(t *testing.T) {
		// The --dev operator the old node made signs in there (one TOTP
		// code: a second sign-in within its period would be a replay);
		// the session holds on the new node, and its sign-out there ends
		// it on the old one.
		cl, _ := consoleSession(t, &node{t: t, base: a.base, output: f.oldLog, client: a.client})
		tenantsPage := func(n *node) (bool, string) {
			t.Helper()
			resp, err := cl.Get(n.base + "/console/tenants")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == http.StatusOK && resp.Request.URL.Path == "/console/tenants", string(raw)
		}
		var page string
		for _, n := range []*node{b, a} {
			var ok bool
			if ok, page = tenantsPage(n); !ok {
				t.Fatalf("the old node's console session does not open the tenants page on %s", n.base)
			}
		}
		csrf := csrfFieldRE.FindStringSubmatch(page)
		if csrf == nil {
			t.Fatal("no CSRF field on the tenants page")
		}
		kept := cl.Jar.Cookies(mustURL(t, a.base+"/console"))
		resp, err := cl.PostForm(b.base+"/console/signout", url.Values{"csrf_token": {csrf[1]}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		jar, _ := cookiejar.New(nil)
		jar.SetCookies(mustURL(t, a.base+"/console"), kept)
		cl.Jar = jar
		for _, n := range []*node{a, b} {
			if ok, _ := tenantsPage(n); ok {
				t.Errorf("signed out on the new node, the console session still works on %s", n.base)
			}
		}
	})
	t.Run("operator changes on both", func(t *testing.T) {
		// Each node writes the tenants' and the vendor's own audit chains.
		for i, n := range []*node{a, b, a, b} {
			var tn tenantJSON
			if code := n.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Rolling " + strconv.Itoa(i)}, &tn); code != http.StatusCreated {
				t.Fatalf("POST /tenants = %d", code)
			}
			if code := n.do("PATCH", "/api/v1/tenants/"+tn.ID, e2eBootstrapKey, map[string]any{"name": "Rolled " + strconv.Itoa(i)}, nil); code != http.StatusOK {
				t.Fatalf("PATCH tenant = %d", code)
			}
			var app struct {
				ClientID string `json:"client_id"`
			}
			if code := n.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{"name": "R" + strconv.Itoa(i), "redirect_uris": []string{"https://app.example/cb"}}, &app); code != http.StatusCreated {
				t.Fatalf("POST /applications = %d", code)
			}
			if code := n.do("DELETE", "/api/v1/applications/"+app.ClientID, e2eBootstrapKey, nil, nil); code/100 != 2 {
				t.Fatalf("DELETE application = %d", code)
			}
		}
		for name, e := range map[string]map[string]string{"new": env, "old": oldEnv} {
			if out, errOut, code := runBinary(t, e, "audit", "verify"); code != 0 {
				t.Errorf("%s binary: audit verify after both versions wrote = %d\n%s\n%s", name, code, out, errOut)
			}
		}
	})
	t.Run("Redis restarts", func(t *testing.T) {
		// Both versions find a Redis that lost everything, with the new
		// version's grant revocations among the kept ones: the old node,
		// which cannot replay those, trusts Redis again once a new node
		// has replayed them.
		rs.Kill()
		rs.Start()
		for _, n := range []*node{a, b} {
			ready := false
			for deadline := time.Now().Add(20 * time.Second); !ready && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if resp, err := n.client.Get(n.base + "/readyz"); err == nil {
					resp.Body.Close()
					ready = resp.StatusCode == http.StatusOK
				}
			}
			if !ready {
				t.Errorf("%s not ready 20 s after Redis restarted", n.base)
			}
		}
		use(t, a)
		tk := c.login("alice@example.com")
		if !c.active(a, tk.AccessToken) || !c.active(b, tk.AccessToken) {
			t.Error("a sign-in after the restart is not active on both nodes")
		}
	})
	t.Run("webhook deliveries once", func(t *testing.T) {
		before := f.hook.waitType(t, "dsync.user.created", 0)
		for i := range 10 {
			n := []*node{a, b}[i%2]
			email := "w" + string(rune('a'+i)) + "@example.com"
			if r := scimCall(t, n, f.dir, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+email+`",`+
				`"active":true,"emails":[{"value":"`+email+`","primary":true}]}`); r.status != http.StatusCreated {
				t.Fatalf("SCIM POST = %d %s", r.status, r.raw)
			}
		}
		got := f.hook.waitType(t, "dsync.user.created", len(before)+10)
		time.Sleep(2 * time.Second)
		got = f.hook.waitType(t, "dsync.user.created", len(before)+10)
		var dup []string
		for id, n := range got {
			if n > 1 {
				dup = append(dup, id)
			}
		}
		slices.Sort(dup)
		if len(dup) > 0 {
			t.Errorf("events delivered more than once: %v", dup)
		}
	})
}

// TestNodesStartTogether: three nodes started at the same moment on one
// PostgreSQL database, empty or left by an old binary (with
// IDBROKER_TEST_OLD_BINARY), all become ready; each migration is applied
// once and every node serves the same signing keys.
func TestNodesStartTogether(t *testing.T) {
	for _, from := range []string{"empty", "old"} {
		t.Run(from, func(t *testing.T) {
			var old string
			if from == "old" {
				old = oldBinary(t)
			}
			env := productionEnv(t, sessionstest.StartServer(t).URL())
			if old != "" {
				oldEnv := maps.Clone(env)
				oldEnv[binaryEnv] = old
				if out, errOut, code := runBinary(t, oldEnv, "migrate", "up"); code != 0 {
					t.Fatalf("old binary's migrate up = %d\n%s\n%s", code, out, errOut)
				}
			}
			nodes := make([]*node, 3)
			errs := make([]error, 3)
			var wg sync.WaitGroup
			for i := range nodes {
				wg.Go(func() { nodes[i], errs[i] = tryStartBroker(t, env) })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			c, err := pgx.Connect(ctx, env[envDatabaseURL])
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			var rows, versions int
			if err := c.QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&rows, &versions); err != nil {
				t.Fatal(err)
			}
			all, err := migrations.Load("postgres")
			if err != nil {
				t.Fatal(err)
			}
			if rows != len(all) || versions != len(all) {
				t.Errorf("schema_migrations holds %d rows of %d versions, want %d", rows, versions, len(all))
			}
			first := jwksKIDs(t, nodes[0])
			for _, n := range nodes[1:] {
				if kids := jwksKIDs(t, n); !slices.Equal(kids, first) {
					t.Errorf("nodes started together serve different keys: %v and %v", first, kids)
				}
			}
		})
	}
}
