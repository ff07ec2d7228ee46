package httpserver_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
)

// TestDependencyOutageIs503: an error that is a refused or broken
// connection answers 503 with Retry-After, never 500; anything else
// unknown stays a 500.
func TestDependencyOutageIs503(t *testing.T) {
	srv := httpserver.New(httpserver.Config{})
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	srv.Echo().GET("/down", func(echo.Context) error { return fmt.Errorf("load tenant: %w", refused) })
	srv.Echo().GET("/reset", func(echo.Context) error { return fmt.Errorf("query: %w", syscall.ECONNRESET) })
	srv.Echo().GET("/bug", func(echo.Context) error { return errors.New("nil map") })
	for path, want := range map[string]int{"/down": 503, "/reset": 503, "/bug": 500} {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
		if ra := rec.Header().Get("Retry-After"); (want == 503) != (ra != "") {
			t.Errorf("%s: Retry-After %q", path, ra)
		}
		if want == 503 && !strings.Contains(rec.Body.String(), `"code":"unavailable"`) {
			t.Errorf("%s: body %s", path, rec.Body)
		}
	}
}

// TestRenderErrorsByPrefix: errors the server answers itself (a body over
// its limit, an unknown route) use the renderer of the longest matching
// prefix, else the default JSON.
func TestRenderErrorsByPrefix(t *testing.T) {
	srv := httpserver.New(httpserver.Config{BodyLimit: 10})
	render := func(name string) httpserver.ErrorRenderer {
		return func(c echo.Context, e *httpserver.Error) error {
			return c.String(e.Status, name+":"+e.Code)
		}
	}
	srv.RenderErrors("/scim/", render("scim"))
	srv.RenderErrors("/scim/v2/special/", render("special"))
	srv.RenderErrors("/oauth/", render("oauth"))
	ok := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	for _, p := range []string{"/scim/v2/x", "/scim/v2/special/x", "/oauth/token", "/api/v1/x"} {
		srv.Echo().POST(p, ok)
	}
	for path, want := range map[string]string{
		"/scim/v2/x":         "scim:payload_too_large",
		"/scim/v2/special/x": "special:payload_too_large",
		"/oauth/token":       "oauth:payload_too_large",
		"/api/v1/x":          `"code":"payload_too_large"`,
	} {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(strings.Repeat("x", 100))))
		if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %d %s, want 413 %s", path, rec.Code, rec.Body, want)
		}
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth/nothing", nil))
	if rec.Code != http.StatusNotFound || rec.Body.String() != "oauth:not_found" {
		t.Errorf("unknown /oauth/ route: %d %s", rec.Code, rec.Body)
	}
}

// TestRenderBrowserErrors: an unknown URL no surface claims renders
// through the browser renderer when the request asks for HTML, and as
// JSON otherwise, or under an excepted prefix whoever asks.
func TestRenderBrowserErrors(t *testing.T) {
	srv := httpserver.New(httpserver.Config{})
	srv.RenderErrors("/oauth/", func(c echo.Context, e *httpserver.Error) error { return c.String(e.Status, "oauth:"+e.Code) })
	srv.RenderBrowserErrors(func(c echo.Context, e *httpserver.Error) error {
		return c.HTML(e.Status, "<p>page:"+e.Code+"</p>")
	}, "/api/")
	for _, tc := range []struct{ path, accept, want string }{
		{"/consle", "text/html,application/xhtml+xml,*/*;q=0.8", "<p>page:not_found</p>"},
		{"/consle", "*/*", `"code":"not_found"`},
		{"/consle", "", `"code":"not_found"`},
		{"/api/v2/tenants", "text/html", `"code":"not_found"`},
		{"/oauth/nothing", "text/html", "oauth:not_found"},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s (Accept %q): %d %s, want 404 %s", tc.path, tc.accept, rec.Code, rec.Body, tc.want)
		}
	}
}
