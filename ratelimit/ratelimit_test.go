package ratelimit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// byHeader keys requests by X-Key, to drive separate buckets.
func byHeader(c echo.Context) (string, bool) {
	k := c.Request().Header.Get("X-Key")
	return k, k != ""
}

// newServer serves GET /ok behind one rule, on a real httpserver.Server so
// that refusals are rendered as the operator API would render them.
func newServer(t *testing.T, l sessions.Limiter, rule ratelimit.Rule, o ratelimit.Options) http.Handler {
	t.Helper()
	srv := httpserver.New(httpserver.Config{})
	mw := ratelimit.New(l, o).Middleware(rule)
	srv.Echo().GET("/ok", func(c echo.Context) error { return c.String(http.StatusOK, "ok") }, mw)
	return srv.Handler()
}

func get(h http.Handler, key string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/ok", nil)
	if key != "" {
		req.Header.Set("X-Key", key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func limiters(t *testing.T) map[string]func(t *testing.T) sessions.Limiter {
	return map[string]func(t *testing.T) sessions.Limiter{
		"memory": func(*testing.T) sessions.Limiter { return sessions.NewMemory() },
		"redis":  func(t *testing.T) sessions.Limiter { return sessionstest.NewRedis(t) },
	}
}

func TestMiddleware(t *testing.T) {
	for name, newLimiter := range limiters(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("limit reached", func(t *testing.T) {
				h := newServer(t, newLimiter(t), ratelimit.Rule{Name: "t", Limit: 3, Window: time.Minute, Key: byHeader}, ratelimit.Options{})
				for i, wantRemaining := range []string{"2", "1", "0"} {
					rec := get(h, "a")
					if rec.Code != http.StatusOK {
						t.Fatalf("request %d: status %d, want 200", i+1, rec.Code)
					}
					if got := rec.Header().Get(ratelimit.HeaderLimit); got != "3" {
						t.Errorf("request %d: X-RateLimit-Limit %q, want 3", i+1, got)
					}
					if got := rec.Header().Get(ratelimit.HeaderRemaining); got != wantRemaining {
						t.Errorf("request %d: X-RateLimit-Remaining %q, want %s", i+1, got, wantRemaining)
					}
					if got := rec.Header().Get(ratelimit.HeaderRetryAfter); got != "" {
						t.Errorf("request %d: Retry-After %q on an allowed request", i+1, got)
					}
				}
				rec := get(h, "a")
				if rec.Code != http.StatusTooManyRequests {
					t.Fatalf("4th request: status %d, want 429", rec.Code)
				}
				ra, err := strconv.Atoi(rec.Header().Get(ratelimit.HeaderRetryAfter))
				// One request refills in window/limit = 20 s.
				if err != nil || ra < 19 || ra > 20 {
					t.Errorf("Retry-After %q, want 19..20 seconds", rec.Header().Get(ratelimit.HeaderRetryAfter))
				}
				if got := rec.Header().Get(ratelimit.HeaderRemaining); got != "0" {
					t.Errorf("X-RateLimit-Remaining %q on a refusal, want 0", got)
				}
				if body := rec.Body.String(); !strings.Contains(body, `"code":"rate_limited"`) {
					t.Errorf("body %s, want the rate_limited error code", body)
				}
			})
			t.Run("keys are independent", func(t *testing.T) {
				h := newServer(t, newLimiter(t), ratelimit.Rule{Name: "t", Limit: 1, Window: time.Minute, Key: byHeader}, ratelimit.Options{})
				if rec := get(h, "a"); rec.Code != http.StatusOK {
					t.Fatalf("a: status %d", rec.Code)
				}
				if rec := get(h, "a"); rec.Code != http.StatusTooManyRequests {
					t.Fatalf("a again: status %d, want 429", rec.Code)
				}
				if rec := get(h, "b"); rec.Code != http.StatusOK {
					t.Fatalf("b after a was exhausted: status %d, want 200", rec.Code)
				}
			})
			t.Run("no key is not counted", func(t *testing.T) {
				h := newServer(t, newLimiter(t), ratelimit.Rule{Name: "t", Limit: 1, Window: time.Minute, Key: byHeader}, ratelimit.Options{})
				for range 3 {
					rec := get(h, "")
					if rec.Code != http.StatusOK || rec.Header().Get(ratelimit.HeaderLimit) != "" {
						t.Fatalf("keyless request: status %d, limit header %q", rec.Code, rec.Header().Get(ratelimit.HeaderLimit))
					}
				}
			})
			t.Run("window refills", func(t *testing.T) {
				// 2 per 2 s: one request's budget is back after 1 s. The
				// window is long enough that a loaded machine does not
				// stall past it between the three requests (Redis keeps
				// its own time, so no clock can be injected), and the
				// refill is awaited by polling, not by a sleep.
				h := newServer(t, newLimiter(t), ratelimit.Rule{Name: "t", Limit: 2, Window: 2 * time.Second, Key: byHeader}, ratelimit.Options{})
				get(h, "a")
				get(h, "a")
				rec := get(h, "a")
				if rec.Code != http.StatusTooManyRequests {
					t.Fatalf("3rd request: status %d, want 429", rec.Code)
				}
				if got := rec.Header().Get(ratelimit.HeaderRetryAfter); got != "1" {
					t.Errorf("Retry-After %q for a sub-second wait, want 1 (rounded up)", got)
				}
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					if rec := get(h, "a"); rec.Code == http.StatusOK {
						break
					} else if time.Now().After(deadline) {
						t.Fatalf("30 s after a 2 s window: status %d, want 200", rec.Code)
					}
				}
			})
			t.Run("long keys share no budget with others", func(t *testing.T) {
				h := newServer(t, newLimiter(t), ratelimit.Rule{Name: "t", Limit: 1, Window: time.Minute, Key: byHeader}, ratelimit.Options{})
				long1, long2 := strings.Repeat("x", 500)+"1", strings.Repeat("x", 500)+"2"
				if rec := get(h, long1); rec.Code != http.StatusOK {
					t.Fatalf("long key 1: %d", rec.Code)
				}
				if rec := get(h, long2); rec.Code != http.StatusOK {
					t.Fatalf("long key 2: %d, want its own bucket", rec.Code)
				}
				if rec := get(h, long1); rec.Code != http.StatusTooManyRequests {
					t.Fatalf("long key 1 again: %d, want 429", rec.Code)
				}
			})
		})
	}
}

func TestDisabledRule(t *testing.T) {
	for _, rule := range []ratelimit.Rule{
		{Name: "zero limit", Limit: 0, Window: time.Minute, Key: byHeader},
		{Name: "zero window", Limit: 1, Window: 0, Key: byHeader},
		{Name: "no key func", Limit: 1, Window: time.Minute},
	} {
		t.Run(rule.Name, func(t *testing.T) {
			h := newServer(t, sessions.NewMemory(), rule, ratelimit.Options{})
			for range 3 {
				if rec := get(h, "a"); rec.Code != http.StatusOK || rec.Header().Get(ratelimit.HeaderLimit) != "" {
					t.Fatalf("status %d, limit header %q: a disabled rule must not limit", rec.Code, rec.Header().Get(ratelimit.HeaderLimit))
				}
			}
		})
	}
}

func TestOnLimited(t *testing.T) {
	var n atomic.Int32
	var name atomic.Value
	h := newServer(t, sessions.NewMemory(), ratelimit.Rule{Name: "scim", Limit: 1, Window: time.Minute, Key: byHeader},
		ratelimit.Options{OnLimited: func(rule string) { n.Add(1); name.Store(rule) }})
	get(h, "a")
	get(h, "a")
	get(h, "a")
	if n.Load() != 2 || name.Load() != "scim" {
		t.Fatalf("OnLimited called %d times with %v, want 2 with scim", n.Load(), name.Load())
	}
}

// failingLimiter is a limiter whose backend is down.
type failingLimiter struct{ calls atomic.Int32 }

func (f *failingLimiter) Allow(context.Context, string, int, time.Duration) (sessions.Decision, error) {
	f.calls.Add(1)
	return sessions.Decision{}, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
}

func TestFailOpen(t *testing.T) {
	var logs bytes.Buffer
	f := &failingLimiter{}
	h := newServer(t, f, ratelimit.Rule{Name: "login", Limit: 1, Window: time.Minute, Key: byHeader},
		ratelimit.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 5 {
		if rec := get(h, "secret-client-id"); rec.Code != http.StatusOK {
			t.Fatalf("status %d with the limiter down, want 200 (fail open)", rec.Code)
		}
	}
	if f.calls.Load() != 5 {
		t.Errorf("limiter asked %d times, want 5", f.calls.Load())
	}
	out := logs.String()
	if got := strings.Count(out, "rate limiter unavailable"); got != 1 {
		t.Errorf("%d failure lines for 5 failures in a burst, want 1:\n%s", got, out)
	}
	if strings.Contains(out, "secret-client-id") {
		t.Errorf("the log names the key:\n%s", out)
	}
}

// TestFailOpenRedisDown runs the real Redis limiter against an address
// nothing listens on.
func TestFailOpenRedisDown(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer client.Close()
	h := newServer(t, sessions.NewRedis(client, sessions.RedisOptions{}), ratelimit.Rule{Name: "t", Limit: 1, Window: time.Minute, Key: byHeader}, ratelimit.Options{})
	for range 3 {
		if rec := get(h, "a"); rec.Code != http.StatusOK {
			t.Fatalf("status %d with Redis down, want 200 (fail open)", rec.Code)
		}
	}
}

// hangingLimiter is a limiter whose backend accepted the connection and
// does not answer (a Redis failover, a blackholed network). Like the
// Redis client by default, it ignores its context: it waits out its own
// timeout (release).
type hangingLimiter struct{ release chan struct{} }

func (h hangingLimiter) Allow(context.Context, string, int, time.Duration) (sessions.Decision, error) {
	<-h.release
	return sessions.Decision{}, errors.New("i/o timeout")
}

// TestFailOpenFastWhenTheLimiterHangs: a limiter that does not answer is
// given up on after Options.Timeout and the request let through. The
// middleware waited as long as the Redis client would (seconds: five,
// behind every operator API call of a broker whose Redis hung).
func TestFailOpenFastWhenTheLimiterHangs(t *testing.T) {
	hang := hangingLimiter{release: make(chan struct{})}
	defer close(hang.release)
	h := newServer(t, hang, ratelimit.Rule{Name: "api", Limit: 1, Window: time.Minute, Key: byHeader},
		ratelimit.Options{Timeout: 50 * time.Millisecond})
	done := make(chan int, 1)
	start := time.Now()
	go func() { done <- get(h, "a").Code }()
	select {
	case code := <-done:
		if code != http.StatusOK {
			t.Fatalf("status %d with the limiter hanging, want 200 (fail open)", code)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("the request waited %v for a limiter that does not answer", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request still waits for a limiter that does not answer after 5 s")
	}
	g := ratelimit.New(hang, ratelimit.Options{Timeout: 50 * time.Millisecond})
	if ok, _ := g.Check(context.Background(), ratelimit.Rule{Name: "login_tenant", Limit: 1, Window: time.Minute}, "tnt_1"); !ok {
		t.Fatal("Check refused with the limiter hanging, want it let through")
	}
}

func TestRuleString(t *testing.T) {
	for _, tc := range []struct {
		rule ratelimit.Rule
		want string
	}{
		{ratelimit.Rule{Limit: 600, Window: time.Minute}, "600/1m0s"},
		{ratelimit.Rule{}, "0"},
	} {
		if got := tc.rule.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.rule, got, tc.want)
		}
	}
}

// BenchmarkMiddleware measures what one limited request costs, the limiter
// call included: in process, and over the test Redis.
func BenchmarkMiddleware(b *testing.B) {
	for _, tc := range []struct {
		name string
		l    func(b *testing.B) sessions.Limiter
	}{
		{"memory", func(*testing.B) sessions.Limiter { return sessions.NewMemory() }},
		{"redis", func(b *testing.B) sessions.Limiter { return sessionstest.NewRedis(b) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			mw := ratelimit.New(tc.l(b), ratelimit.Options{}).Middleware(ratelimit.Rule{
				Name: "bench", Limit: 1_000_000, Window: time.Second, Key: byHeader,
			})
			h := mw(func(c echo.Context) error { return nil })
			e := echo.New()
			req := httptest.NewRequest(http.MethodGet, "/ok", nil)
			req.Header.Set("X-Key", "ten_bench")
			b.ReportAllocs()
			for b.Loop() {
				// A refusal costs the same as an allowance; either will do.
				_ = h(e.NewContext(req, httptest.NewRecorder()))
			}
		})
	}
}
