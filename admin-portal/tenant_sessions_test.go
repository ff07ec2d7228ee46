package adminportal_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// Pausing or deleting a tenant ends its sessions, and only its own.
func TestTenantLifecycleEndsSessions(t *testing.T) {
	st := storetest.SQLite(t)
	ss := sessions.NewMemory()
	e := newSessionEnv(t, st, ss)
	bg := context.Background()
	newTenantWithSession := func(name string) (tenantID, sessionID string) {
		tn, err := st.CreateTenant(bg, store.Tenant{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		id := store.NewID(store.PrefixSession)
		if err := ss.Create(bg, sessions.Session{ID: id, TenantID: tn.ID, UserID: store.NewID(store.PrefixUser), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		return tn.ID, id
	}
	a, sa := newTenantWithSession("a")
	b, sb := newTenantWithSession("b")
	c, sc := newTenantWithSession("c")

	e.must(http.StatusOK, "PATCH", "/tenants/"+a, map[string]any{"status": "paused"})
	if _, err := ss.Get(bg, sa); err == nil {
		t.Fatal("the paused tenant's session survived")
	}
	e.must(http.StatusNoContent, "DELETE", "/tenants/"+b, nil)
	if _, err := ss.Get(bg, sb); err == nil {
		t.Fatal("the deleted tenant's session survived")
	}
	e.must(http.StatusOK, "PATCH", "/tenants/"+c, map[string]any{"name": "still active"})
	if _, err := ss.Get(bg, sc); err != nil {
		t.Fatalf("an unrelated tenant's session ended: %v", err)
	}
}
