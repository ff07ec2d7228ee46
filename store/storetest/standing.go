package storetest

import (
	"encoding/json"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// testStanding: Standing reads the tenant's status, a connection's and a
// user's activity as they are now, and another tenant's connection or
// user reads as inactive.
func testStanding(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	c := must(db.CreateConnection(ctx, store.Connection{Type: "oidc", Name: "idp", Status: store.ConnectionActive, Config: json.RawMessage(`{}`)}))
	u := must(db.CreateUser(ctx, store.User{Email: "u@a.example", Active: true}))
	if got := must(db.Standing(ctx, c.ID, u.ID)); got != (store.Standing{Tenant: store.TenantActive, Connection: store.ConnectionActive, UserActive: true}) {
		t.Fatalf("Standing of a live sign-in = %+v", got)
	}
	c.Status = store.ConnectionInactive
	must(db.UpdateConnection(ctx, c))
	u.Active = false
	must(db.UpdateUser(ctx, u, 0))
	paused := store.TenantPaused
	must(db.UpdateTenant(ctx, store.TenantUpdate{Status: &paused}))
	if got := must(db.Standing(ctx, c.ID, u.ID)); got != (store.Standing{Tenant: store.TenantPaused, Connection: store.ConnectionInactive}) {
		t.Fatalf("Standing after the changes = %+v", got)
	}
	ctxB, _ := newTenant(t, db, "B")
	if got := must(db.Standing(ctxB, c.ID, u.ID)); got != (store.Standing{Tenant: store.TenantActive}) {
		t.Fatalf("Standing of A's connection and user under B = %+v; want them absent", got)
	}
}
