package scim_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
	"github.com/idbroker/idbroker/usage"
)

// countingStore counts the full token lookups a node makes, and can run a
// function just before the next one.
type countingStore struct {
	*store.DB
	lookups atomic.Int64
	before  atomic.Pointer[func()]
}

func (c *countingStore) AuthenticateDirectory(ctx context.Context, dir string, hash []byte) (string, store.TenantStatus, error) {
	c.lookups.Add(1)
	if f := c.before.Swap(nil); f != nil {
		(*f)()
	}
	return c.DB.AuthenticateDirectory(ctx, dir, hash)
}

// lockedBuffer is a log sink for concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// limitHeader is set by the tests' stand-in rate limiter, which runs after
// authentication with the tenant it chose, as the real one does.
const limitHeader = "X-Test-Limit-Tenant"

// node is another SCIM server (another broker node) over e's database,
// sending to e's directory with e's token, with a token memory of its own.
func (e *env) node(t *testing.T) (*env, *countingStore, *lockedBuffer) {
	t.Helper()
	cs := &countingStore{DB: e.st}
	logs := &lockedBuffer{}
	ec := echo.New()
	hs := httptest.NewServer(ec)
	t.Cleanup(hs.Close)
	srv, err := scim.New(scim.Config{
		Issuer: hs.URL, Store: cs, Sessions: e.sessions, Usage: usage.New(e.st, nil, nil),
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Limit: func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				t, _ := store.TenantFrom(c.Request().Context())
				c.Response().Header().Set(limitHeader, t)
				return next(c)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Mount(ec)
	n := *e
	n.srv, n.http = srv, hs
	return &n, cs, logs
}

// remember makes n remember e's token through a write, and checks that
// the next write takes the remembered tenant instead of a lookup.
func remember(t *testing.T, n *env, cs *countingStore) {
	t.Helper()
	n.do("POST", "/Users", userBody(strings.ToLower(secrets.NewToken("u"))+"@acme.com", nil)).want(t, http.StatusCreated)
	before := cs.lookups.Load()
	n.do("POST", "/Users", userBody(strings.ToLower(secrets.NewToken("u"))+"@acme.com", nil)).want(t, http.StatusCreated)
	if got := cs.lookups.Load(); got != before {
		t.Fatalf("a write with a token the node accepted made %d lookups, want none", got-before)
	}
}

// tenantRows is what the database holds of tenant: rows per table, and the
// users' and groups' versions, so that an update shows too.
func tenantRows(t *testing.T, owner *pgx.Conn, tenant string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, q := range map[string]string{
		"users":         "SELECT count(*)::text || '/' || coalesce(sum(version), 0)::text FROM users WHERE tenant_id = $1",
		"groups":        "SELECT count(*)::text || '/' || coalesce(sum(version), 0)::text FROM groups WHERE tenant_id = $1",
		"events":        "SELECT count(*)::text FROM events WHERE tenant_id = $1",
		"usage_records": "SELECT count(*)::text FROM usage_records WHERE tenant_id = $1",
		"scim_errors":   "SELECT count(*)::text FROM scim_errors WHERE tenant_id = $1",
	} {
		var v string
		if err := owner.QueryRow(context.Background(), q, tenant).Scan(&v); err != nil {
			t.Fatal(err)
		}
		out[name] = v
	}
	return out
}

func sameRows(t *testing.T, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s: %s before the refused writes, %s after", k, v, after[k])
		}
	}
}

// ownerConn is a connection as the login user, past row security, to read
// back what the tests' writes left.
func ownerConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestRememberedTokenStopsAtOnce: two nodes remember a directory's token
// from writes it made; then the token is rotated, the directory deleted,
// or the tenant paused, cancelled, deleted or erased. The next write with
// the old token, on either node, answers what the lookup would (401, or
// 403 for a read-only tenant) and leaves nothing: no row, no event, no
// usage, no error in the portal's log, and no trace of the tenant in the
// answer.
func TestRememberedTokenStopsAtOnce(t *testing.T) {
	url := storetest.PostgresURL(t)
	st := storetest.Open(t, url, storetest.NewCipher(t))
	owner := ownerConn(t, url)
	status := func(s store.TenantStatus) func(t *testing.T, e *env) {
		return func(t *testing.T, e *env) {
			if _, err := e.st.UpdateTenant(e.ctx(), store.TenantUpdate{Status: &s}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name   string
		change func(t *testing.T, e *env)
		want   int
	}{
		{"token rotated", func(t *testing.T, e *env) {
			if err := e.st.SetDirectoryToken(e.ctx(), e.dir, secrets.HashToken(secrets.NewToken("scim"))); err != nil {
				t.Fatal(err)
			}
		}, http.StatusUnauthorized},
		{"directory deleted", func(t *testing.T, e *env) {
			if _, err := owner.Exec(context.Background(), "DELETE FROM directories WHERE id = $1", e.dir); err != nil {
				t.Fatal(err)
			}
		}, http.StatusUnauthorized},
		{"tenant paused", status(store.TenantPaused), http.StatusForbidden},
		{"tenant cancelled", status(store.TenantCancelled), http.StatusForbidden},
		{"tenant deleted", func(t *testing.T, e *env) {
			if _, err := e.st.SoftDeleteTenant(e.ctx()); err != nil {
				t.Fatal(err)
			}
		}, http.StatusUnauthorized},
		{"tenant erased", func(t *testing.T, e *env) {
			if err := e.st.DeleteTenant(e.ctx()); err != nil {
				t.Fatal(err)
			}
		}, http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, st, nil)
			n1, cs1, logs1 := e.node(t)
			n2, cs2, logs2 := e.node(t)
			remember(t, n1, cs1)
			remember(t, n2, cs2)
			id := n1.do("POST", "/Users", userBody("keep@acme.com", nil)).want(t, http.StatusCreated).str("id")

			c.change(t, e)
			before := tenantRows(t, owner, e.tenant)
			patch := map[string]any{"schemas": []string{scim.SchemaPatchOp},
				"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}
			for round := range 2 { // the remembered tenant, then the lookup as before
				if round == 1 {
					// The lookup's own 403 is kept for the portal, as it
					// always was; the guess's refusal kept nothing.
					sameRows(t, before, tenantRows(t, owner, e.tenant))
				}
				for _, r := range []resp{
					n1.do("POST", "/Users", userBody("new@acme.com", nil)),
					n2.do("PATCH", "/Users/"+id, patch),
				} {
					r.want(t, c.want)
					if c.want == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
						t.Fatalf("round %d: 401 without WWW-Authenticate", round)
					}
					if r.header.Get(limitHeader) != "" {
						t.Fatalf("round %d: the refusal carries the rate limiter's headers for tenant %q", round, r.header.Get(limitHeader))
					}
				}
			}
			after := tenantRows(t, owner, e.tenant)
			after["scim_errors"] = before["scim_errors"]
			sameRows(t, before, after)
			for _, l := range []*lockedBuffer{logs1, logs2} {
				if strings.Contains(l.String(), "level=ERROR") {
					t.Fatalf("a refused token was logged as a server error:\n%s", l)
				}
			}
		})
	}
}

// TestRememberedTokenOpensNoOtherDirectory: with both tenants' tokens
// remembered, tenant B's token against tenant A's directory URL (and the
// reverse) is refused, reads and writes alike, and writes nothing.
func TestRememberedTokenOpensNoOtherDirectory(t *testing.T) {
	url := storetest.PostgresURL(t)
	st := storetest.Open(t, url, storetest.NewCipher(t))
	owner := ownerConn(t, url)
	a := newEnv(t, st, nil)
	n, cs, _ := a.node(t)
	remember(t, n, cs)
	b := *n
	b.tenant, b.dir, b.token = a.newDirectory("Globex")
	remember(t, &b, cs)
	beforeA, beforeB := tenantRows(t, owner, a.tenant), tenantRows(t, owner, b.tenant)
	for _, x := range []struct{ dir, token string }{{a.dir, b.token}, {b.dir, a.token}} {
		n.doAs(x.dir, x.token, "POST", "/Users", userBody("mallory@acme.com", nil)).want(t, http.StatusUnauthorized)
		n.doAs(x.dir, x.token, "GET", "/Users", nil).want(t, http.StatusUnauthorized)
	}
	sameRows(t, beforeA, tenantRows(t, owner, a.tenant))
	sameRows(t, beforeB, tenantRows(t, owner, b.tenant))
	// Each token still opens its own directory, from memory.
	before := cs.lookups.Load()
	n.do("POST", "/Users", userBody("alice@acme.com", nil)).want(t, http.StatusCreated)
	b.do("POST", "/Users", userBody("alice@globex.com", nil)).want(t, http.StatusCreated)
	if got := cs.lookups.Load() - before; got != 0 {
		t.Fatalf("%d lookups for remembered tokens", got)
	}
}

// TestRememberedTokenStatusRace: when the check in the write fails but
// the lookup after it passes (the tenant was paused, then made active
// again in between), the write answers 503 with Retry-After, leaves
// nothing and is not logged as a server error; the IdP's retry succeeds.
func TestRememberedTokenStatusRace(t *testing.T) {
	url := storetest.PostgresURL(t)
	st := storetest.Open(t, url, storetest.NewCipher(t))
	owner := ownerConn(t, url)
	e := newEnv(t, st, nil)
	n, cs, logs := e.node(t)
	remember(t, n, cs)
	set := func(s store.TenantStatus) {
		if _, err := st.UpdateTenant(e.ctx(), store.TenantUpdate{Status: &s}); err != nil {
			t.Error(err)
		}
	}
	set(store.TenantPaused)
	reactivate := func() { set(store.TenantActive) }
	cs.before.Store(&reactivate)
	before := tenantRows(t, owner, e.tenant)
	r := n.do("POST", "/Users", userBody("bob@acme.com", nil)).want(t, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if r.header.Get(limitHeader) != "" {
		t.Fatal("the refusal carries the rate limiter's headers")
	}
	sameRows(t, before, tenantRows(t, owner, e.tenant))
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("logged as a server error:\n%s", logs)
	}
	n.do("POST", "/Users", userBody("bob@acme.com", nil)).want(t, http.StatusCreated)
}

// TestRememberedTokenOwnErrors: a write that fails before it reaches the
// store (a malformed body) is the request's own error when the token
// holds, kept for the portal as always; with a token that no longer
// holds it is the lookup's 401, and nothing is kept.
func TestRememberedTokenOwnErrors(t *testing.T) {
	url := storetest.PostgresURL(t)
	st := storetest.Open(t, url, storetest.NewCipher(t))
	owner := ownerConn(t, url)
	e := newEnv(t, st, nil)
	n, cs, _ := e.node(t)
	remember(t, n, cs)
	n.do("POST", "/Users", `{"schemas": [`).want(t, http.StatusBadRequest)
	if got := tenantRows(t, owner, e.tenant)["scim_errors"]; got != "1" {
		t.Fatalf("%s errors kept for the portal, want 1", got)
	}
	if err := st.SetDirectoryToken(e.ctx(), e.dir, secrets.HashToken(secrets.NewToken("scim"))); err != nil {
		t.Fatal(err)
	}
	n.do("POST", "/Users", `{"schemas": [`).want(t, http.StatusUnauthorized)
	if got := tenantRows(t, owner, e.tenant)["scim_errors"]; got != "1" {
		t.Fatalf("%s errors kept for the portal, want 1", got)
	}
}

// TestWhenTheTokenIsLookedUp: reads look the token up on every backend;
// writes too on SQLite, whose lookup is in process, so nothing is
// remembered there.
func TestWhenTheTokenIsLookedUp(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		n, cs, _ := e.node(t)
		n.do("POST", "/Users", userBody("a@acme.com", nil)).want(t, http.StatusCreated)
		before := cs.lookups.Load()
		n.do("GET", "/Users", nil).want(t, http.StatusOK)
		n.do("POST", "/Users", userBody("b@acme.com", nil)).want(t, http.StatusCreated)
		want := int64(1) // the read
		if st.Dialect() == "sqlite" {
			want = 2
		}
		if got := cs.lookups.Load() - before; got != want {
			t.Fatalf("%d lookups for a read and a write, want %d", got, want)
		}
	})
}
