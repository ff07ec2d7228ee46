package ratelimit_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/sessions"
)

// failNode serves GET /auth, which accepts X-Cred "good" and refuses
// anything else through f, like an API key check.
func failNode(f *ratelimit.FailureLimit) http.Handler {
	srv := httpserver.New(httpserver.Config{})
	srv.Echo().GET("/auth", func(c echo.Context) error {
		if err := f.Check(c); err != nil {
			return err
		}
		if c.Request().Header.Get("X-Cred") == "good" {
			return c.String(http.StatusOK, "ok")
		}
		if err := f.Failed(c); err != nil {
			return err
		}
		return echo.NewHTTPError(http.StatusUnauthorized, "refused")
	})
	return srv.Handler()
}

func authAs(h http.Handler, cred string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/auth", nil)
	req.Header.Set("X-Cred", cred)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestFailureLimit: only refusals spend the budget; it is shared by the
// nodes of one limiter (two nodes over Redis), and a node that saw the
// budget used up refuses before checking anything.
func TestFailureLimit(t *testing.T) {
	rule := ratelimit.Rule{Name: "auth", Limit: 2, Window: time.Minute, Key: ratelimit.ByIP}
	for name, newLimiter := range limiters(t) {
		t.Run(name, func(t *testing.T) {
			l := newLimiter(t)
			a := failNode(ratelimit.New(l, ratelimit.Options{}).FailureLimit(rule))
			b := failNode(ratelimit.New(l, ratelimit.Options{}).FailureLimit(rule))
			for range 5 {
				if rec := authAs(a, "good"); rec.Code != http.StatusOK {
					t.Fatalf("good credential: %d", rec.Code)
				}
			}
			for i, h := range []http.Handler{a, b} {
				if rec := authAs(h, "bad"); rec.Code != http.StatusUnauthorized {
					t.Fatalf("refusal %d: %d, want 401", i+1, rec.Code)
				}
			}
			rec := authAs(b, "bad")
			if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
				t.Fatalf("3rd refusal, on the other node: %d (Retry-After %q), want 429", rec.Code, rec.Header().Get("Retry-After"))
			}
			if rec := authAs(b, "good"); rec.Code != http.StatusTooManyRequests {
				t.Fatalf("good credential from the blocked address on the node that saw it: %d, want 429", rec.Code)
			}
		})
	}
	// Without a limiter or with a disabled rule, nothing is limited.
	for _, f := range []*ratelimit.FailureLimit{
		ratelimit.New(nil, ratelimit.Options{}).FailureLimit(rule),
		ratelimit.New(sessions.NewMemory(), ratelimit.Options{}).FailureLimit(ratelimit.Rule{Name: "off", Key: ratelimit.ByIP}),
	} {
		h := failNode(f)
		for range 5 {
			if rec := authAs(h, "bad"); rec.Code != http.StatusUnauthorized {
				t.Fatalf("unlimited: %d, want 401", rec.Code)
			}
		}
	}
}
