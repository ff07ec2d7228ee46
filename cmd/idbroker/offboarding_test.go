package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestOffboardingThroughTheBinary drives a tenant's departure through the
// real binary on both backends (the embedded SQLite default; PostgreSQL
// and Redis with two nodes): DELETE closes every way in on every node at
// once (tokens, refresh, SCIM, the portal, the SP endpoints, back-channel
// logouts sent); restore brings back the tenant and its directory but no
// session or portal link; deleted again and past the restore window (its
// deletion moved 31 days back while the nodes are stopped: the clock the
// erase job reads), a restarted node erases it, and no table and no Redis
// key holds its id but the erase report and its own tombstone. Another
// tenant is untouched throughout.
func TestOffboardingThroughTheBinary(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "idbroker.db")
		env := map[string]string{envDatabaseURL: "sqlite://" + filepath.ToSlash(path), envBootstrapAPIKey: e2eBootstrapKey}
		offboard(t, env, 1, func(t *testing.T, tenant string) {
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec("UPDATE tenants SET deleted_at = deleted_at - ? WHERE id = ?", (31 * 24 * time.Hour).Microseconds(), tenant); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, id string) map[string]int {
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			return scanSQLite(t, db, id)
		}, nil)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		rs := sessionstest.StartServer(t)
		env := productionEnv(t, rs.URL())
		url := env[envDatabaseURL]
		rdb := rs.Client(t)
		offboard(t, env, 2, func(t *testing.T, tenant string) {
			conn, err := pgx.Connect(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), "UPDATE tenants SET deleted_at = deleted_at - interval '31 days' WHERE id = $1", tenant); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, id string) map[string]int {
			return scanPostgres(t, url, id)
		}, func(t *testing.T, id string) []string {
			return redisKeysNaming(t, rdb, id)
		})
	})
}

// offboard is TestOffboardingThroughTheBinary on one backend: backdate
// moves the tenant's deletion back past the restore window, scan lists
// the tables holding an id (rows per table), keys the Redis keys (nil
// without Redis).
func offboard(t *testing.T, env map[string]string, n int,
	backdate func(t *testing.T, tenant string),
	scan func(t *testing.T, id string) map[string]int,
	keys func(t *testing.T, id string) []string) {
	t.Helper()
	logouts := make(chan string, 16)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil {
			logouts <- r.PostForm.Get("logout_token")
		}
	}))
	defer rcv.Close()
	nodes := startNodes(t, env, n)
	a := nodes[0]
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code := a.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{
		"name": "App", "redirect_uris": []string{"https://app.example/cb"}, "backchannel_logout_uri": rcv.URL,
	}, &app); code != http.StatusCreated {
		t.Fatalf("POST /applications = %d", code)
	}
	c := &rpClient{t: t, node: a, clientID: app.ClientID, secret: app.ClientSecret}

	// Tenant A is the dev tenant (its domain example.com and the dev IdP's
	// connection); tenant B is the other.
	var tenants struct {
		Data []tenantJSON `json:"data"`
	}
	if code := a.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) != 1 {
		t.Fatalf("GET /tenants = %d, %+v; want the dev tenant", code, tenants)
	}
	ta := tenants.Data[0].ID
	var tb tenantJSON
	if code := a.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Other"}, &tb); code != http.StatusCreated {
		t.Fatalf("POST /tenants = %d", code)
	}
	directory := func(tenant string) scimDirectory {
		t.Helper()
		var d scimDirectory
		if code := a.do("POST", "/api/v1/tenants/"+tenant+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &d); code != http.StatusCreated {
			t.Fatalf("POST directory = %d", code)
		}
		if r := d.pushUser(t, a, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"carol@example.com","active":true,`+
			`"emails":[{"value":"carol@example.com","primary":true}],"name":{"givenName":"Carol","familyName":"Erased"}}`); r.status != http.StatusCreated {
			t.Fatalf("SCIM create user = %d %s", r.status, r.raw)
		}
		if r := call(t, a, "POST", d.SCIMBaseURL+"/Groups", "Bearer "+d.BearerToken, "application/scim+json",
			[]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"eng"}`)); r.status != http.StatusCreated {
			t.Fatalf("SCIM create group = %d %s", r.status, r.raw)
		}
		return d
	}
	dirA, dirB := directory(ta), directory(tb.ID)
	var saml struct {
		ID string `json:"id"`
	}
	if code := a.do("POST", "/api/v1/tenants/"+ta+"/connections", e2eBootstrapKey, map[string]any{"type": "saml", "name": "Okta SAML"}, &saml); code != http.StatusCreated {
		t.Fatalf("POST SAML connection = %d", code)
	}
	var link struct {
		URL string `json:"url"`
	}
	if code := a.do("POST", "/api/v1/portal_links", e2eBootstrapKey, map[string]any{"tenant_id": ta, "intent": "sso"}, &link); code != http.StatusCreated {
		t.Fatalf("POST /portal_links = %d", code)
	}
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) int {
		t.Helper()
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	scimUsers := func(n *node, d scimDirectory) int {
		return call(t, n, "GET", d.SCIMBaseURL+"/Users", "Bearer "+d.BearerToken, "", nil).status
	}
	tok := c.login("alice@example.com")
	for _, n := range nodes {
		if !c.active(n, tok.AccessToken) || scimUsers(n, dirA) != http.StatusOK || get(n.base+"/sso/saml/"+saml.ID+"/metadata") != http.StatusOK {
			t.Fatalf("%s: the tenant is not in service before its deletion", n.base)
		}
	}

	// ---- DELETE, through the last node ----
	last := nodes[len(nodes)-1]
	if code := last.do("DELETE", "/api/v1/tenants/"+ta, e2eBootstrapKey, nil, nil); code != http.StatusOK && code != http.StatusNoContent {
		t.Fatalf("DELETE tenant = %d", code)
	}
	for _, n := range nodes {
		if c.active(n, tok.AccessToken) {
			t.Errorf("%s: the access token is active after DELETE", n.base)
		}
		if code := c.userinfo(n, tok.AccessToken); code != http.StatusUnauthorized {
			t.Errorf("%s: userinfo %d after DELETE, want 401", n.base, code)
		}
		if code := scimUsers(n, dirA); code != http.StatusUnauthorized {
			t.Errorf("%s: SCIM with the deleted tenant's token: %d, want 401", n.base, code)
		}
		if code := scimUsers(n, dirB); code != http.StatusOK {
			t.Errorf("%s: SCIM of the other tenant: %d, want 200", n.base, code)
		}
		if code := get(n.base + "/sso/saml/" + saml.ID + "/metadata"); code != http.StatusNotFound {
			t.Errorf("%s: the deleted tenant's SAML metadata: %d, want 404", n.base, code)
		}
		if r := call(t, n, "POST", n.base+"/sso/saml/"+saml.ID+"/acs", "", "application/x-www-form-urlencoded", []byte("SAMLResponse=x")); r.status < 400 {
			t.Errorf("%s: the deleted tenant's ACS: %d, want a refusal", n.base, r.status)
		}
		for _, p := range []string{"/api/v1/tenants/" + ta, "/api/v1/directories/" + dirA.ID + "/users", "/api/v1/connections/" + saml.ID} {
			if code := n.do("GET", p, e2eBootstrapKey, nil, nil); code != http.StatusNotFound {
				t.Errorf("%s: GET %s = %d after DELETE, want 404", n.base, p, code)
			}
		}
	}
	var fresh tokens
	if code := c.refreshInto(a, tok.RefreshToken, &fresh); code == http.StatusOK {
		t.Error("the refresh token works after DELETE")
	}
	if code := get(link.URL); code < 400 {
		t.Errorf("the deleted tenant's portal link opens: %d", code)
	}
	select {
	case lt := <-logouts:
		if claim(t, lt, "sid") == "" {
			t.Errorf("back-channel logout token without sid: %s", lt)
		}
	case <-time.After(20 * time.Second):
		t.Error("no back-channel logout after DELETE")
	}

	// ---- restore: the tenant and its directory, not its sessions ----
	if code := a.do("POST", "/api/v1/tenants/"+ta+"/restore", e2eBootstrapKey, nil, nil); code != http.StatusOK {
		t.Fatalf("restore = %d", code)
	}
	for _, n := range nodes {
		if c.active(n, tok.AccessToken) {
			t.Errorf("%s: a session ended by DELETE is back after the restore", n.base)
		}
		if code := scimUsers(n, dirA); code != http.StatusOK {
			t.Errorf("%s: SCIM after the restore: %d, want 200", n.base, code)
		}
	}
	if code := c.refreshInto(a, tok.RefreshToken, &fresh); code == http.StatusOK {
		t.Error("the refresh token works after the restore")
	}
	if code := get(link.URL); code < 400 {
		t.Errorf("the portal link opens after the restore: %d", code)
	}
	tok = c.login("alice@example.com") // a new sign-in works

	// ---- deleted again, past the window: erased by a restarted node ----
	if code := a.do("DELETE", "/api/v1/tenants/"+ta, e2eBootstrapKey, nil, nil); code != http.StatusOK && code != http.StatusNoContent {
		t.Fatalf("DELETE tenant again = %d", code)
	}
	// The other tenant deprovisions someone: a tombstone of its own.
	r := call(t, a, "POST", dirB.SCIMBaseURL+"/Users", "Bearer "+dirB.BearerToken, "application/scim+json",
		[]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"dave@other.example","active":true}`))
	goneB := regexp.MustCompile(`"id":"(usr_[^"]+)"`).FindStringSubmatch(r.raw)
	if r.status != http.StatusCreated || goneB == nil {
		t.Fatalf("SCIM create = %d %s", r.status, r.raw)
	}
	if r := call(t, a, "DELETE", dirB.SCIMBaseURL+"/Users/"+goneB[1], "Bearer "+dirB.BearerToken, "", nil); r.status != http.StatusNoContent {
		t.Fatalf("SCIM delete = %d %s", r.status, r.raw)
	}
	if found := scan(t, ta); len(found) < 8 {
		t.Fatalf("before the erasure the tenant's id is only in %v: the seed is not a full data set", found)
	}
	for _, n := range nodes {
		n.stop()
	}
	backdate(t, ta)
	// Without --dev: the dev seed would bring a demo tenant back.
	b := startBroker(t, env)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var deleted struct {
			Data []tenantJSON `json:"data"`
		}
		if code := b.do("GET", "/api/v1/tenants?status=deleted", e2eBootstrapKey, nil, &deleted); code == http.StatusOK && len(deleted.Data) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tenant deleted 31 days ago is still listed as deleted: %+v", deleted)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := b.do("POST", "/api/v1/tenants/"+ta+"/restore", e2eBootstrapKey, nil, nil); code != http.StatusNotFound {
		t.Errorf("restore of an erased tenant = %d, want 404", code)
	}
	if found := scan(t, ta); len(found) != 1 || found["tenant_erasures"] != 1 {
		t.Errorf("after the erasure the tenant's id is in %v; want its erase report (tenant_erasures) alone", found)
	}
	// The people of the erased tenant are nowhere; the other tenant's
	// carol is where she was.
	if keys != nil {
		// The other tenant's tombstones stay: its deleted user's.
		if left := keys(t, goneB[1]); len(left) == 0 {
			t.Errorf("erasing tenant %s took the other tenant's tombstone of its deleted user %s", ta, goneB[1])
		}
	}
	if found := scan(t, "alice@example.com"); len(found) != 0 {
		t.Errorf("after the erasure the erased tenant's user is in %v", found)
	}
	if found := scan(t, tb.ID); found["users"] != 1 {
		t.Errorf("the other tenant's rows after the erasure: %v", found)
	}
	if keys != nil {
		// Its own tombstone stays (the ledger's hash and its numbers).
		for _, k := range keys(t, ta) {
			if !strings.Contains(k, "tombstones") {
				t.Errorf("after the erasure Redis key %s names the tenant", k)
			}
		}
	}
	dirB.SCIMBaseURL = strings.Replace(dirB.SCIMBaseURL, a.base, b.base, 1)
	if code := scimUsers(b, dirB); code != http.StatusOK {
		t.Errorf("SCIM of the other tenant after the erasure: %d, want 200", code)
	}
	if code := b.do("GET", "/api/v1/tenants/"+tb.ID, e2eBootstrapKey, nil, nil); code != http.StatusOK {
		t.Errorf("the other tenant after the erasure: %d", code)
	}
}

// scanSQLite counts, per table, the rows whose text holds id.
func scanSQLite(t *testing.T, db *sql.DB, id string) map[string]int {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, s)
	}
	rows.Close()
	found := map[string]int{}
	for _, tb := range tables {
		rs, err := db.Query(`SELECT * FROM "` + tb + `"`)
		if err != nil {
			t.Fatalf("scan %s: %v", tb, err)
		}
		cols, _ := rs.Columns()
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, v := range vals {
				if raw, ok := v.([]byte); ok {
					b.Write(raw)
				} else {
					fmt.Fprint(&b, v)
				}
				b.WriteByte('|')
			}
			if strings.Contains(b.String(), id) {
				found[tb]++
			}
		}
		rs.Close()
	}
	return found
}

// scanPostgres counts, per table, the rows whose text holds id, as the
// owner (no row security).
func scanPostgres(t *testing.T, url, id string) map[string]int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, tb := range tables {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{tb}.Sanitize()+` x WHERE x::text LIKE '%' || $1 || '%'`, id).Scan(&n); err != nil {
			t.Fatalf("scan %s: %v", tb, err)
		}
		if n > 0 {
			found[tb] = n
		}
	}
	return found
}

// redisKeysNaming lists the keys whose name or value holds id.
func redisKeysNaming(t *testing.T, rdb redis.UniversalClient, id string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if strings.Contains(key, id) {
			out = append(out, key)
			continue
		}
		var vals []string
		switch typ, _ := rdb.Type(ctx, key).Result(); typ {
		case "string":
			v, _ := rdb.Get(ctx, key).Result()
			vals = []string{v}
		case "hash":
			m, _ := rdb.HGetAll(ctx, key).Result()
			for k, v := range m {
				vals = append(vals, k, v)
			}
		case "set":
			vals, _ = rdb.SMembers(ctx, key).Result()
		case "zset":
			vals, _ = rdb.ZRange(ctx, key, 0, -1).Result()
		case "list":
			vals, _ = rdb.LRange(ctx, key, 0, -1).Result()
		}
		for _, v := range vals {
			if strings.Contains(v, id) {
				out = append(out, key)
				break
			}
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPersonErasureThroughTheBinary: a person deleted over SCIM (GDPR
// article 17 through the tenant's directory) is signed out everywhere and
// leaves their email in no table but the events, which go with the event
// retention: not in the audit chain, which keeps its rows for the tenant's
// life (an operator's revoke_sessions row names them by id), not in usage
// records (ids). Another person of the same tenant is untouched.
func TestPersonErasureThroughTheBinary(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "idbroker.db")
			env := map[string]string{envDatabaseURL: "sqlite://" + filepath.ToSlash(path), envBootstrapAPIKey: e2eBootstrapKey}
			scan := func(id string) map[string]int {
				db, err := sql.Open("sqlite", path)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				return scanSQLite(t, db, id)
			}
			if backend == "postgres" {
				env = productionEnv(t, ownRedis(t))
				scan = func(id string) map[string]int { return scanPostgres(t, env[envDatabaseURL], id) }
			}
			n := startBroker(t, env, "--dev")
			c := newRPClient(t, n, "App", nil)
			var tenants struct {
				Data []tenantJSON `json:"data"`
			}
			if code := n.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) != 1 {
				t.Fatalf("GET /tenants = %d", code)
			}
			tenant := tenants.Data[0].ID
			var dir scimDirectory
			if code := n.do("POST", "/api/v1/tenants/"+tenant+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
				t.Fatalf("POST directory = %d", code)
			}
			push := func(email string) string {
				t.Helper()
				r := dir.pushUser(t, n, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+email+`","active":true,`+
					`"emails":[{"value":"`+email+`","primary":true}],"name":{"givenName":"Given","familyName":"Family"}}`)
				id := regexp.MustCompile(`"id":"(usr_[^"]+)"`).FindStringSubmatch(r.raw)
				if r.status != http.StatusCreated || id == nil {
					t.Fatalf("SCIM create %s = %d %s", email, r.status, r.raw)
				}
				return id[1]
			}
			const gone, kept = "alice@example.com", "bob@example.com" // the dev IdP's people
			goneID, _ := push(gone), push(kept)
			tok := c.login(gone)
			keptTok := c.login(kept)
			if code := n.do("POST", "/api/v1/users/"+goneID+"/revoke_sessions", e2eBootstrapKey, nil, nil); code != http.StatusNoContent {
				t.Fatalf("revoke_sessions = %d", code)
			}
			tok = c.login(gone)
			if r := call(t, n, "DELETE", dir.SCIMBaseURL+"/Users/"+goneID, "Bearer "+dir.BearerToken, "", nil); r.status != http.StatusNoContent {
				t.Fatalf("SCIM delete = %d %s", r.status, r.raw)
			}
			if c.active(n, tok.AccessToken) {
				t.Error("the erased person's access token is active")
			}
			var fresh tokens
			if code := c.refreshInto(n, tok.RefreshToken, &fresh); code == http.StatusOK {
				t.Error("the erased person's refresh token works")
			}
			if !c.active(n, keptTok.AccessToken) {
				t.Error("the other person's session ended")
			}
			r := call(t, n, "GET", n.base+"/api/v1/audit_events?tenant_id="+tenant, "Bearer "+e2eBootstrapKey, "", nil)
			if r.status != http.StatusOK || !strings.Contains(r.raw, goneID) {
				t.Fatalf("audit events = %d %s; want the rows naming %s", r.status, r.raw, goneID)
			}
			if strings.Contains(r.raw, gone) {
				t.Errorf("the audit log still names the erased person by email: %s", r.raw)
			}
			for table := range scan(gone) {
				if table != "events" {
					t.Errorf("after the deletion the person's email is in %s (only events, until their retention, may hold it)", table)
				}
			}
			if found := scan(kept); found["users"] != 1 {
				t.Errorf("the other person's rows: %v", found)
			}
		})
	}
}

// TestRestoreCheckWarnsBeyondTheHorizon: a database whose last check is
// older than the tombstones the horizon made Redis forget (restored from a
// backup older than IDBROKER_TOMBSTONE_HORIZON_DAYS) is warned of by
// restore-check; once checked, it is not.
func TestRestoreCheckWarnsBeyondTheHorizon(t *testing.T) {
	t.Parallel()
	rs := sessionstest.StartServer(t)
	env := map[string]string{
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envRedisURL:    rs.URL(),
	}
	if _, errOut, code := runBinary(t, env, "migrate", "up"); code != 0 {
		t.Fatalf("migrate up = %d %s", code, errOut)
	}
	ledger := sessions.NewRedisLedger(rs.Client(t), "")
	ctx := context.Background()
	old := time.Now().Add(-400 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for _, k := range []string{"api_key:key_old", "api_key:key_new"} {
		if err := ledger.Put(ctx, k, []byte(`{"kind":"api_key","id":"`+k[8:]+`","at":"`+old+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ledger.Forget(ctx, []string{"api_key:key_old"}); err != nil {
		t.Fatal(err)
	}
	const warning = "warning: the database is older than the tombstone horizon"
	out, errOut, code := runBinary(t, env, "restore-check")
	if code != 0 || !strings.Contains(out, warning) || !strings.Contains(errOut+out, "IDBROKER_TOMBSTONE_HORIZON_DAYS") {
		t.Fatalf("restore-check on a database older than the horizon = %d:\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := runBinary(t, env, "restore-check"); code != 0 || strings.Contains(out, warning) {
		t.Errorf("restore-check once checked = %d:\n%s\n%s", code, out, errOut)
	}
}
