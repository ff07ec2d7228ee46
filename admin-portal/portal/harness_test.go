package portal

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/connections/saml/samltest"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
	"github.com/idbroker/idbroker/web"
)

// harness is a portal on a fresh SQLite store behind an httptest server,
// with a clock the test moves.
type harness struct {
	t      *testing.T
	url    string
	portal *Portal
	store  *store.DB
	reg    *connections.Registry
	// transport is what clients use: it trusts the server's certificate.
	transport http.RoundTripper

	mu  sync.Mutex
	now time.Time
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessOn(t, false)
}

// newHarnessOn starts the portal behind an https server (its issuer then
// https) when tls is set, else behind http on localhost.
func newHarnessOn(t *testing.T, tls bool) *harness {
	t.Helper()
	h := &harness{t: t, store: storetest.SQLite(t), now: time.Now()}
	var handler http.Handler
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	if tls {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	h.url = ts.URL
	h.transport = ts.Client().Transport
	mem := sessions.NewMemory()
	h.reg = connections.NewRegistry(connections.Config{Types: connections.Types{saml.Name: saml.Type{NewKey: samltest.Keys()}, oidc.Name: oidc.New()}, Issuer: ts.URL, Store: h.store, Once: mem, Sessions: mem,
		HTTPClient: safehttp.NewClient(safehttp.Options{AllowPrivate: true}), AllowInsecureURLs: true})
	p, err := New(Config{Issuer: ts.URL, Store: h.store, Connections: h.reg, SCIMBaseURL: func(id string) string { return ts.URL + "/scim/v2/" + id },
		Product: "Acme HR", Now: h.clock, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h.portal = p
	srv := httpserver.New(httpserver.Config{})
	e := srv.Echo()
	e.GET("/static/*", func(c echo.Context) error {
		http.StripPrefix("/static", web.Static()).ServeHTTP(c.Response(), c.Request())
		return nil
	})
	h.reg.Mount(e, p.Complete(func(ctx context.Context, w http.ResponseWriter, r *http.Request, conn store.Connection, res connections.Result, err error) {
		http.Error(w, "broker", http.StatusTeapot)
	}))
	p.Mount(e)
	handler = srv.Handler()
	return h
}

// tenant creates a tenant with a verified domain.
func (h *harness) tenant(name, domain string) context.Context {
	h.t.Helper()
	ctx := context.Background()
	tn, err := h.store.CreateTenant(ctx, store.Tenant{Name: name})
	if err != nil {
		h.t.Fatal(err)
	}
	tctx := store.WithTenant(ctx, tn.ID)
	if domain != "" {
		if _, err := h.store.AddDomain(tctx, store.Domain{Domain: domain, Verified: true, VerificationToken: "t"}); err != nil {
			h.t.Fatal(err)
		}
	}
	return tctx
}

func (h *harness) link(ctx context.Context, intent string) string {
	h.t.Helper()
	u, _, err := h.portal.CreateLink(ctx, intent, "https://app.example/settings")
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

// client is a browser-like client: cookies, no redirects followed.
func (h *harness) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: h.transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// open opens link in a fresh client and returns the client, signed in.
func (h *harness) open(link string) *http.Client {
	h.t.Helper()
	c := h.client()
	resp, err := c.Get(link)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		h.t.Fatalf("open link: %d", resp.StatusCode)
	}
	return c
}

// continueLink posts a link page's Continue button with client c.
func (h *harness) continueLink(c *http.Client, link string) *http.Response {
	h.t.Helper()
	resp, err := c.Post(link, "application/x-www-form-urlencoded", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	return readPage(t, resp, err)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	return readPage(t, resp, err)
}

// readPage reads the answer of a request whose error is err; a body cut short
// is returned as far as it came.
func readPage(t *testing.T, resp *http.Response, err error) (*http.Response, string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// csrfOf reads the CSRF token from a page.
func csrfOf(t *testing.T, body string) string {
	t.Helper()
	const marker = `name="csrf_token" value="`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no CSRF field in page:\n%s", body)
	}
	rest := body[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

func connectionsSettingsNone() connections.Settings { return connections.Settings{} }

// testWriter sends the portal's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
