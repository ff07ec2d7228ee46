package adminportal_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestRateLimitPerAPIKey exhausts one operator key's budget: that key gets
// 429 in the API's error envelope, another key is still served, and a
// request with no valid key is a 401 that spends nothing.
func TestRateLimitPerAPIKey(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.st
		byKey := func(c echo.Context) (string, bool) { return adminportal.OperatorKeyID(c.Request().Context()) }
		limit := ratelimit.New(sessionstest.NewRedis(t), ratelimit.Options{}).Middleware(ratelimit.Rule{
			Name: "api", Limit: 2, Window: time.Minute, Key: byKey,
		})
		srv := httpserver.New(httpserver.Config{})
		adminportal.NewAPI(adminportal.APIConfig{Store: st, Resolver: &fakeDNS{records: map[string][]string{}}, Limit: limit}).Mount(srv.Echo())
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(ts.Close)
		keyA, _, err := adminportal.CreateAPIKey(context.Background(), st, "a")
		if err != nil {
			t.Fatal(err)
		}
		keyB, _, err := adminportal.CreateAPIKey(context.Background(), st, "b")
		if err != nil {
			t.Fatal(err)
		}
		call := func(key string) (*http.Response, string) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v1/tenants", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res, string(b)
		}
		for i := range 2 {
			if res, body := call(keyA); res.StatusCode != http.StatusOK || res.Header.Get("X-RateLimit-Limit") != "2" {
				t.Fatalf("key A request %d: %d, X-RateLimit-Limit %q: %s", i+1, res.StatusCode, res.Header.Get("X-RateLimit-Limit"), body)
			}
		}
		res, body := call(keyA)
		if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
			t.Fatalf("key A over its budget: %d, Retry-After %q: %s", res.StatusCode, res.Header.Get("Retry-After"), body)
		}
		r := response{res.StatusCode, res.Header, []byte(body)}
		if got := r.err(t).Code; got != httpserver.CodeRateLimited {
			t.Errorf("error code %q, want %q", got, httpserver.CodeRateLimited)
		}
		if res, body := call(keyB); res.StatusCode != http.StatusOK {
			t.Fatalf("key B while A is limited: %d: %s", res.StatusCode, body)
		}
		if res, _ := call("idb_sk_not_a_key_at_all_0000000000000000"); res.StatusCode != http.StatusUnauthorized || res.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("bad key: %d with limit header %q, want 401 without", res.StatusCode, res.Header.Get("X-RateLimit-Limit"))
		}
	})
}
