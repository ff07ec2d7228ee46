package httpserver_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
)

// TestMethodNotAllowed: a known path asked with another method is 405 with
// Allow, also inside a group with middleware (whose catch-all would answer
// 404) and past a surface's own catch-all route; an unknown path stays 404.
func TestMethodNotAllowed(t *testing.T) {
	s := httpserver.New(httpserver.Config{})
	e := s.Echo()
	ok := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	e.GET("/plain", ok)
	var authed atomic.Int32
	g := e.Group("/api", func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { authed.Add(1); return next(c) }
	})
	g.GET("/items", ok)
	g.POST("/items", ok)
	g.GET("/items/:id", ok)
	g.DELETE("/items/:id", ok)
	own := e.Group("/pages", func(next echo.HandlerFunc) echo.HandlerFunc { return next })
	own.GET("/a", ok)
	own.Any("/*", func(c echo.Context) error {
		if m := httpserver.MethodNotAllowed(c); m != nil {
			return m
		}
		return echo.ErrNotFound
	})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	for _, tt := range []struct {
		method, path string
		status       int
		allow, msg   string
	}{
		{"DELETE", "/plain", 405, "GET", "DELETE is not allowed here; this path takes GET"},
		{"PUT", "/api/items", 405, "GET, POST", "PUT is not allowed here; this path takes GET or POST"},
		{"POST", "/api/items/it_1", 405, "GET, DELETE", "POST is not allowed here; this path takes GET or DELETE"},
		{"GET", "/api/items/it_1", 204, "", ""},
		{"GET", "/api/nothing", 404, "", "not found"},
		{"PATCH", "/pages/a", 405, "GET", "PATCH is not allowed here; this path takes GET"},
		{"PATCH", "/pages/b", 404, "", "not found"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, ts.URL+tt.path, nil)
			res, b := do(t, req)
			if res.StatusCode != tt.status || res.Header.Get("Allow") != tt.allow && tt.status != 405 {
				t.Fatalf("%d Allow %q %s, want %d", res.StatusCode, res.Header.Get("Allow"), b, tt.status)
			}
			if tt.status == 405 {
				// echo's own 405 lists OPTIONS too.
				if a := res.Header.Get("Allow"); a != tt.allow && a != "OPTIONS, "+tt.allow {
					t.Errorf("Allow = %q, want %q", a, tt.allow)
				}
			}
			if tt.msg == "" {
				return
			}
			e := decodeError(t, b)
			if e.Message != tt.msg || (tt.status == 405) != (e.Code == httpserver.CodeMethodNotAllowed) {
				t.Errorf("error = %+v, want message %q", e, tt.msg)
			}
		})
	}
	if authed.Load() == 0 {
		t.Error("the group's middleware did not run before the 405")
	}
}
