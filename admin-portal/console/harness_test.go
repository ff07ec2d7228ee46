package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/slo"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
	"github.com/idbroker/idbroker/web"
)

// clock is the console's clock in tests: real time plus an offset the test
// moves, to reach the next TOTP step without waiting for it.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

type harness struct {
	url      string
	db       *store.DB
	sessions *sessions.Memory
	clock    *clock
	links    []string // portal links handed out
	// transport trusts the server's certificate when it is https.
	transport http.RoundTripper
}

// start serves the console, the operator API's tenant changes and the
// static assets on a fresh PostgreSQL database, behind an httptest server
// whose URL is the issuer (issuer, when set, overrides it for cookies).
func start(t *testing.T, issuer string) *harness {
	t.Helper()
	return startOn(t, issuer, false)
}

// startOn is start behind an https server when tls is set; h.transport
// trusts its certificate.
func startOn(t *testing.T, issuer string, tls bool) *harness {
	t.Helper()
	return startWith(t, issuer, tls, storetest.Postgres(t))
}

// startWith is startOn on the store db.
func startWith(t *testing.T, issuer string, tls bool, db *store.DB) *harness {
	t.Helper()
	return startNode(t, issuer, tls, db, nil, &clock{})
}

// startNode is startWith counting failed sign-ins in attempts (nil: the
// console's in-process default) on the clock clk: several of them on one
// database, attempts and clock are the nodes of one deployment.
func startNode(t *testing.T, issuer string, tls bool, db *store.DB, attempts console.Attempts, clk *clock) *harness {
	t.Helper()
	h := &harness{db: db, sessions: sessions.NewMemory(), clock: clk}
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
	if issuer == "" {
		issuer = ts.URL
	}
	api := adminportal.NewAPI(adminportal.APIConfig{Store: h.db, Sessions: h.sessions})
	c := console.New(console.Config{
		Issuer:     issuer,
		Store:      h.db,
		Tenants:    api,
		Now:        h.clock.Now,
		Attempts:   attempts,
		Sessions:   h.sessions,
		RevokeUser: api.RevokeUserSessions,
		SLO: func(ctx context.Context, t store.Tenant) (slo.Result, error) {
			return slo.Report(ctx, h.db, t, time.Now())
		},
		PortalLink: func(ctx context.Context, _ store.Actor, intent string) (string, time.Time, error) {
			id, _ := store.TenantFrom(ctx)
			link := ts.URL + "/portal/test-link?tenant=" + id + "&intent=" + intent
			h.links = append(h.links, link)
			return link, time.Now().Add(5 * time.Minute), nil
		},
	})
	srv := httpserver.New(httpserver.Config{})
	e := srv.Echo()
	c.Mount(e)
	api.Mount(e)
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static", web.Static())))
	handler = srv.Handler()
	return h
}

// client is an HTTP client that does not follow redirects.
func client() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func newTenant(t *testing.T, db *store.DB, name string) store.Tenant {
	t.Helper()
	tn, err := db.CreateTenant(context.Background(), store.Tenant{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// get sends GET path with the console session cookie (none when cookie is
// empty) and returns the answer with its body read.
func (h *harness) get(t *testing.T, cookie, path string) (*http.Response, string) {
	t.Helper()
	return h.do(t, cookie, "GET", path, nil)
}

// do is get for any method, with form (when not nil) as the body.
func (h *harness) do(t *testing.T, cookie, method, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: console.SessionCookie, Value: cookie})
	}
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// session is a console session of the dev operator.
type session struct {
	email, operatorID, token, csrf string
}

// signIn seeds the dev operator and opens a console session for it
// directly in the store: the tests of pages skip the password and TOTP
// steps, which the browser test walks.
func (h *harness) signIn(t *testing.T) session {
	t.Helper()
	ctx := context.Background()
	dev, _, err := console.SeedDevOperator(ctx, h.db)
	if err != nil {
		t.Fatal(err)
	}
	op, err := h.db.OperatorByEmail(ctx, dev.Email)
	if err != nil {
		t.Fatal(err)
	}
	s := session{email: dev.Email, operatorID: op.ID, token: secrets.NewToken(""), csrf: "csrf-" + secrets.NewToken("")}
	if _, err := h.db.CreateOperatorSession(ctx, store.OperatorSession{TokenHash: secrets.HashToken(s.token), OperatorID: op.ID,
		CSRFToken: s.csrf, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return s
}
