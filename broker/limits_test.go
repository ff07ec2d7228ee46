package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/metrics"
	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// limitedNode is a broker on SQLite whose sign-in start is limited per
// address and whose token endpoint per client_id.
func limitedNode(t *testing.T, xff bool) *node {
	mem := sessions.NewMemory()
	guard := ratelimit.New(sessions.NewMemory(), ratelimit.Options{})
	srvCfg := httpserver.Config{}
	if xff {
		// Tests come from one loopback address; let X-Forwarded-For stand
		// for distinct clients, as behind a trusted proxy.
		srvCfg.IPExtractor = echo.ExtractIPFromXFFHeader(echo.TrustLoopback(true))
	}
	return newNodeServer(t, storetest.SQLite(t), mem, mem, "", srvCfg, func(c *broker.Config) {
		c.LoginLimit = guard.Middleware(ratelimit.Rule{Name: "login", Limit: 2, Window: time.Minute, Key: ratelimit.ByIP})
		c.TokenLimit = guard.Middleware(ratelimit.Rule{Name: "token", Limit: 2, Window: time.Minute, Key: broker.TokenLimitKey})
	})
}

func TestLoginRateLimitPerAddress(t *testing.T) {
	n := limitedNode(t, true)
	a := n.app(store.Application{})
	get := func(ip string) *http.Response {
		q := url.Values{"client_id": {a.ID}, "redirect_uri": {a.Redirect}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s"}}
		req, _ := http.NewRequest(http.MethodGet, n.URL+broker.PathAuthorize+"?"+q.Encode(), nil)
		req.Header.Set("X-Forwarded-For", ip)
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	for i := range 2 {
		if res := get("203.0.113.7"); res.StatusCode != http.StatusFound || res.Header.Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("request %d: %d, X-RateLimit-Limit %q; want 302 with the header", i+1, res.StatusCode, res.Header.Get("X-RateLimit-Limit"))
		}
	}
	res := get("203.0.113.7")
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("3rd sign-in from one address: %d, Retry-After %q; want 429 with it", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("the refusal is %s, want the end-user page", ct)
	}
	// /login shares the address's budget.
	req, _ := http.NewRequest(http.MethodGet, n.URL+broker.PathLogin+"?id=x", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	if res, err := http.DefaultTransport.RoundTrip(req); err != nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("/login from the limited address: %v %v, want 429", res.StatusCode, err)
	}
	if res := get("198.51.100.9"); res.StatusCode != http.StatusFound {
		t.Fatalf("another address: %d, want 302", res.StatusCode)
	}
}

func TestTokenRateLimitPerClient(t *testing.T) {
	n := limitedNode(t, false)
	a, b := n.app(store.Application{}), n.app(store.Application{})
	post := func(ap *app) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, n.URL+broker.PathToken,
			strings.NewReader(url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "redirect_uri": {ap.Redirect}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(ap.ID, ap.Secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		json.NewDecoder(res.Body).Decode(&body)
		return res, body
	}
	for i := range 2 {
		if res, body := post(a); res.StatusCode != http.StatusBadRequest || res.Header.Get("X-RateLimit-Remaining") == "" {
			t.Fatalf("request %d: %d %v, want op's 400 invalid_grant with rate-limit headers", i+1, res.StatusCode, body)
		}
	}
	res, body := post(a)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("3rd token request: %d, Retry-After %q; want 429", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if body["error"] != "temporarily_unavailable" || body["error_description"] == nil {
		t.Errorf("body %v, want an OAuth error", body)
	}
	if res, body := post(b); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("another client while the first is limited: %d %v", res.StatusCode, body)
	}
	// Introspection stays unlimited: the hot path.
	for range 3 {
		a.introspect(t, n, "at_unknown")
	}
}

// TestTokenRateLimitCannotBeSpentByOthers: client_ids are public, and the
// limit counts a request before its client is authenticated; requests that
// name an application from one address, with a wrong secret, spend only
// that address's share: the application's own servers still get answers.
func TestTokenRateLimitCannotBeSpentByOthers(t *testing.T) {
	n := limitedNode(t, true)
	a := n.app(store.Application{})
	post := func(from, secret string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, n.URL+broker.PathToken,
			strings.NewReader(url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "redirect_uri": {a.Redirect}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", from)
		req.SetBasicAuth(a.ID, secret)
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	for i := range 2 {
		if res := post("203.0.113.66", "wrong"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attacker's request %d: %d, want 401", i+1, res.StatusCode)
		}
	}
	if res := post("203.0.113.66", "wrong"); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("attacker's 3rd request: %d, want 429", res.StatusCode)
	}
	// Another address in the attacker's /64 is the same client.
	if res := post("2001:db8:66::1", "wrong"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("IPv6 attacker: %d, want 401", res.StatusCode)
	}
	post("2001:db8:66::2", "wrong")
	if res := post("2001:db8:66::3", "wrong"); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("IPv6 attacker's 3rd request from its /64: %d, want 429", res.StatusCode)
	}
	// Made-up client_ids share one budget per address: each is not a
	// budget (and a Redis key) of its own.
	for i, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusTooManyRequests} {
		req, _ := http.NewRequest(http.MethodPost, n.URL+broker.PathToken,
			strings.NewReader(url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", "192.0.2.77")
		req.SetBasicAuth(fmt.Sprintf("app_01MADEUP%016d", i), "whatever")
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("made-up client_id %d: %d, want %d", i+1, res.StatusCode, want)
		}
	}
	for _, from := range []string{"198.51.100.5", "198.51.100.5"} {
		if res := post(from, a.Secret); res.StatusCode != http.StatusBadRequest || res.Header.Get("X-RateLimit-Remaining") == "" {
			t.Fatalf("the application's own server: %d, want op's 400 invalid_grant with rate-limit headers", res.StatusCode)
		}
	}
}

// BenchmarkIntrospectMetrics measures what the /metrics hook adds to an
// in-process introspection behind a real access log: the same node set-up
// with and without httpserver.Config.ObserveRequest.
func BenchmarkIntrospectMetrics(b *testing.B) {
	for _, tc := range []struct {
		name    string
		observe func(string, string, int, time.Duration)
	}{
		{"access-log", nil},
		{"access-log+metrics", metrics.New().ObserveRequest},
	} {
		mem := sessions.NewMemory()
		n := newNodeServer(b, storetest.SQLite(b), mem, mem, "", httpserver.Config{
			Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), ObserveRequest: tc.observe,
		})
		n.tenant("Acme", "acme.test", alice("acme.test"))
		a := n.app(store.Application{})
		body := "token=" + login(b, n, a).AccessToken
		h := n.srv.Config.Handler
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest("POST", broker.PathIntrospect, strings.NewReader(body))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth(a.ID, a.Secret)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != 200 {
						b.Fatalf("status %d", w.Code)
					}
				}
			})
		})
	}
}

// TestLoginRateLimitPerTenant: once one tenant has used its sign-in budget
// (from many addresses), its sign-ins get the 429 page while another
// tenant's go on; the per-address budget is not what stops them.
func TestLoginRateLimitPerTenant(t *testing.T) {
	mem := sessions.NewMemory()
	guard := ratelimit.New(sessions.NewMemory(), ratelimit.Options{})
	rule := ratelimit.Rule{Name: "login_tenant", Limit: 2, Window: time.Minute}
	n := newNodeServer(t, storetest.SQLite(t), mem, mem, "", httpserver.Config{}, func(c *broker.Config) {
		c.TenantLoginLimit = func(ctx context.Context, t store.Tenant) (bool, time.Duration) {
			return guard.Check(ctx, rule, t.ID)
		}
	})
	acme := n.tenant("Acme", "acme.test", alice("acme.test"))
	globex := n.tenant("Globex", "globex.test", alice("globex.test"))
	a := n.app(store.Application{})
	start := func(tn tenant) *http.Response { return startRouted(t, n, a, tn.ID) }
	for i := range 2 {
		if res := start(acme); res.StatusCode != http.StatusFound {
			t.Fatalf("Acme sign-in %d: %d, want 302 to the IdP", i+1, res.StatusCode)
		}
	}
	res := start(acme)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("3rd Acme sign-in: %d, Retry-After %q; want 429 with it", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("the refusal is %s, want the end-user page", ct)
	}
	if res := start(globex); res.StatusCode != http.StatusFound {
		t.Fatalf("Globex while Acme is limited: %d, want 302", res.StatusCode)
	}
}

// TestTenantLimitFollowsTheRoutedRow: the tenant's sign-in limit is the
// one of its row as routing read it for this sign-in, on PostgreSQL and
// Redis as deployed: an override lowered refuses the next sign-in, and
// one raised lets the next through, on any node, with nothing forgotten
// and no read of its own.
func TestTenantLimitFollowsTheRoutedRow(t *testing.T) {
	st := storetest.Postgres(t)
	r, _ := countedRedis(t)
	n := newNodeServer(t, st, r, r, "", httpserver.Config{}, defaultLimits(r))
	acme := n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	ctx := store.WithTenant(context.Background(), acme.ID)
	override := func(per int) {
		if _, err := st.UpdateTenant(ctx, store.TenantUpdate{SignInPerMinute: &per}); err != nil {
			t.Fatal(err)
		}
	}
	start := func() int { return startRouted(t, n, a, acme.ID).StatusCode }
	// No tier: the deployment's 6,000 per minute.
	if code := start(); code != http.StatusFound {
		t.Fatalf("first sign-in: %d, want 302", code)
	}
	// Two per minute: the bucket (GCRA) lets two more through, then
	// refuses for half a minute. The first sign-in's 10 ms must have
	// passed first: until then the bucket still holds it, and the second
	// of the two would find it a few milliseconds short of room.
	time.Sleep(50 * time.Millisecond)
	override(2)
	for i := range 2 {
		if code := start(); code != http.StatusFound {
			t.Fatalf("sign-in %d under 2 per minute: %d, want 302", i+1, code)
		}
	}
	if code := start(); code != http.StatusTooManyRequests {
		t.Fatalf("third sign-in under 2 per minute: %d, want 429", code)
	}
	// Back to 6,000 per minute (10 ms a sign-in): allowed again a moment
	// later, not in half a minute.
	override(0)
	time.Sleep(50 * time.Millisecond)
	if code := start(); code != http.StatusFound {
		t.Fatalf("after clearing the override: %d, want 302", code)
	}
}

// startRouted sends a sign-in for a to tenantID through /authorize and the
// /login redirects that follow (no cookies, as a new browser), and returns
// the first answer that is not one of them: the redirect to the IdP once
// routed, or the page that refused it.
func startRouted(t *testing.T, n *node, a *app, tenantID string) *http.Response {
	t.Helper()
	q := url.Values{"client_id": {a.ID}, "redirect_uri": {a.Redirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"s"}, "tenant": {tenantID}}
	next := n.URL + broker.PathAuthorize + "?" + q.Encode()
	for {
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, n.URL+broker.PathLogin+"?") {
			return res
		}
		next = loc
	}
}
