package broker_test

import (
	"context"
	"net/url"
	"sync"
	"testing"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// raceSessions is a session store in which a change commits, and its
// revocation is applied, in the instant between a sign-in's provisioning
// and the creation of its session: the hook runs once, before the first
// Create.
type raceSessions struct {
	*sessions.Memory
	once sync.Once
	hook func(s sessions.Session)
}

func (r *raceSessions) Create(ctx context.Context, s sessions.Session) error {
	r.once.Do(func() { r.hook(s) })
	return r.Memory.Create(ctx, s)
}

// TestSignInRacingDeprovisioning: a user deprovisioned, a tenant paused or
// a connection deactivated while the user's sign-in is completing, after
// it checked them but before its session exists, must not leave that
// session alive: the revocation found nothing to end, so the sign-in must.
// The browser gets no code and no SSO session, and undoing the change
// does not bring the session back.
func TestSignInRacingDeprovisioning(t *testing.T) {
	for _, tc := range []struct {
		name         string
		change, undo func(t *testing.T, st store.Store, mem *sessions.Memory, tn tenant, userID string)
	}{
		{
			name: "user deprovisioned",
			change: func(t *testing.T, st store.Store, mem *sessions.Memory, tn tenant, userID string) {
				setActive(t, st, tn.ID, userID, false)
				if _, err := mem.RevokeUser(context.Background(), tn.ID, userID); err != nil {
					t.Fatal(err)
				}
			},
			undo: func(t *testing.T, st store.Store, _ *sessions.Memory, tn tenant, userID string) {
				setActive(t, st, tn.ID, userID, true)
			},
		},
		{
			name: "tenant paused",
			change: func(t *testing.T, st store.Store, mem *sessions.Memory, tn tenant, _ string) {
				setTenantStatus(t, st, tn.ID, store.TenantPaused)
				if _, err := mem.RevokeTenant(context.Background(), tn.ID); err != nil {
					t.Fatal(err)
				}
			},
			undo: func(t *testing.T, st store.Store, _ *sessions.Memory, tn tenant, _ string) {
				setTenantStatus(t, st, tn.ID, store.TenantActive)
			},
		},
		{
			name: "connection deactivated",
			change: func(t *testing.T, st store.Store, mem *sessions.Memory, tn tenant, _ string) {
				setConnStatus(t, st, tn, store.ConnectionInactive)
				if _, err := mem.RevokeConnection(context.Background(), tn.ID, tn.ConnID); err != nil {
					t.Fatal(err)
				}
			},
			undo: func(t *testing.T, st store.Store, _ *sessions.Memory, tn tenant, _ string) {
				setConnStatus(t, st, tn, store.ConnectionActive)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := sessions.NewMemory()
			st := storetest.SQLite(t)
			var tn tenant
			var userID string
			rs := &raceSessions{Memory: mem}
			rs.hook = func(s sessions.Session) {
				userID = s.UserID
				tc.change(t, st, mem, tn, s.UserID)
			}
			n := newNode(t, st, rs, mem)
			tn = n.tenant("Acme", "acme.test", alice("acme.test"))
			a := n.app(store.Application{})
			b := browser(t)

			resp := a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}})
			if loc, _ := resp.Location(); loc != nil && loc.Query().Get("code") != "" {
				t.Errorf("the racing sign-in got a code (status %d)", resp.StatusCode)
			}
			if userID == "" {
				t.Fatal("no session was created")
			}
			live, err := mem.ListUser(context.Background(), tn.ID, userID)
			if err != nil {
				t.Fatal(err)
			}
			if len(live) != 0 {
				t.Errorf("%d session(s) of the user outlive the change", len(live))
			}
			// Undone, the change does not bring the racing session back.
			tc.undo(t, st, mem, tn, userID)
			resp = a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}, "prompt": {"none"}})
			if loc, _ := resp.Location(); loc == nil || loc.Query().Get("error") != "login_required" {
				t.Errorf("prompt=none after the change was undone: %d %v; want login_required", resp.StatusCode, loc)
			}
		})
	}
}

func setActive(t *testing.T, st store.Store, tenantID, userID string, active bool) {
	t.Helper()
	ctx := store.WithTenant(context.Background(), tenantID)
	u, err := st.User(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	u.Active = active
	if _, err := st.UpdateUser(ctx, u, 0); err != nil {
		t.Fatal(err)
	}
}

func setTenantStatus(t *testing.T, st store.Store, tenantID string, s store.TenantStatus) {
	t.Helper()
	if _, err := st.UpdateTenant(store.WithTenant(context.Background(), tenantID), store.TenantUpdate{Status: &s}); err != nil {
		t.Fatal(err)
	}
}

func setConnStatus(t *testing.T, st store.Store, tn tenant, s store.ConnectionStatus) {
	t.Helper()
	ctx := store.WithTenant(context.Background(), tn.ID)
	c, err := st.Connection(ctx, tn.ConnID)
	if err != nil {
		t.Fatal(err)
	}
	c.Status = s
	if _, err := st.UpdateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
}
