package scim_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// TestWriteCapPerTenant: a tenant whose SCIM writes fill its cap (an
// IdP's initial sync) gets 429 with Retry-After in the SCIM error schema
// for the next write, and nothing of it is written; its reads and another
// tenant's writes are served meanwhile, and its own again once a write
// ends.
func TestWriteCapPerTenant(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := echo.New()
		hs := httptest.NewServer(e)
		t.Cleanup(hs.Close)
		writes := &ratelimit.Concurrency{Name: "scim_tenant_writes", Limit: 2, Key: ratelimit.ByTenant,
			Counts: func(c echo.Context) bool { return scim.IsWrite(c.Request().Method) }}
		srv, err := scim.New(scim.Config{Issuer: hs.URL, Store: st, Sessions: sessions.NewMemory(), Limit: writes.Middleware()})
		if err != nil {
			t.Fatal(err)
		}
		srv.Mount(e)
		en := &env{t: t, st: st, srv: srv, http: hs}
		en.tenant, en.dir, en.token = en.newDirectory("Acme")
		tenantB, dirB, tokenB := en.newDirectory("Globex")

		// A write first, so that on PostgreSQL the next ones take the
		// path that trusts the remembered token (scim's guesses) too.
		en.do(http.MethodPost, "/Users", userBody("first@acme.example", nil)).want(t, http.StatusCreated)
		if n := writes.InFlight(en.tenant); n != 0 {
			t.Fatalf("%d writes still counted after the answer", n)
		}

		// Two of Acme's writes in flight: the cap is full.
		for range 2 {
			if !writes.Acquire(en.tenant) {
				t.Fatal("the cap refused a place below its limit")
			}
		}
		for _, w := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPost, "/Users", userBody("bjensen@acme.example", nil)},
			{http.MethodPost, "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Staff"}},
		} {
			r := en.do(w.method, w.path, w.body).want(t, http.StatusTooManyRequests)
			if r.header.Get("Retry-After") != "1" {
				t.Errorf("%s %s: Retry-After %q, want 1", w.method, w.path, r.header.Get("Retry-After"))
			}
			if d := r.str("detail"); !strings.Contains(d, "at most 2 in flight") {
				t.Errorf("%s %s: detail %q does not say why", w.method, w.path, d)
			}
		}
		if _, n, err := st.FindUsers(en.ctx(), store.UserQuery{}); err != nil || n != 1 {
			t.Errorf("refused creates left %d users, want 1 (err %v)", n, err)
		}
		// Reads are not counted; nor is another tenant's write.
		en.do(http.MethodGet, "/Users", nil).want(t, http.StatusOK)
		en.doAs(dirB, tokenB, http.MethodPost, "/Users", userBody("bjensen@globex.example", nil)).want(t, http.StatusCreated)
		if n := writes.InFlight(tenantB); n != 0 {
			t.Errorf("Globex has %d writes counted after its answer", n)
		}
		// A token of no tenant is refused as ever, not counted anywhere.
		en.doAs(dirB, "scim_wrong", http.MethodPost, "/Users", userBody("x@globex.example", nil)).want(t, http.StatusUnauthorized)

		// One of Acme's writes ends: the next is served.
		writes.Release(en.tenant)
		en.do(http.MethodPost, "/Users", userBody("bjensen@acme.example", nil)).want(t, http.StatusCreated)
		if n := writes.InFlight(en.tenant); n != 1 {
			t.Errorf("Acme has %d writes counted, want the 1 still held", n)
		}
	})
}
