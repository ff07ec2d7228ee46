package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/idbroker/internal/testdb"
)

// These tests run the idbroker binary (see TestMain) as an operator would:
// configuration in the environment, probes and the operator API over HTTP,
// SIGTERM to stop.

const e2eBootstrapKey = "idb_sk_e2e_bootstrap_key_0123456789abcdefghij"

type tenantJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Domains []struct {
		ID       string `json:"id"`
		Domain   string `json:"domain"`
		Verified bool   `json:"verified"`
	} `json:"domains"`
}

type healthJSON struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func TestServeSQLiteDataSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(dir, "data", "idbroker.db")),
		envBootstrapAPIKey: e2eBootstrapKey,
	}
	testDataSurvivesRestart(t, env)

	// The embedded default generated its master key beside the database,
	// readable by its owner only.
	fi, err := os.Stat(filepath.Join(dir, "data", "master.key"))
	if err != nil {
		t.Fatalf("master key file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("master.key mode = %#o, want 0600", perm)
	}
}

func TestServePostgresDataSurvivesRestart(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		envDatabaseURL:     testdb.PostgresURL(t),
		envRedisURL:        ownRedis(t),
		envMasterKey:       testMasterKey,
		envBootstrapAPIKey: e2eBootstrapKey,
	}
	testDataSurvivesRestart(t, env)
}

// testDataSurvivesRestart starts a broker, checks its probes, creates a
// tenant through the operator API, restarts the broker and finds the
// tenant again.
func testDataSurvivesRestart(t *testing.T, env map[string]string) {
	b := startBroker(t, env)

	var h healthJSON
	if code := b.do("GET", "/healthz", "", nil, &h); code != http.StatusOK || h.Status != "ok" {
		t.Errorf("GET /healthz = %d %+v, want 200 ok", code, h)
	}
	// The built-in test IdP and demo app exist only with --dev.
	for _, path := range []string{"/dev/app", "/dev/idp/metadata", "/dev/idp/login"} {
		if code := b.do("GET", path, "", nil, nil); code != http.StatusNotFound {
			t.Errorf("GET %s without --dev = %d, want 404", path, code)
		}
	}
	h = healthJSON{}
	if code := b.do("GET", "/readyz", "", nil, &h); code != http.StatusOK || h.Status != "ok" ||
		h.Checks["database"] != "ok" || h.Checks["cache"] != "ok" {
		t.Errorf("GET /readyz = %d %+v, want 200 with database and cache ok", code, h)
	}

	checkSurfaces(t, b)

	if code := b.do("GET", "/api/v1/tenants", "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/tenants without a key = %d, want 401", code)
	}
	if code := b.do("GET", "/api/v1/tenants", "idb_sk_wrong_"+strings.Repeat("x", 40), nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/tenants with a wrong key = %d, want 401", code)
	}

	domain := "acme-" + randomHex(t, 4) + ".example"
	var created tenantJSON
	body := map[string]any{"name": "Acme Corp", "domains": []map[string]any{{"domain": domain}}}
	if code := b.do("POST", "/api/v1/tenants", e2eBootstrapKey, body, &created); code != http.StatusCreated {
		t.Fatalf("POST /api/v1/tenants = %d, want 201", code)
	}
	if !strings.HasPrefix(created.ID, "tnt_") || created.Name != "Acme Corp" || created.Status != "active" {
		t.Fatalf("created tenant = %+v, want tnt_… Acme Corp active", created)
	}

	// A SAML connection made through the API is served by the upstream
	// endpoints under the issuer.
	var conn struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		SAML   struct {
			SPEntityID    string `json:"sp_entity_id"`
			SPMetadataURL string `json:"sp_metadata_url"`
		} `json:"saml"`
	}
	body = map[string]any{"type": "saml", "name": "Okta"}
	if code := b.do("POST", "/api/v1/tenants/"+created.ID+"/connections", e2eBootstrapKey, body, &conn); code != http.StatusCreated {
		t.Fatalf("POST connection = %d, want 201", code)
	}
	if conn.SAML.SPEntityID != b.base+"/sso/saml/"+conn.ID || conn.SAML.SPMetadataURL == "" {
		t.Errorf("connection = %+v, want SP entity id %s/sso/saml/%s", conn, b.base, conn.ID)
	}
	metadata := spMetadata(t, b, conn.ID)

	kidsBefore := jwksKIDs(t, b)
	b.stop()
	b = startBroker(t, env)

	var got tenantJSON
	if code := b.do("GET", "/api/v1/tenants/"+created.ID, e2eBootstrapKey, nil, &got); code != http.StatusOK {
		t.Fatalf("GET tenant after restart = %d, want 200", code)
	}
	// The signing keys survived too: the JWKS is the same one.
	if after := jwksKIDs(t, b); strings.Join(kidsBefore, ",") != strings.Join(after, ",") {
		t.Errorf("JWKS key ids changed across a restart: %v, then %v", kidsBefore, after)
	}
	// So did the connection's SP key (the issuer, with its port, did not).
	if before, after := spCertificate(t, metadata), spCertificate(t, spMetadata(t, b, conn.ID)); before != after {
		t.Errorf("SP certificate changed across a restart")
	}
	if got.ID != created.ID || got.Name != "Acme Corp" {
		t.Errorf("tenant after restart = %+v, want %+v", got, created)
	}
	if len(got.Domains) != 1 || got.Domains[0].Domain != domain {
		t.Errorf("tenant domains after restart = %+v, want [%s]", got.Domains, domain)
	}
	b.stop()

	// Every migration ran, and the CLI sees the same database.
	stdout, stderr, code := runBinary(t, env, "migrate", "status")
	if code != 0 {
		t.Fatalf("migrate status exited %d: %s", code, stderr)
	}
	if strings.Contains(stdout, "pending") || !strings.Contains(stdout, "VERSION") {
		t.Errorf("migrate status after serve:\n%s\nwant every migration applied", stdout)
	}
}

// TestServePostgresConcurrentStart starts two nodes on one fresh database
// at the same moment: both must come up, and each migration must have run
// exactly once.
func TestServePostgresConcurrentStart(t *testing.T) {
	t.Parallel()
	dbURL := testdb.PostgresURL(t)
	env := map[string]string{
		envDatabaseURL:     dbURL,
		envRedisURL:        ownRedis(t),
		envMasterKey:       testMasterKey,
		envBootstrapAPIKey: e2eBootstrapKey,
	}
	var wg sync.WaitGroup
	brokers := make([]*node, 2)
	for i := range brokers {
		wg.Go(func() { brokers[i] = startBroker(t, env) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// The two nodes share one database: a tenant made on one is seen by
	// the other.
	var created, seen tenantJSON
	if code := brokers[0].do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Shared"}, &created); code != http.StatusCreated {
		t.Fatalf("POST /api/v1/tenants on node 0 = %d", code)
	}
	if code := brokers[1].do("GET", "/api/v1/tenants/"+created.ID, e2eBootstrapKey, nil, &seen); code != http.StatusOK || seen.Name != "Shared" {
		t.Fatalf("GET tenant on node 1 = %d %+v, want 200 Shared", code, seen)
	}
	for _, b := range brokers {
		b.stop()
	}

	stdout, stderr, code := runBinary(t, env, "migrate", "status")
	if code != 0 {
		t.Fatalf("migrate status exited %d: %s", code, stderr)
	}
	versions := regexp.MustCompile(`(?m)^(\d+)\s`).FindAllStringSubmatch(stdout, -1)
	if len(versions) == 0 || strings.Contains(stdout, "pending") {
		t.Fatalf("migrate status:\n%s\nwant every migration applied", stdout)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, distinct int
	if err := conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&rows, &distinct); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if rows != len(versions) || distinct != len(versions) {
		t.Errorf("schema_migrations has %d rows (%d versions), want each of the %d migrations once", rows, distinct, len(versions))
	}
}

func TestServeBadConfigurationExits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, stderr, code := runBinary(t, map[string]string{
		envListen:          "abc",
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(dir, "idbroker.db")),
		envBootstrapAPIKey: "tooshortbootstrapsecret",
		envMasterKey:       "c2VjcmV0LW1hc3Rlci1rZXktdmFsdWU=",
	}, "serve")
	if code == 0 {
		t.Fatalf("serve with IDBROKER_LISTEN=abc exited 0")
	}
	for _, want := range []string{`IDBROKER_LISTEN: "abc" is not host:port`, "IDBROKER_BOOTSTRAP_API_KEY:", "IDBROKER_MASTER_KEY:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not contain %q", stderr, want)
		}
	}
	for _, secret := range []string{"tooshortbootstrapsecret", "c2VjcmV0LW1hc3Rlci1rZXktdmFsdWU="} {
		if strings.Contains(stderr, secret) {
			t.Errorf("stderr %q shows a secret", stderr)
		}
	}
	// Nothing was created: a bad start leaves no database behind.
	if _, err := os.Stat(filepath.Join(dir, "idbroker.db")); !os.IsNotExist(err) {
		t.Errorf("bad configuration created the database (stat: %v)", err)
	}
}

func TestServePostgresRequiresMasterKey(t *testing.T) {
	t.Parallel()
	_, stderr, code := runBinary(t, map[string]string{
		envDatabaseURL: "postgres://postgres@127.0.0.1:1/none",
	}, "serve")
	if code == 0 || !strings.Contains(stderr, "IDBROKER_MASTER_KEY: required with a PostgreSQL database") {
		t.Errorf("serve on Postgres without a master key: exit %d, stderr %q", code, stderr)
	}
}

func TestAPIKeyCreate(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
	}
	if _, stderr, code := runBinary(t, env, "migrate", "up"); code != 0 {
		t.Fatalf("migrate up exited %d: %s", code, stderr)
	}
	stdout, stderr, code := runBinary(t, env, "apikey", "create", "--name", "ci")
	if code != 0 {
		t.Fatalf("apikey create exited %d: %s", code, stderr)
	}
	key := strings.TrimSpace(stdout)
	if key == "" || strings.ContainsAny(key, " \n") {
		t.Fatalf("apikey create printed %q, want the key alone on stdout", stdout)
	}
	if strings.Contains(stderr, key) {
		t.Errorf("apikey create logged the key on stderr")
	}

	b := startBroker(t, env, "--no-migrate")
	if code := b.do("GET", "/api/v1/tenants", key, nil, nil); code != http.StatusOK {
		t.Errorf("GET /api/v1/tenants with the created key = %d, want 200", code)
	}
	b.stop()
}

func TestKeysRotate(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
	}
	if _, stderr, code := runBinary(t, env, "migrate", "up"); code != 0 {
		t.Fatalf("migrate up exited %d: %s", code, stderr)
	}
	for i := range 2 {
		if _, stderr, code := runBinary(t, env, "keys", "rotate", "--overlap", "1h"); code != 0 {
			t.Fatalf("keys rotate #%d exited %d: %s", i+1, code, stderr)
		}
	}
	if _, stderr, code := runBinary(t, env, "keys", "rotate", "--overlap", "soon"); code != exitUsage {
		t.Errorf("keys rotate --overlap soon exited %d, want %d: %s", code, exitUsage, stderr)
	}
	// Two rotations: the second demoted the first's keys, which stay
	// published for the overlap beside the new active ones.
	b := startBroker(t, env, "--no-migrate")
	if kids := jwksKIDs(t, b); len(kids) != 4 {
		t.Errorf("JWKS after two rotations = %v, want 4 keys (2 active, 2 overlapping)", kids)
	}
	b.stop()
}

func TestDevSeedsDemoTenantOnce(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envBootstrapAPIKey: e2eBootstrapKey,
	}
	for range 2 {
		b := startBroker(t, env, "--dev")
		var page struct {
			Data []tenantJSON `json:"data"`
		}
		if code := b.do("GET", "/api/v1/tenants?limit=100", e2eBootstrapKey, nil, &page); code != http.StatusOK {
			t.Fatalf("GET /api/v1/tenants = %d", code)
		}
		var demo int
		for _, tn := range page.Data {
			for _, d := range tn.Domains {
				if d.Domain == "example.com" && d.Verified {
					demo++
				}
			}
		}
		if demo != 1 {
			t.Errorf("%d tenants hold example.com verified, want exactly 1: %+v", demo, page.Data)
		}
		if !strings.Contains(b.output.String(), "DEVELOPMENT MODE") {
			t.Errorf("--dev did not log that development mode is on")
		}
		b.stop()
	}
}

func TestServeNoMigrateRefusesOldSchema(t *testing.T) {
	t.Parallel()
	_, stderr, code := runBinary(t, map[string]string{
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envListen:      freeAddr(t),
	}, "serve", "--no-migrate")
	if code == 0 || !strings.Contains(stderr, "pending migrations") || !strings.Contains(stderr, "idbroker migrate up") {
		t.Errorf("serve --no-migrate on an empty database: exit %d, stderr %q; want a refusal naming migrate up", code, stderr)
	}
}

func TestServeRedisUnreachable(t *testing.T) {
	t.Parallel()
	_, stderr, code := runBinary(t, map[string]string{
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envListen:      freeAddr(t),
		envRedisURL:    "redis://:redispassword@127.0.0.1:1/0",
	}, "serve")
	if code == 0 || !strings.Contains(stderr, "Redis") {
		t.Errorf("serve with Redis unreachable: exit %d, stderr %q; want a failure naming Redis", code, stderr)
	}
	if strings.Contains(stderr, "redispassword") {
		t.Errorf("stderr %q shows the Redis password", stderr)
	}
}

// checkSurfaces checks that every surface is mounted: the OpenID Provider
// (discovery, JWKS), SCIM and the operator API.
func checkSurfaces(t *testing.T, b *node) {
	t.Helper()
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if code := b.do("GET", "/.well-known/openid-configuration", "", nil, &disc); code != http.StatusOK {
		t.Errorf("GET discovery = %d, want 200", code)
	}
	if disc.Issuer != b.base {
		t.Errorf("discovery issuer = %q, want %q (IDBROKER_ISSUER)", disc.Issuer, b.base)
	}
	if kids := jwksKIDs(t, b); len(kids) < 2 {
		t.Errorf("JWKS has keys %v, want an RS256 and an ES256 key", kids)
	}
	if code := b.do("GET", "/scim/v2/dir_00000000000000000000000000/Users", "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET SCIM Users without a token = %d, want 401", code)
	}
}

// jwksKIDs returns "alg:kid" of each key of the broker's JWKS, in order.
func jwksKIDs(t *testing.T, b *node) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if code := b.do("GET", "/.well-known/jwks.json", "", nil, &set); code != http.StatusOK {
		t.Fatalf("GET /.well-known/jwks.json = %d, want 200", code)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Alg+":"+k.KID)
	}
	return kids
}

// TestReadyzFollowsTheDatabase cuts a running node off its database:
// /readyz turns 503 naming the database (so a load balancer drains the
// node) while /healthz stays 200 (so it is not restarted), and both
// recover once the database is back.
func TestReadyzFollowsTheDatabase(t *testing.T) {
	t.Parallel()
	dbURL := testdb.PostgresURL(t)
	b := startBroker(t, map[string]string{
		envDatabaseURL: dbURL,
		envMasterKey:   testMasterKey,
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testdb.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	setConnections := func(allow bool) {
		t.Helper()
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s WITH ALLOW_CONNECTIONS %t", name, allow)); err != nil {
			t.Fatal(err)
		}
		if !allow {
			if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
				t.Fatal(err)
			}
		}
	}

	setConnections(false)
	defer setConnections(true)
	waitStatus(t, b, "/readyz", http.StatusServiceUnavailable, func(h healthJSON) bool {
		return h.Checks["database"] == "fail" && h.Checks["cache"] == "ok"
	})
	if code := b.do("GET", "/healthz", "", nil, nil); code != http.StatusOK {
		t.Errorf("GET /healthz with the database down = %d, want 200", code)
	}

	setConnections(true)
	waitStatus(t, b, "/readyz", http.StatusOK, func(h healthJSON) bool { return h.Checks["database"] == "ok" })
	b.stop()
}

// waitStatus polls path until it answers code with a body ok accepts, for
// up to 15 seconds.
func waitStatus(t *testing.T, b *node, path string, code int, ok func(healthJSON) bool) {
	t.Helper()
	var last healthJSON
	var lastCode int
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		last = healthJSON{}
		if lastCode = b.do("GET", path, "", nil, &last); lastCode == code && ok(last) {
			return
		}
	}
	t.Fatalf("GET %s = %d %+v, want %d", path, lastCode, last, code)
}

// spMetadata returns the SAML SP metadata of connection id.
func spMetadata(t *testing.T, b *node, id string) string {
	t.Helper()
	resp, err := b.client.Get(b.base + "/sso/saml/" + id + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), "EntityDescriptor") {
		t.Fatalf("GET SP metadata = %d %q, want 200 and an EntityDescriptor", resp.StatusCode, raw)
	}
	return string(raw)
}

// spCertificate returns the (first) certificate in SP metadata.
func spCertificate(t *testing.T, metadata string) string {
	t.Helper()
	m := regexp.MustCompile(`X509Certificate>([^<]+)<`).FindStringSubmatch(metadata)
	if m == nil {
		t.Fatalf("no certificate in SP metadata:\n%s", metadata)
	}
	return strings.TrimSpace(m[1])
}

// TestNewerSchemaIsNamed: a database a newer idbroker migrated (a
// migration this binary lacks) is served, as an old node of a rolling
// upgrade must be, but serve warns at start, naming the migration and the
// rollback section, and migrate status and up list and name it.
func TestNewerSchemaIsNamed(t *testing.T) {
	t.Parallel()
	dbFile := filepath.Join(t.TempDir(), "idbroker.db")
	env := map[string]string{envDatabaseURL: "sqlite://" + filepath.ToSlash(dbFile)}
	if out, errOut, code := runBinary(t, env, "migrate", "up"); code != 0 {
		t.Fatalf("migrate up = %d\n%s\n%s", code, out, errOut)
	}
	db, err := sql.Open("sqlite", dbFile)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from_a_newer_version', ?)", time.Now().UnixMicro())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runBinary(t, env, "migrate", "status")
	if code != 0 || !strings.Contains(out, "9999") || !strings.Contains(out, "from_a_newer_version (newer than this binary)") ||
		!strings.Contains(errOut, "9999_from_a_newer_version") {
		t.Errorf("migrate status = %d\n%s\n%s\nwant the newer migration listed and named on stderr", code, out, errOut)
	}
	if _, errOut, code := runBinary(t, env, "migrate", "up"); code != 0 || !strings.Contains(errOut, "newer idbroker") {
		t.Errorf("migrate up = %d, stderr %q; want success and the newer migration named", code, errOut)
	}
	b := startBroker(t, env)
	if log := b.output.String(); !strings.Contains(log, "migrated by a newer idbroker") || !strings.Contains(log, "9999_from_a_newer_version") {
		t.Errorf("serve did not warn about the newer migration:\n%s", log)
	}
	b.stop()
}
