package scim_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
)

// TestRateLimitPerTenant exhausts one directory's tenant budget and checks
// that another tenant is still served: the limit is keyed by the tenant the
// SCIM token authenticated, on a budget shared through Redis.
func TestRateLimitPerTenant(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := echo.New()
		hs := httptest.NewServer(e)
		t.Cleanup(hs.Close)
		limit := ratelimit.New(sessionstest.NewRedis(t), ratelimit.Options{}).Middleware(ratelimit.Rule{
			Name: "scim", Limit: 3, Window: time.Minute, Key: ratelimit.ByTenant,
		})
		srv, err := scim.New(scim.Config{Issuer: hs.URL, Store: st, Sessions: sessions.NewMemory(), Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		srv.Mount(e)
		en := &env{t: t, st: st, srv: srv, http: hs}
		en.tenant, en.dir, en.token = en.newDirectory("Acme")
		_, dirB, tokenB := en.newDirectory("Globex")

		for i, remaining := range []string{"2", "1", "0"} {
			r := en.do(http.MethodGet, "/Users", nil).want(t, http.StatusOK)
			if r.header.Get("X-RateLimit-Limit") != "3" || r.header.Get("X-RateLimit-Remaining") != remaining {
				t.Errorf("request %d: X-RateLimit-Limit %q, Remaining %q; want 3, %s", i+1,
					r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"), remaining)
			}
		}
		r := en.do(http.MethodPost, "/Users", userBody("bjensen@acme.example", nil)).want(t, http.StatusTooManyRequests)
		if r.header.Get("Retry-After") == "" || r.header.Get("X-RateLimit-Remaining") != "0" {
			t.Errorf("429 headers: Retry-After %q, Remaining %q", r.header.Get("Retry-After"), r.header.Get("X-RateLimit-Remaining"))
		}
		if got := r.str("status"); got != "429" {
			t.Errorf("SCIM error status %q, want \"429\"", got)
		}
		// The refused create left the store untouched.
		if _, n, err := st.FindUsers(en.ctx(), store.UserQuery{}); err != nil || n != 0 {
			t.Errorf("a refused create left %d users (err %v)", n, err)
		}

		// Another tenant's directory has its own budget.
		en.doAs(dirB, tokenB, http.MethodGet, "/Users", nil).want(t, http.StatusOK)

		// A wrong token does not spend anyone's budget, nor learn of it.
		bad := en.doAs(dirB, "scim_wrong", http.MethodGet, "/Users", nil).want(t, http.StatusUnauthorized)
		if bad.header.Get("X-RateLimit-Limit") != "" {
			t.Errorf("an unauthenticated request got rate-limit headers")
		}
	})
}
