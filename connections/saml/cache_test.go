package saml

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/connectionstest"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// spyStore is the real store, every call passed through, counting the
// reads an SSO request could make: it shows which requests touch SQL.
type spyStore struct {
	store.Store
	mu    sync.Mutex
	reads []string
}

func (s *spyStore) read(name string) {
	s.mu.Lock()
	s.reads = append(s.reads, name)
	s.mu.Unlock()
}

// take returns the reads since the last take.
func (s *spyStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reads
	s.reads = nil
	return r
}

func (s *spyStore) ResolveConnection(ctx context.Context, id string) (string, error) {
	s.read("ResolveConnection")
	return s.Store.ResolveConnection(ctx, id)
}

func (s *spyStore) Connection(ctx context.Context, id string) (store.Connection, error) {
	s.read("Connection")
	return s.Store.Connection(ctx, id)
}

func (s *spyStore) Connections(ctx context.Context) ([]store.Connection, error) {
	s.read("Connections")
	return s.Store.Connections(ctx)
}

func (s *spyStore) Tenant(ctx context.Context) (store.Tenant, error) {
	s.read("Tenant")
	return s.Store.Tenant(ctx)
}

func (s *spyStore) TenantStatus(ctx context.Context) (store.TenantStatus, error) {
	s.read("TenantStatus")
	return s.Store.TenantStatus(ctx)
}

func (s *spyStore) Domains(ctx context.Context) ([]store.Domain, error) {
	s.read("Domains")
	return s.Store.Domains(ctx)
}

func (s *spyStore) Domain(ctx context.Context, ref string) (store.Domain, error) {
	s.read("Domain")
	return s.Store.Domain(ctx, ref)
}

func (s *spyStore) ResolveDomain(ctx context.Context, domain string) (string, error) {
	s.read("ResolveDomain")
	return s.Store.ResolveDomain(ctx, domain)
}

// acsVia posts a response to the ACS of conn on one node's handler and
// returns what that node's CompleteFunc received.
func (e *env) acsVia(h http.Handler, conn store.Connection, signer *testIdP, reqID string) completion {
	e.T.Helper()
	raw := signer.response(e.T, e.Issuer, conn, respOpts{signAssertion: true, inResponseTo: reqID, issuedAt: e.Clock.Now()})
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(raw)}, "RelayState": {e.pend(conn, reqID, "b")}}
	req := httptest.NewRequest(http.MethodPost, "/sso/saml/"+conn.ID+"/acs", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.Completion(func() { h.ServeHTTP(httptest.NewRecorder(), req) })
}

// TestACSServedFromCache: once a connection and its tenant are cached, an
// ACS request runs no SQL of its own; a change made through the Registry
// applies to the next request without waiting for the cache.
func TestACSServedFromCache(t *testing.T) {
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			o := b.Open(t)
			spy := &spyStore{Store: o.DB}
			o.DB = spy
			e := newEnv(t, o)
			idp, rolled := newTestIdP(t, 0), newTestIdP(t, 1)
			conn := e.samlConn(idp, nil)
			h := e.Srv.Config.Handler

			e.Clock.Add(connections.DefaultCacheTTL) // whatever creating it cached is stale now
			spy.take()
			if c := e.acsVia(h, conn, idp, "id-1"); c.Err != nil {
				t.Fatalf("first ACS: %v", c.Err)
			}
			if got := spy.take(); !slices.Contains(got, "Connection") || !slices.Contains(got, "Domains") {
				t.Fatalf("first ACS after the TTL read %v; want the connection and the tenant read again", got)
			}
			for i, id := range []string{"id-2", "id-3"} {
				if c := e.acsVia(h, conn, idp, id); c.Err != nil || c.Res.Profile.Email != "alice@example.com" {
					t.Fatalf("ACS %d: %v", i+2, c.Err)
				}
				if got := spy.take(); len(got) != 0 {
					t.Fatalf("ACS %d with a warm cache read the store: %v", i+2, got)
				}
			}

			// The IdP's certificate is replaced through the Registry: the very
			// next response signed with the old key is refused, the new one
			// accepted.
			if _, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Settings: Settings{
				IdPCertificatesPEM: &PEMList{certPEM(rolled.cert)}}.Request()}, nil); err != nil {
				t.Fatal(err)
			}
			if c := e.acsVia(h, conn, idp, "id-4"); !errors.Is(c.Err, connections.ErrSignature) {
				t.Fatalf("old key after the certificate change: %v", c.Err)
			}
			if c := e.acsVia(h, conn, rolled, "id-5"); c.Err != nil {
				t.Fatalf("new key after the certificate change: %v", c.Err)
			}
			// Deactivated through the Registry: refused at once; back on: at once.
			if _, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Status: ptr(store.ConnectionInactive)}, nil); err != nil {
				t.Fatal(err)
			}
			if c := e.acsVia(h, conn, rolled, "id-6"); !errors.Is(c.Err, connections.ErrConnectionInactive) {
				t.Fatalf("ACS right after deactivation: %v", c.Err)
			}
			if _, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Status: ptr(store.ConnectionActive)}, nil); err != nil {
				t.Fatal(err)
			}
			spy.take()
			if c := e.acsVia(h, conn, rolled, "id-7"); c.Err != nil {
				t.Fatalf("ACS right after reactivation: %v", c.Err)
			}
			if got := spy.take(); len(got) != 0 {
				t.Fatalf("ACS after an update through the Registry read the store: %v", got)
			}
			// Deleted through the Registry: unknown at once.
			if err := e.Reg.DeleteConnection(e.Ctx, conn.ID, 0, nil); err != nil {
				t.Fatal(err)
			}
			if c := e.acsVia(h, conn, rolled, "id-8"); !errors.Is(c.Err, connections.ErrNotFound) {
				t.Fatalf("ACS right after deletion: %v", c.Err)
			}
		})
	}
}

// TestConnectionCacheCrossTenant: another tenant's attempt on a cached
// connection is a 404 that leaves both the store and the cache as they were.
func TestConnectionCacheCrossTenant(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	conn := e.samlConn(idp, nil)
	h := e.Srv.Config.Handler
	if c := e.acsVia(h, conn, idp, "id-1"); c.Err != nil {
		t.Fatal(c.Err)
	}
	octx := store.WithTenant(context.Background(), e.NewTenant("Globex", "globex.example"))
	if _, err := e.Reg.UpdateConnection(octx, conn.ID, connections.Update{Status: ptr(store.ConnectionInactive)}, nil); !errors.Is(err, connections.ErrNotFound) {
		t.Fatalf("cross-tenant deactivate: %v", err)
	}
	if err := e.Reg.DeleteConnection(octx, conn.ID, 0, nil); !errors.Is(err, connections.ErrNotFound) {
		t.Fatalf("cross-tenant delete: %v", err)
	}
	if c := e.acsVia(h, conn, idp, "id-2"); c.Err != nil || c.Res.Profile.TenantID != e.Tenant || c.Conn.TenantID != e.Tenant {
		t.Fatalf("ACS after refused cross-tenant changes: %v, tenant %q", c.Err, c.Res.Profile.TenantID)
	}
	if got, err := e.DB.Connection(e.Ctx, conn.ID); err != nil || got.Status != store.ConnectionActive {
		t.Fatalf("store after refused cross-tenant changes: %v %v", got.Status, err)
	}
}

// TestTenantCache: a paused tenant stops logins on this node within the
// TTL, or at once after ForgetTenant; so does a domain no longer verified.
func TestTenantCache(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	conn := e.samlConn(idp, nil)
	h := e.Srv.Config.Handler
	if c := e.acsVia(h, conn, idp, "id-1"); c.Err != nil {
		t.Fatal(c.Err)
	}
	if _, err := e.DB.UpdateTenant(e.Ctx, store.TenantUpdate{Status: ptr(store.TenantPaused)}); err != nil {
		t.Fatal(err)
	}
	// Within the TTL the cached status still admits (the broker's own
	// check refuses it); after it, or after ForgetTenant, refused here.
	if c := e.acsVia(h, conn, idp, "id-2"); c.Err != nil {
		t.Fatalf("within the TTL: %v", c.Err)
	}
	e.Clock.Add(connections.DefaultCacheTTL)
	if c := e.acsVia(h, conn, idp, "id-3"); !errors.Is(c.Err, connections.ErrTenantInactive) {
		t.Fatalf("paused tenant after the TTL: %v", c.Err)
	}
	if _, err := e.DB.UpdateTenant(e.Ctx, store.TenantUpdate{Status: ptr(store.TenantActive)}); err != nil {
		t.Fatal(err)
	}
	e.Reg.ForgetTenant(e.Tenant)
	if c := e.acsVia(h, conn, idp, "id-4"); c.Err != nil {
		t.Fatalf("reactivated tenant after ForgetTenant: %v", c.Err)
	}
	if err := e.DB.DeleteDomain(e.Ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	e.Reg.ForgetTenant(e.Tenant)
	if c := e.acsVia(h, conn, idp, "id-5"); !errors.Is(c.Err, connections.ErrDomainNotAllowed) {
		t.Fatalf("domain removed, after ForgetTenant: %v", c.Err)
	}
}

// TestConnectionCacheAcrossNodes: node A deactivates a connection that
// node B holds in its cache. B stops logins within CacheTTL, and a session
// B let through meanwhile is revoked by A's second sweep; a connection
// turned back on before the sweep keeps its new sessions.
func TestConnectionCacheAcrossNodes(t *testing.T) {
	const ttl = 300 * time.Millisecond
	for _, b := range []connectionstest.Backend{
		{Name: "sqlite+memory", Open: func(t *testing.T) envOpts {
			m := sessions.NewMemory()
			return envOpts{DB: storetest.SQLite(t), Once: m, Sessions: m, CacheTTL: ttl}
		}},
		{Name: "postgres+redis", Open: func(t *testing.T) envOpts {
			r := sessionstest.NewRedis(t)
			return envOpts{DB: storetest.Postgres(t), Once: r, Sessions: r, CacheTTL: ttl}
		}},
	} {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.Open(t))
			idp := newTestIdP(t, 0)
			conn, conn2, conn3 := e.samlConn(idp, nil), e.samlConn(idp, nil), e.samlConn(idp, nil)
			nodeA := e.Srv.Config.Handler
			regB := e.NewRegistry()
			echB := echo.New()
			regB.Mount(echB, e.Complete)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := regB.Watch(ctx); err != nil {
				t.Fatal(err)
			}
			for i, c := range []store.Connection{conn, conn2, conn3} {
				if got := e.acsVia(echB, c, idp, "warm-"+c.ID); got.Err != nil {
					t.Fatalf("node B, connection %d: %v", i, got.Err)
				}
			}
			ss := e.Opts.Sessions
			newSession := func(id, connID string) {
				now := time.Now()
				if err := ss.Create(context.Background(), sessions.Session{ID: id, TenantID: e.Tenant, UserID: "usr_1",
					ConnectionID: connID, AuthTime: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}

			// conn3 has a live session: its revocation, published to every
			// node, tells node B at once.
			newSession("ses_3", conn3.ID)
			if _, err := e.Reg.UpdateConnection(e.Ctx, conn3.ID, connections.Update{Status: ptr(store.ConnectionInactive)}, nil); err != nil {
				t.Fatal(err)
			}
			// The cache's TTL runs on the test's clock, which stands still
			// here: only the published revocation can end this loop.
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
				c := e.acsVia(echB, conn3, idp, "b-3")
				if errors.Is(c.Err, connections.ErrConnectionInactive) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node B still serves a connection whose sessions were revoked: %v", c.Err)
				}
			}

			// conn2 goes off and on again on node A; its later session stays.
			for _, s := range []store.ConnectionStatus{store.ConnectionInactive, store.ConnectionActive} {
				if _, err := e.Reg.UpdateConnection(e.Ctx, conn2.ID, connections.Update{Status: ptr(s)}, nil); err != nil {
					t.Fatal(err)
				}
			}
			newSession("ses_after_reactivation", conn2.ID)

			if _, err := e.Reg.UpdateConnection(e.Ctx, conn.ID, connections.Update{Status: ptr(store.ConnectionInactive)}, nil); err != nil {
				t.Fatal(err)
			}
			if c := e.acsVia(nodeA, conn, idp, "a-1"); !errors.Is(c.Err, connections.ErrConnectionInactive) {
				t.Fatalf("node A right after deactivating: %v", c.Err)
			}
			// Node B has not heard yet: within the TTL it still admits, and
			// the broker would open a session.
			if c := e.acsVia(echB, conn, idp, "b-1"); c.Err != nil {
				t.Fatalf("node B within the TTL: %v", c.Err)
			}
			newSession("ses_late", conn.ID)
			e.Clock.Add(ttl)
			if c := e.acsVia(echB, conn, idp, "b-2"); !errors.Is(c.Err, connections.ErrConnectionInactive) {
				t.Fatalf("node B after the TTL: %v", c.Err)
			}
			// Node A's second sweep ends the late session.
			// The sweep runs max(2*ttl, ttl+1s) after the deactivation.
			// Generous: the sweep's timer is real, and a loaded machine
			// may run it late; late is not wrong.
			deadline := time.Now().Add(2*ttl + time.Second + time.Minute)
			for {
				_, err := ss.Get(context.Background(), "ses_late")
				if errors.Is(err, sessions.ErrNotFound) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("session opened by a stale node survived the deactivation: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond) // conn2's sweep was due first
			if _, err := ss.Get(context.Background(), "ses_after_reactivation"); err != nil {
				t.Fatalf("sweep ended a session of a connection turned back on: %v", err)
			}
		})
	}
}
