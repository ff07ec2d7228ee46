package scim_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
)

// TestRefusedTokensAreLimitedPerDirectory: refused bearer tokens spend a
// budget of the directory they name and the client's address, shared
// through Redis. Once it is spent the directory is answered 429 in the SCIM
// error schema, with Retry-After, before its next token is looked up (a
// valid one too), while another directory behind the same address is
// served as before. Ids that name no directory, made up or malformed,
// share one budget per address (their refusal past it is a 429), which no
// real directory is checked against, even one this node has not seen yet.
func TestRefusedTokensAreLimitedPerDirectory(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := echo.New()
		hs := httptest.NewServer(e)
		t.Cleanup(hs.Close)
		guard := ratelimit.New(sessionstest.NewRedis(t), ratelimit.Options{})
		srv, err := scim.New(scim.Config{
			Issuer: hs.URL, Store: st, Sessions: sessions.NewMemory(),
			AuthFailures: guard.FailureLimit(ratelimit.Rule{Name: "scim_auth", Limit: 3, Window: time.Minute, Key: scim.FailureKey}),
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.Mount(e)
		en := &env{t: t, st: st, srv: srv, http: hs}
		en.tenant, en.dir, en.token = en.newDirectory("Acme")
		_, dirB, tokenB := en.newDirectory("Globex")

		// Valid tokens spend nothing, however many.
		for range 6 {
			en.do(http.MethodGet, "/Users", nil).want(t, http.StatusOK)
		}
		en.doAs(dirB, tokenB, http.MethodGet, "/Users", nil).want(t, http.StatusOK)

		// Acme's IdP loops on a rotated token.
		for range 3 {
			en.doAs(en.dir, "scim_rotated", http.MethodGet, "/Users", nil).want(t, http.StatusUnauthorized)
		}
		r := en.doAs(en.dir, "scim_rotated", http.MethodGet, "/Users", nil).want(t, http.StatusTooManyRequests)
		if r.header.Get("Retry-After") == "" || !strings.HasPrefix(r.header.Get("Content-Type"), scim.MediaType) {
			t.Errorf("429: Retry-After %q, Content-Type %q; want both, in the SCIM media type", r.header.Get("Retry-After"), r.header.Get("Content-Type"))
		}
		if !strings.Contains(r.str("detail"), "refused bearer tokens") {
			t.Errorf("429 detail %q does not say why", r.str("detail"))
		}
		// Spent, Acme is answered before any lookup, its valid token too,
		// and writes change nothing.
		en.do(http.MethodGet, "/Users", nil).want(t, http.StatusTooManyRequests)
		en.do(http.MethodPost, "/Users", userBody("bjensen@acme.example", nil)).want(t, http.StatusTooManyRequests)
		if _, n, err := st.FindUsers(en.ctx(), store.UserQuery{}); err != nil || n != 0 {
			t.Errorf("a refused create left %d users (err %v)", n, err)
		}

		// Globex, behind the same address, is served, and its own wrong
		// tokens are its own: 401 until its budget is spent.
		en.doAs(dirB, tokenB, http.MethodGet, "/Users", nil).want(t, http.StatusOK)
		en.doAs(dirB, "scim_wrong", http.MethodGet, "/Users", nil).want(t, http.StatusUnauthorized)
		en.doAs(dirB, tokenB, http.MethodGet, "/Users", nil).want(t, http.StatusOK)

		_, dirC, tokenC := en.newDirectory("Initech")
		en.doAs(dirC, tokenC, http.MethodGet, "/Users", nil).want(t, http.StatusOK)
		_, dirD, tokenD := en.newDirectory("Umbrella") // not seen yet

		// Made-up and malformed ids share one budget: each new id is not a
		// new budget.
		for range 3 {
			en.doAs(store.NewID(store.PrefixDirectory), "scim_guess", http.MethodGet, "/Users", nil).want(t, http.StatusUnauthorized)
		}
		en.doAs(store.NewID(store.PrefixDirectory), "scim_guess", http.MethodGet, "/Users", nil).want(t, http.StatusTooManyRequests)
		en.doAs("not-a-directory", "scim_guess", http.MethodGet, "/Users", nil).want(t, http.StatusTooManyRequests)
		// Which spends nothing of a real directory's: Globex's second and
		// third refusals (one a token too long to look up) are its own,
		// its fourth a 429.
		en.doAs(dirB, tokenB, http.MethodGet, "/Users", nil).want(t, http.StatusOK)
		en.doAs(dirB, strings.Repeat("x", 300), http.MethodGet, "/Users", nil).want(t, http.StatusUnauthorized)
		en.doAs(dirB, "scim_wrong", http.MethodGet, "/Users", nil).want(t, http.StatusUnauthorized)
		en.doAs(dirB, "scim_wrong", http.MethodGet, "/Users", nil).want(t, http.StatusTooManyRequests)

		// A directory this node has not yet seen (a fresh node) is looked
		// up whatever that budget says: a flood of made-up ids from the
		// IdP's shared address does not hold Umbrella's provisioning.
		en.doAs(dirD, tokenD, http.MethodGet, "/Users", nil).want(t, http.StatusOK)

		// Another address has budgets of its own, Acme's too.
		en.doAs(en.dir, en.token, http.MethodGet, "/Users", nil, "X-Forwarded-For", "203.0.113.9").want(t, http.StatusOK)

		// No token at all is refused as before and counts for nothing.
		for range 5 {
			en.doAs(dirC, "", http.MethodGet, "/Users", nil).want(t, http.StatusUnauthorized)
		}
		en.doAs(dirC, tokenC, http.MethodGet, "/Users", nil).want(t, http.StatusOK)
	})
}
