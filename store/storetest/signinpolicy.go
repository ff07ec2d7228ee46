package storetest

import (
	"context"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// testSignInPolicy: a tenant's sign-in policy is any unless given, is
// read with the status by SignInGate, and is the tenant's own: setting
// it needs no directory (until one provisions users nobody signs in), and
// a directory's deletion leaves it as it is (it never opens by itself).
func testSignInPolicy(t *testing.T, db *store.DB) {
	ctx := context.Background()
	dirUsers, anyone, bogus := store.SignInDirectoryUsers, store.SignInAny, store.SignInPolicy("contractors")

	_, err := db.CreateTenant(ctx, store.Tenant{Name: "x", SignInPolicy: bogus})
	wantErr(t, err, store.ErrInvalid)
	strict := must(db.CreateTenant(ctx, store.Tenant{Name: "Strict", SignInPolicy: dirUsers}))
	if got := must(db.Tenant(store.WithTenant(ctx, strict.ID))); got.SignInPolicy != dirUsers {
		t.Fatalf("created with directory_users, read back %+v", got)
	}

	actx, a := newTenant(t, db, "A")
	bctx, _ := newTenant(t, db, "B")
	if a.SignInPolicy != store.SignInAny {
		t.Fatalf("created with policy %q, want any", a.SignInPolicy)
	}
	if g := must(db.SignInGate(actx)); g.Status != store.TenantActive || g.Policy != store.SignInAny {
		t.Fatalf("gate of a new tenant: %+v", g)
	}
	_, err = db.UpdateTenant(actx, store.TenantUpdate{SignInPolicy: &bogus})
	wantErr(t, err, store.ErrInvalid)

	dir := must(db.CreateDirectory(actx, store.Directory{Name: "A's", TokenHash: []byte("a")}))
	if up := must(db.UpdateTenant(actx, store.TenantUpdate{SignInPolicy: &dirUsers})); up.SignInPolicy != dirUsers {
		t.Fatalf("updated %+v", up)
	}
	// Other changes keep it.
	paused, name := store.TenantPaused, "A Corp"
	must(db.UpdateTenant(actx, store.TenantUpdate{Status: &paused, Name: &name}))
	if g := must(db.SignInGate(actx)); g.Status != store.TenantPaused || g.Policy != dirUsers {
		t.Fatalf("gate: %+v", g)
	}
	if got := must(db.Tenant(actx)); got.SignInPolicy != dirUsers {
		t.Fatalf("read back %+v", got)
	}
	if _, _, err := db.DeleteDirectory(actx, dir.ID); err != nil {
		t.Fatal(err)
	}
	if got := must(db.Tenant(actx)); got.SignInPolicy != dirUsers {
		t.Fatalf("the directory's deletion opened the tenant: %+v", got)
	}
	if got := must(db.UpdateTenant(actx, store.TenantUpdate{SignInPolicy: &anyone})); got.SignInPolicy != store.SignInAny {
		t.Fatalf("set back: %+v", got)
	}
	// B is untouched by A's changes.
	if g := must(db.SignInGate(bctx)); g.Policy != store.SignInAny {
		t.Fatalf("B's gate: %+v", g)
	}
}
