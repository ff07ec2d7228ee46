// Package connectionstest runs connection types the way the broker does,
// for their tests: a real store and once cache, a connections.Registry
// mounted on an HTTP server, a settable clock, and a CompleteFunc that
// records what each login ended with.
package connectionstest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// Clock is a settable clock shared by the registry and a test IdP.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Add moves the clock.
func (c *Clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Options shape an Env; the zero value is SQLite and an in-memory cache.
type Options struct {
	DB       store.Store
	Once     sessions.OnceCache
	Sessions sessions.Store
	CacheTTL time.Duration
	// Admit is the Registry's Config.Admit (nil: none).
	Admit func(ctx context.Context, tenantID string) (release func(), ok bool)
	// OnCertificates is the Registry's Config.OnCertificates (nil: none).
	OnCertificates func(expiring, expired int)
}

// Env is a broker-side environment for one test.
type Env struct {
	T      testing.TB
	Types  connections.Types
	DB     store.Store
	Once   sessions.OnceCache
	Reg    *connections.Registry
	Srv    *httptest.Server
	Issuer string
	Clock  *Clock
	// Tenant has the verified domain example.com; Ctx is scoped to it.
	Tenant string
	Ctx    context.Context
	Opts   Options

	mu      sync.Mutex
	results []Completion
}

// Completion is what the CompleteFunc received for one request.
type Completion struct {
	Conn store.Connection
	Res  connections.Result
	Err  error
}

// New returns an Env serving types.
func New(tb testing.TB, types connections.Types, o Options) *Env {
	tb.Helper()
	if o.DB == nil {
		o.DB = storetest.SQLite(tb)
	}
	if o.Once == nil {
		o.Once = sessions.NewMemory()
	}
	e := &Env{T: tb, Types: types, DB: o.DB, Once: o.Once, Opts: o, Clock: &Clock{t: time.Now().UTC().Truncate(time.Second)}}
	ech := echo.New()
	e.Srv = httptest.NewServer(ech)
	tb.Cleanup(e.Srv.Close)
	e.Issuer = e.Srv.URL
	e.Reg = e.NewRegistry()
	e.Reg.Mount(ech, e.Complete)
	e.Tenant = e.NewTenant("Acme", "example.com")
	e.Ctx = store.WithTenant(context.Background(), e.Tenant)
	return e
}

// NewRegistry is another broker node's Registry: same issuer, store,
// caches and clock; its client may reach loopback IdPs.
func (e *Env) NewRegistry() *connections.Registry {
	return connections.NewRegistry(connections.Config{
		Types: e.Types, Issuer: e.Issuer, Store: e.DB, Once: e.Once, Sessions: e.Opts.Sessions,
		HTTPClient:        safehttp.NewClient(safehttp.Options{AllowPrivate: true}),
		AllowInsecureURLs: true,
		Now:               e.Clock.Now,
		CacheTTL:          e.Opts.CacheTTL,
		Admit:             e.Opts.Admit,
		OnCertificates:    e.Opts.OnCertificates,
	})
}

// NewTenant creates an active tenant with domain verified.
func (e *Env) NewTenant(name, domain string) string {
	e.T.Helper()
	ctx := context.Background()
	tn, err := e.DB.CreateTenant(ctx, store.Tenant{Name: name, Status: store.TenantActive})
	if err != nil {
		e.T.Fatal(err)
	}
	tctx := store.WithTenant(ctx, tn.ID)
	if _, err := e.DB.AddDomain(tctx, store.Domain{Domain: domain, VerificationToken: "idb-" + secrets.NewToken("")[:10]}); err != nil {
		e.T.Fatal(err)
	}
	if _, err := e.DB.MarkDomainVerified(tctx, domain); err != nil {
		e.T.Fatal(err)
	}
	return tn.ID
}

// Complete is the Env's CompleteFunc, for another node's Registry.
func (e *Env) Complete(ctx context.Context, w http.ResponseWriter, r *http.Request, conn store.Connection, res connections.Result, err error) {
	e.mu.Lock()
	e.results = append(e.results, Completion{conn, res, err})
	e.mu.Unlock()
	if err != nil {
		http.Error(w, "login failed", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("welcome " + res.Profile.Email))
}

// Last is what the CompleteFunc received last.
func (e *Env) Last() Completion {
	e.T.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.results) == 0 {
		e.T.Fatal("CompleteFunc was not called")
	}
	return e.results[len(e.results)-1]
}

// Completion runs do, which must reach the CompleteFunc exactly once, and
// returns what it received: unlike Last, never an earlier request's.
func (e *Env) Completion(do func()) Completion {
	e.T.Helper()
	e.mu.Lock()
	before := len(e.results)
	e.mu.Unlock()
	do()
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := len(e.results) - before; n != 1 {
		e.T.Fatalf("CompleteFunc called %d times, want once", n)
	}
	return e.results[len(e.results)-1]
}

// Get requests u without following redirects and returns what the
// CompleteFunc received for it.
func (e *Env) Get(u string) Completion {
	e.T.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e.Completion(func() {
		resp, err := noFollow.Get(u)
		if err != nil {
			e.T.Fatal(err)
		}
		resp.Body.Close()
	})
}

// Events returns the events of type typ, all tenants.
func (e *Env) Events(typ string) []store.Event {
	e.T.Helper()
	evs, _, err := e.DB.ListEvents(context.Background(), store.Page{Limit: 100})
	if err != nil {
		e.T.Fatal(err)
	}
	var out []store.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// Backend is a store and cache pair the end-to-end tests run on.
type Backend struct {
	Name string
	Open func(t *testing.T) Options
}

// Backends are SQLite with the in-memory cache, and PostgreSQL with
// Redis.
var Backends = []Backend{
	{Name: "sqlite+memory", Open: func(t *testing.T) Options { return Options{DB: storetest.SQLite(t), Once: sessions.NewMemory()} }},
	{Name: "postgres+redis", Open: func(t *testing.T) Options {
		r := sessionstest.NewRedis(t)
		return Options{DB: storetest.Postgres(t), Once: r, Sessions: r}
	}},
}
