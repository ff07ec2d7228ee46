package ratelimit_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/ratelimit"
)

// TestConcurrencyCap holds requests in flight in their handler and checks
// what the next one of the same key, of another key, and of a kind the
// cap does not count gets.
func TestConcurrencyCap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		// refused: whether a request of key "a" is refused while limit of
		// them are held in flight.
		refused bool
	}{
		{name: "cap of 1", limit: 1, refused: true},
		{name: "cap of 3", limit: 3, refused: true},
		{name: "no cap", limit: 0, refused: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var limited []string
			var mu sync.Mutex
			cap := &ratelimit.Concurrency{Name: "writes", Limit: tc.limit, Key: byHeader,
				Counts: func(c echo.Context) bool { return c.Request().Method != http.MethodGet },
				OnLimited: func(rule string) {
					mu.Lock()
					limited = append(limited, rule)
					mu.Unlock()
				}}
			hold := make(chan struct{})
			entered := make(chan struct{}, 8)
			e := echo.New()
			var last error
			e.HTTPErrorHandler = func(err error, c echo.Context) {
				last = err
				e.DefaultHTTPErrorHandler(err, c)
			}
			e.Any("/w", func(c echo.Context) error {
				if c.Request().Header.Get("X-Hold") != "" {
					entered <- struct{}{}
					<-hold
				}
				return c.NoContent(http.StatusNoContent)
			}, cap.Middleware())
			send := func(method, key string, held bool) *httptest.ResponseRecorder {
				req := httptest.NewRequest(method, "/w", nil)
				if key != "" {
					req.Header.Set("X-Key", key)
				}
				if held {
					req.Header.Set("X-Hold", "1")
				}
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				return rec
			}
			held := tc.limit
			if held == 0 {
				held = 2 // with no cap, as many as any
			}
			var wg sync.WaitGroup
			for range held {
				wg.Add(1)
				go func() { defer wg.Done(); send(http.MethodPost, "a", true) }()
			}
			for range held {
				<-entered
			}

			rec := send(http.MethodPost, "a", false)
			if got := rec.Code == http.StatusTooManyRequests; got != tc.refused {
				t.Fatalf("a write of the busy key: status %d, refused %v, want %v", rec.Code, got, tc.refused)
			}
			if tc.refused {
				if rec.Header().Get("Retry-After") != "1" {
					t.Errorf("Retry-After %q, want 1", rec.Header().Get("Retry-After"))
				}
				if !errors.Is(last, ratelimit.ErrBusy) || !errors.Is(last, ratelimit.ErrLimited) {
					t.Errorf("refusal %v wraps neither ErrBusy nor ErrLimited", last)
				}
				if len(limited) != 1 || limited[0] != "writes" {
					t.Errorf("OnLimited called with %v", limited)
				}
				if n := cap.InFlight("a"); n != tc.limit {
					t.Errorf("%d in flight counted, want %d", n, tc.limit)
				}
			}
			// Another key, a request the cap does not count, a request
			// with no key: all served.
			for _, r := range []struct{ method, key string }{
				{http.MethodPost, "b"}, {http.MethodGet, "a"}, {http.MethodPost, ""},
			} {
				if rec := send(r.method, r.key, false); rec.Code != http.StatusNoContent {
					t.Errorf("%s of key %q: status %d, want 204", r.method, r.key, rec.Code)
				}
			}

			close(hold)
			wg.Wait()
			if n := cap.InFlight("a"); n != 0 {
				t.Fatalf("%d still counted after every request ended", n)
			}
			if rec := send(http.MethodPost, "a", false); rec.Code != http.StatusNoContent {
				t.Errorf("after the held requests ended: status %d, want 204", rec.Code)
			}
		})
	}
}

// TestConcurrencyReleaseOnError: a request that fails (or panics into
// the server's recovery) gives its place back.
func TestConcurrencyReleaseOnError(t *testing.T) {
	cap := &ratelimit.Concurrency{Name: "writes", Limit: 1, Key: byHeader}
	e := echo.New()
	e.GET("/fail", func(echo.Context) error { return errors.New("boom") }, cap.Middleware())
	e.GET("/panic", func(echo.Context) error { panic("boom") }, cap.Middleware())
	for _, path := range []string{"/fail", "/fail", "/panic", "/panic"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("X-Key", "a")
		rec := httptest.NewRecorder()
		func() {
			defer func() { _ = recover() }()
			e.ServeHTTP(rec, req)
		}()
		if rec.Code == http.StatusTooManyRequests {
			t.Fatalf("%s: refused: the place of an earlier request was not given back", path)
		}
	}
	if n := cap.InFlight("a"); n != 0 {
		t.Fatalf("%d counted after every request ended", n)
	}
}

// TestConcurrencyWait: a request finding every place taken waits for one
// (and gets it when one is given back), until Wait; at most
// queuedPerPlace×Limit requests of a key wait, the next is refused at
// once; other keys neither wait nor are counted.
func TestConcurrencyWait(t *testing.T) {
	cap := &ratelimit.Concurrency{Name: "writes", Limit: 1, Key: byHeader, Wait: 5 * time.Second}
	ctx := t.Context()
	if !cap.AcquireWait(ctx, "a") {
		t.Fatal("first place refused")
	}
	got := make(chan bool, 1)
	go func() { got <- cap.AcquireWait(ctx, "a") }()
	select {
	case ok := <-got:
		t.Fatalf("second request answered %v while the place was taken; want it to wait", ok)
	case <-time.After(50 * time.Millisecond):
	}
	if !cap.AcquireWait(ctx, "b") {
		t.Fatal("another key waited or was refused")
	}
	cap.Release("b")
	cap.Release("a")
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("the waiting request was refused although a place was given back")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting request did not get the place given back")
	}

	// The place is taken again (by the waiter); fill the queue.
	short := &ratelimit.Concurrency{Name: "writes", Limit: 1, Key: byHeader, Wait: 300 * time.Millisecond}
	if !short.AcquireWait(ctx, "a") {
		t.Fatal("first place refused")
	}
	var wg sync.WaitGroup
	results := make(chan bool, 4)
	for range 4 { // queuedPerPlace × Limit
		wg.Go(func() { results <- short.AcquireWait(ctx, "a") })
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if short.AcquireWait(ctx, "a") {
		t.Fatal("a fifth waiter got a place")
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("a request past the queue's bound waited %v; want refused at once", d)
	}
	wg.Wait()
	close(results)
	for ok := range results {
		if ok {
			t.Error("a waiter got a place no one gave back")
		}
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("waiters refused after %v; want after Wait", d)
	}
	short.Release("a")
	if n := short.InFlight("a"); n != 0 {
		t.Fatalf("%d in flight after all ended", n)
	}
}
