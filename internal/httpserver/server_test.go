package httpserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
)

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines decodes the JSON log lines written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func newTestServer(t *testing.T, cfg httpserver.Config) (*httpserver.Server, *httptest.Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := httpserver.New(cfg)
	e := s.Echo()
	e.GET("/ok", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"request_id": httpserver.RequestID(c.Request().Context())})
	})
	e.GET("/tenant", func(c echo.Context) error {
		httpserver.SetTenantID(c.Request().Context(), "tnt_123")
		return c.NoContent(http.StatusNoContent)
	})
	e.GET("/panic", func(c echo.Context) error { panic("secret-panic-detail") })
	e.GET("/fail", func(c echo.Context) error { return errors.New("db password is hunter2") })
	e.GET("/teapot", func(c echo.Context) error {
		return &httpserver.Error{Status: http.StatusTeapot, Code: "teapot", Message: "short and stout", Field: "spout"}
	})
	e.POST("/echo", func(c echo.Context) error {
		b, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]int{"len": len(b)})
	})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts, logs
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return res, b
}

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func decodeError(t *testing.T, b []byte) httpserver.ErrorDetail {
	t.Helper()
	var body httpserver.ErrorBody
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return body.Error
}

func TestRequestID(t *testing.T) {
	_, ts, _ := newTestServer(t, httpserver.Config{})
	tests := []struct {
		name     string
		incoming string
		keep     bool
	}{
		{"none", "", false},
		{"uuid kept", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"trace style kept", "abc.DEF_123:4", true},
		{"log injection replaced", "abc\" level=ERROR", false},
		{"too long replaced", strings.Repeat("a", 129), false},
		{"non ascii replaced", "idé", false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.incoming != "" {
				hdr = []string{"X-Request-Id", tt.incoming}
			}
			res, b := get(t, ts.URL+"/ok", hdr...)
			got := res.Header.Get("X-Request-Id")
			if tt.keep && got != tt.incoming {
				t.Errorf("X-Request-Id = %q, want the incoming %q", got, tt.incoming)
			}
			if !tt.keep {
				if got == tt.incoming || len(got) != 32 {
					t.Errorf("X-Request-Id = %q, want a fresh 32-hex id", got)
				}
				if seen[got] {
					t.Errorf("id %q generated twice", got)
				}
				seen[got] = true
			}
			var body map[string]string
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatal(err)
			}
			if body["request_id"] != got {
				t.Errorf("httpserver.RequestID(ctx) = %q, header %q", body["request_id"], got)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	_, ts, logs := newTestServer(t, httpserver.Config{})
	res, _ := get(t, ts.URL+"/tenant?code=SECRETCODE&token=SECRETTOKEN", "Authorization", "Bearer SECRETKEY")
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", res.StatusCode)
	}
	if out := logs.String(); strings.Contains(out, "SECRET") {
		t.Fatalf("log leaks a credential or query string:\n%s", out)
	}
	var line map[string]any
	for _, l := range logs.lines(t) {
		if l["msg"] == "http request" {
			line = l
		}
	}
	if line == nil {
		t.Fatalf("no access log line in:\n%s", logs.String())
	}
	want := map[string]any{
		"method":     "GET",
		"path":       "/tenant",
		"status":     float64(204),
		"tenant_id":  "tnt_123",
		"request_id": res.Header.Get("X-Request-Id"),
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v", k, line[k], v)
		}
	}
	if _, ok := line["duration"]; !ok {
		t.Error("log line has no duration")
	}
}

func TestPanicRecovery(t *testing.T) {
	_, ts, logs := newTestServer(t, httpserver.Config{})
	res, b := get(t, ts.URL+"/panic")
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if strings.Contains(string(b), "secret-panic-detail") {
		t.Errorf("body leaks the panic: %s", b)
	}
	e := decodeError(t, b)
	id := res.Header.Get("X-Request-Id")
	if e.Code != "internal" || e.RequestID != id || !strings.Contains(e.Message, id) {
		t.Errorf("error = %+v, want code internal carrying request id %s", e, id)
	}
	if !strings.Contains(logs.String(), "secret-panic-detail") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("panic value and stack not logged:\n%s", logs.String())
	}
	// Still serving.
	if res, _ := get(t, ts.URL+"/ok"); res.StatusCode != http.StatusOK {
		t.Errorf("after panic: status %d", res.StatusCode)
	}
}

func TestErrors(t *testing.T) {
	_, ts, logs := newTestServer(t, httpserver.Config{})
	tests := []struct {
		name, method, path string
		status             int
		code, field        string
	}{
		{"unknown route", http.MethodGet, "/nope", 404, "not_found", ""},
		{"wrong method", http.MethodDelete, "/ok", 405, "method_not_allowed", ""},
		{"plain error is a generic 500", http.MethodGet, "/fail", 500, "internal", ""},
		{"typed error", http.MethodGet, "/teapot", 418, "teapot", "spout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, ts.URL+tt.path, nil)
			res, b := do(t, req)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", res.StatusCode, tt.status, b)
			}
			e := decodeError(t, b)
			if e.Code != tt.code || e.Field != tt.field || e.Message == "" {
				t.Errorf("error = %+v, want code %q field %q", e, tt.code, tt.field)
			}
			if strings.Contains(string(b), "hunter2") {
				t.Errorf("body leaks the cause: %s", b)
			}
		})
	}
	if !strings.Contains(logs.String(), "hunter2") {
		t.Error("the cause of a 500 is not logged")
	}
}

func TestBodyLimit(t *testing.T) {
	_, ts, _ := newTestServer(t, httpserver.Config{BodyLimit: 1024})
	tests := []struct {
		name    string
		size    int
		chunked bool // no Content-Length: the limit is found while reading
		status  int
	}{
		{"under", 1024, false, 200},
		{"over, declared", 1025, false, 413},
		{"under, chunked", 1000, true, 200},
		{"over, chunked", 4096, true, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(make([]byte, tt.size))
			if tt.chunked {
				body = io.MultiReader(body) // hides the length
			}
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/echo", body)
			res, b := do(t, req)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, b)
			}
			if tt.status == 413 {
				e := decodeError(t, b)
				if e.Code != "payload_too_large" || !strings.Contains(e.Message, "1 KiB") {
					t.Errorf("error = %+v", e)
				}
			}
		})
	}
}

// TestBodyLimitFor: a route BodyLimitFor names takes bodies up to its own
// larger limit, declared or not, and no more; other routes keep the
// default.
func TestBodyLimitFor(t *testing.T) {
	s, ts, _ := newTestServer(t, httpserver.Config{BodyLimit: 1024, BodyLimitFor: func(route string) int64 {
		if route == "/big/:id" {
			return 4096
		}
		return 0
	}})
	s.Echo().POST("/big/:id", func(c echo.Context) error {
		b, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]int{"len": len(b)})
	})
	for _, tt := range []struct {
		path    string
		size    int
		chunked bool
		status  int
		limit   string
	}{
		{"/big/1", 4096, false, 200, ""},
		{"/big/1", 4096, true, 200, ""},
		{"/big/1", 4097, false, 413, "4 KiB"},
		{"/big/1", 8192, true, 413, "4 KiB"},
		{"/echo", 2048, false, 413, "1 KiB"},
		{"/echo", 2048, true, 413, "1 KiB"},
	} {
		var body io.Reader = bytes.NewReader(make([]byte, tt.size))
		if tt.chunked {
			body = io.MultiReader(body)
		}
		req, _ := http.NewRequest(http.MethodPost, ts.URL+tt.path, body)
		res, b := do(t, req)
		if res.StatusCode != tt.status {
			t.Errorf("POST %s, %d bytes (chunked %v): %d, want %d: %s", tt.path, tt.size, tt.chunked, res.StatusCode, tt.status, b)
			continue
		}
		if tt.status == 413 {
			if e := decodeError(t, b); e.Code != "payload_too_large" || !strings.Contains(e.Message, tt.limit) {
				t.Errorf("POST %s, %d bytes: %+v, want the limit %s named", tt.path, tt.size, e, tt.limit)
			}
		}
	}
}

func TestHealth(t *testing.T) {
	slow := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name   string
		checks map[string]httpserver.CheckFunc
		status int
		want   map[string]string
	}{
		{"no checks", nil, 200, nil},
		{"all pass", map[string]httpserver.CheckFunc{
			"database": func(context.Context) error { return nil },
			"cache":    func(context.Context) error { return nil },
		}, 200, map[string]string{"database": "ok", "cache": "ok"}},
		{"one fails", map[string]httpserver.CheckFunc{
			"database": func(context.Context) error { return errors.New("dial tcp 10.1.2.3:5432: refused") },
			"cache":    func(context.Context) error { return nil },
		}, 503, map[string]string{"database": "fail", "cache": "ok"}},
		{"one hangs", map[string]httpserver.CheckFunc{
			"cache": slow,
		}, 503, map[string]string{"cache": "fail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts, _ := newTestServer(t, httpserver.Config{Checks: tt.checks, ReadyTimeout: 100 * time.Millisecond})
			if res, b := get(t, ts.URL+"/healthz"); res.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"status":"ok"}` {
				t.Errorf("/healthz = %d %s", res.StatusCode, b)
			}
			res, b := get(t, ts.URL+"/readyz")
			if res.StatusCode != tt.status {
				t.Fatalf("/readyz status %d, want %d: %s", res.StatusCode, tt.status, b)
			}
			// A 503 says when to ask again, like every other 503.
			if ra := res.Header.Get("Retry-After"); (tt.status == 503) != (ra != "") {
				t.Errorf("/readyz %d with Retry-After %q", res.StatusCode, ra)
			}
			if strings.Contains(string(b), "10.1.2.3") {
				t.Errorf("/readyz leaks the cause: %s", b)
			}
			var h httpserver.Health
			if err := json.Unmarshal(b, &h); err != nil {
				t.Fatal(err)
			}
			if len(h.Checks) != len(tt.want) {
				t.Errorf("checks = %v, want %v", h.Checks, tt.want)
			}
			for k, v := range tt.want {
				if h.Checks[k] != v {
					t.Errorf("check %s = %q, want %q", k, h.Checks[k], v)
				}
			}
		})
	}
}

func TestGracefulShutdown(t *testing.T) {
	// The handler holds its request until the test has seen shutdown
	// begin (new connections refused), rather than sleeping and hoping
	// shutdown starts meanwhile.
	started, release := make(chan struct{}), make(chan struct{})
	s := httpserver.New(httpserver.Config{ShutdownTimeout: time.Minute})
	s.Echo().GET("/slow", func(c echo.Context) error {
		close(started)
		<-release
		return c.String(http.StatusOK, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		got <- result{res.StatusCode, string(b), err}
	}()

	<-started
	cancel() // as SIGTERM would
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("still accepting connections 30 s after shutdown began")
		}
	}
	close(release)

	r := <-got
	if r.err != nil || r.status != http.StatusOK || r.body != "done" {
		t.Fatalf("in-flight request: %d %q %v, want 200 done", r.status, r.body, r.err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
}

func TestShutdownTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	s := httpserver.New(httpserver.Config{ShutdownTimeout: 100 * time.Millisecond})
	s.Echo().GET("/stuck", func(c echo.Context) error {
		close(started)
		select {
		case <-release:
		case <-c.Request().Context().Done():
		}
		return nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	go func() {
		if res, err := http.Get("http://" + ln.Addr().String() + "/stuck"); err == nil {
			res.Body.Close()
		}
	}()
	<-started
	cancel()
	select {
	case err := <-served:
		if err == nil {
			t.Error("Serve returned nil although a request outlived the shutdown timeout")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve ignored its shutdown timeout")
	}
}

func TestRunListenError(t *testing.T) {
	s := httpserver.New(httpserver.Config{Listen: "256.0.0.1:bad"})
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("Run on a bad address returned nil")
	}
}

// TestClientGoneIsNot500: a handler that fails because its client closed
// the connection (its context canceled) is logged as 499, not as a 500
// at ERROR: the broker did not fail, and its 5xx counts and alerts are
// for its own failures. An error that merely wraps context.Canceled
// while the client is still there stays a 500.
func TestClientGoneIsNot500(t *testing.T) {
	var statuses sync.Map
	s, ts, logs := newTestServer(t, httpserver.Config{ObserveRequest: func(route, method string, status int, d time.Duration) {
		statuses.Store(route, status)
	}})
	entered := make(chan struct{})
	s.Echo().GET("/slow", func(c echo.Context) error {
		close(entered)
		<-c.Request().Context().Done()
		return fmt.Errorf("sessions: redis put: %w", c.Request().Context().Err())
	})
	s.Echo().GET("/canceled", func(c echo.Context) error {
		return fmt.Errorf("something inside: %w", context.Canceled)
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/slow", nil)
	go func() { <-entered; cancel() }()
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the canceled request got an answer")
	}
	var got any
	for deadline := time.Now().Add(5 * time.Second); got == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got, _ = statuses.Load("/slow")
	}
	if got != httpserver.StatusClientClosedRequest {
		t.Errorf("a request whose client went away was observed as %v, want 499", got)
	}
	if res, _ := get(t, ts.URL+"/canceled"); res.StatusCode != http.StatusInternalServerError {
		t.Errorf("context.Canceled from inside, the client still there: %d, want 500", res.StatusCode)
	}
	for _, l := range logs.lines(t) {
		if l["msg"] == "http request" && l["path"] == "/slow" && l["level"] != "INFO" {
			t.Errorf("the access log line of the abandoned request: %v", l)
		}
	}
}

// TestReadinessFailureLoggedOnce: a load balancer probes /readyz every few
// seconds on every node, so a dependency down for an hour must not write
// a WARN line per probe: its cause is logged once (then at most every
// OutageLogInterval, with the count left out), each failing check on its
// own, and its return once, at INFO.
func TestReadinessFailureLoggedOnce(t *testing.T) {
	var mu sync.Mutex
	cacheErr := errors.New("dial tcp 10.1.2.3:6379: connect: connection refused")
	_, ts, logs := newTestServer(t, httpserver.Config{ReadyTimeout: time.Second, Checks: map[string]httpserver.CheckFunc{
		"database": func(context.Context) error { return errors.New("dial tcp 10.1.2.4:5432: refused") },
		"cache": func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			return cacheErr
		},
	}})
	for range 20 {
		if res, _ := get(t, ts.URL+"/readyz"); res.StatusCode != 503 {
			t.Fatalf("/readyz = %d with both checks failing", res.StatusCode)
		}
	}
	mu.Lock()
	cacheErr = nil
	mu.Unlock()
	for range 5 {
		get(t, ts.URL+"/readyz")
	}
	failed, recovered := map[string]int{}, map[string]int{}
	for _, l := range logs.lines(t) {
		switch l["msg"] {
		case "readiness check failed":
			failed[l["check"].(string)]++
			if l["request_id"] == nil || l["error"] == nil {
				t.Errorf("readiness line without its request id or cause: %v", l)
			}
		case "readiness check passes again":
			recovered[l["check"].(string)]++
		}
	}
	if failed["cache"] != 1 || failed["database"] != 1 {
		t.Errorf("readiness failures logged %v over 20 probes; want each check's cause once", failed)
	}
	if recovered["cache"] != 1 || recovered["database"] != 0 {
		t.Errorf("recoveries logged %v; want the cache's once and nothing for the database still down", recovered)
	}
}
