package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
	"github.com/idbroker/idbroker/usage"
)

// txSpy is the real store, every call passed through, recording which of
// a sign-in's completion steps ran in which top-level transaction.
type txSpy struct {
	store.Store
	mu      sync.Mutex
	txs     []*spiedTx
	outside []string
	// together are the calls made inside ReadTogether.
	together []string
}

type spiedTogetherKey struct{}

func (s *txSpy) ReadTogether(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.Store.ReadTogether(ctx, func(ctx context.Context) error {
		return fn(context.WithValue(ctx, spiedTogetherKey{}, true))
	})
}

type spiedTx struct{ calls []string }

type spiedTxKey struct{}

func (s *txSpy) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(spiedTxKey{}).(*spiedTx); ok {
		return s.Store.InTx(ctx, fn)
	}
	tx := &spiedTx{}
	s.mu.Lock()
	s.txs = append(s.txs, tx)
	s.mu.Unlock()
	return s.Store.InTx(ctx, func(ctx context.Context) error {
		return fn(context.WithValue(ctx, spiedTxKey{}, tx))
	})
}

func (s *txSpy) note(ctx context.Context, call string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tx, ok := ctx.Value(spiedTxKey{}).(*spiedTx); ok {
		tx.calls = append(tx.calls, call)
		return
	}
	if ctx.Value(spiedTogetherKey{}) != nil {
		s.together = append(s.together, call)
		return
	}
	s.outside = append(s.outside, call)
}

// take returns the transactions and the calls outside any since the last
// take.
func (s *txSpy) take() (txs []*spiedTx, outside, together []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	txs, outside, together = s.txs, s.outside, s.together
	s.txs, s.outside, s.together = nil, nil, nil
	return txs, outside, together
}

func (s *txSpy) ResolveDomain(ctx context.Context, domain string) (string, error) {
	s.note(ctx, "ResolveDomain")
	return s.Store.ResolveDomain(ctx, domain)
}

func (s *txSpy) Connections(ctx context.Context) ([]store.Connection, error) {
	s.note(ctx, "Connections")
	return s.Store.Connections(ctx)
}

func (s *txSpy) TenantConnections(ctx context.Context) (store.Tenant, []store.Connection, error) {
	s.note(ctx, "TenantConnections")
	return s.Store.TenantConnections(ctx)
}

func (s *txSpy) SignInGate(ctx context.Context) (store.SignInGate, error) {
	s.note(ctx, "SignInGate")
	return s.Store.SignInGate(ctx)
}

func (s *txSpy) Tenant(ctx context.Context) (store.Tenant, error) {
	s.note(ctx, "Tenant")
	return s.Store.Tenant(ctx)
}

func (s *txSpy) UpsertSSOUser(ctx context.Context, connectionID, subject string, u store.User) (store.User, error) {
	s.note(ctx, "UpsertSSOUser")
	return s.Store.UpsertSSOUser(ctx, connectionID, subject, u)
}

func (s *txSpy) UserGroupNames(ctx context.Context, userID string) ([]string, error) {
	s.note(ctx, "UserGroupNames")
	return s.Store.UserGroupNames(ctx, userID)
}

func (s *txSpy) RecordUsageLater(ctx context.Context, r store.UsageRecord) error {
	s.note(ctx, "usage:"+string(r.Meter))
	return s.Store.RecordUsageLater(ctx, r)
}

func (s *txSpy) RecordUsage(ctx context.Context, r store.UsageRecord) (bool, error) {
	s.note(ctx, "usage:"+string(r.Meter))
	return s.Store.RecordUsage(ctx, r)
}

func (s *txSpy) AppendEvent(ctx context.Context, e store.Event) (store.Event, error) {
	s.note(ctx, "event:"+e.Type)
	return s.Store.AppendEvent(ctx, e)
}

// TestCompleteInOneTransaction: routing a sign-in reads together (one
// reader connection), and its completion is one transaction
// of the store — the tenant's status gate, the user, the usage records,
// the directory groups and the authentication.succeeded event, which
// names the session the application's tokens carry — and a tenant paused
// while the user was at the IdP stops it with nothing of it written. On
// both backends.
func TestCompleteInOneTransaction(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store { return storetest.SQLite(t) },
		"postgres": func(t *testing.T) store.Store {
			return storetest.Open(t, storetest.PostgresURL(t), storetest.NewCipher(t))
		},
	} {
		t.Run(name, func(t *testing.T) {
			spy := &txSpy{Store: open(t)}
			mem := sessions.NewMemory()
			n := newNodeServer(t, spy, mem, mem, "", httpserver.Config{}, func(c *broker.Config) { c.Usage = usage.New(spy, nil, nil) })
			tn := n.tenant("Acme", "acme.test", alice("acme.test"))
			a := n.app(store.Application{})
			ctx := store.WithTenant(context.Background(), tn.ID)

			for i := range 2 { // a new user, then the same unchanged one
				spy.take()
				c := code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"}}))
				txs, outside, together := spy.take()
				// Routing's reads share one reader connection.
				if want := []string{"ResolveDomain", "TenantConnections"}; !slices.Equal(together, want) {
					t.Fatalf("login %d: reads together %q, want %q (outside any: %q)", i+1, together, want, outside)
				}
				want := []string{"SignInGate", "UpsertSSOUser", "usage:" + string(store.MeterLogin), "usage:" + string(store.MeterActiveUser), "UserGroupNames", "event:" + broker.EventAuthSucceeded}
				var completing []*spiedTx
				for _, tx := range txs {
					if slices.Contains(tx.calls, "UpsertSSOUser") {
						completing = append(completing, tx)
					}
				}
				if len(completing) != 1 || !slices.Equal(completing[0].calls, want) {
					var got [][]string
					for _, tx := range txs {
						got = append(got, tx.calls)
					}
					t.Fatalf("login %d: transactions %q; want one with %q", i+1, got, want)
				}
				for _, call := range outside {
					if slices.Contains(want, call) {
						t.Fatalf("login %d: %s outside the completing transaction (outside: %q)", i+1, call, outside)
					}
				}
				_, claims := a.exchange(t, c)
				ev := lastEvent(t, n.Store, ctx, broker.EventAuthSucceeded)
				if ev["session_id"] != claims.SID || ev["user_id"] != claims.Sub || claims.SID == "" {
					t.Fatalf("login %d: event names session %v, user %v; the tokens carry %s, %s", i+1, ev["session_id"], ev["user_id"], claims.SID, claims.Sub)
				}
				if !slices.Equal(claims.Groups, []string{"eng"}) {
					t.Fatalf("login %d: groups %q", i+1, claims.Groups)
				}
			}

			// Paused while the user is at the IdP: the browser is held at
			// the IdP's door, the tenant paused, then the IdP answers.
			bob := alice("acme.test")
			bob.IdPSubject, bob.Email = "idp-bob", "bob@acme.test"
			n.idp.mu.Lock()
			n.idp.profiles[tn.ConnID] = bob
			n.idp.mu.Unlock()
			b := browser(t)
			b.CheckRedirect = func(r *http.Request, via []*http.Request) error {
				if r.URL.Path == "/test-idp" {
					return http.ErrUseLastResponse
				}
				return nil
			}
			atIdP := a.authorize(t, b, url.Values{"login_hint": {"bob@acme.test"}})
			loc, err := atIdP.Location()
			if err != nil || loc.Path != "/test-idp" {
				t.Fatalf("not at the IdP: status %d, %v", atIdP.StatusCode, loc)
			}
			paused := store.TenantPaused
			if _, err := n.Store.UpdateTenant(ctx, store.TenantUpdate{Status: &paused}); err != nil {
				t.Fatal(err)
			}
			events := len(allEvents(t, n.Store, ctx))
			// The same browser goes on to the IdP (the sign-in is bound
			// to it).
			b.CheckRedirect = browser(t).CheckRedirect
			resp, err := b.Get(loc.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("completion for a paused tenant: status %d, want 403", resp.StatusCode)
			}
			if users, _, err := n.Store.FindUsers(ctx, store.UserQuery{}); err != nil || len(users) != 1 {
				t.Fatalf("users after the refused completion: %d, %v; want alice alone", len(users), err)
			}
			evs := allEvents(t, n.Store, ctx)[events:]
			var failed map[string]any
			if len(evs) == 1 {
				_ = json.Unmarshal(evs[0].Data, &failed)
			}
			if len(evs) != 1 || evs[0].Type != broker.EventAuthFailed || failed["reason_code"] != connections.Reason(connections.ErrTenantInactive) {
				t.Fatalf("events of the refused completion: %d, %v; want one authentication.failed, tenant_inactive", len(evs), failed)
			}
			now := time.Now()
			recs, err := n.Store.UsageRecords(ctx, now.Add(-time.Hour), now.Add(time.Hour), time.Time{}, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 3 { // two logins and alice's month
				t.Fatalf("usage records %d, want 3: %v", len(recs), recs)
			}
		})
	}
}

func allEvents(t *testing.T, st store.Store, ctx context.Context) []store.Event {
	t.Helper()
	var out []store.Event
	after := ""
	for {
		evs, next, err := st.ListEvents(ctx, store.Page{After: after, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
		if next == "" {
			return out
		}
		after = next
	}
}

func lastEvent(t *testing.T, st store.Store, ctx context.Context, typ string) map[string]any {
	t.Helper()
	evs := allEvents(t, st, ctx)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ {
			var m map[string]any
			if err := json.Unmarshal(evs[i].Data, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no %s event", typ)
	return nil
}
