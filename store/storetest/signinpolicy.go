package storetest

import (
	"context"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// testSignInPolicy: a tenant's sign-in policy is any until changed, is
// read with the status by SignInGate, and directory_users needs a
// directory of the tenant itself (another tenant's does not count), made
// before or after the tenant.
func testSignInPolicy(t *testing.T, db *store.DB) {
	ctx := context.Background()
	dirUsers, anyone, bogus := store.SignInDirectoryUsers, store.SignInAny, store.SignInPolicy("contractors")

	_, err := db.CreateTenant(ctx, store.Tenant{Name: "x", SignInPolicy: dirUsers})
	wantErr(t, err, store.ErrNoDirectory)
	_, err = db.CreateTenant(ctx, store.Tenant{Name: "x", SignInPolicy: bogus})
	wantErr(t, err, store.ErrInvalid)

	actx, a := newTenant(t, db, "A")
	bctx, _ := newTenant(t, db, "B")
	if a.SignInPolicy != store.SignInAny {
		t.Fatalf("created with policy %q, want any", a.SignInPolicy)
	}
	if g := must(db.SignInGate(actx)); g.Status != store.TenantActive || g.Policy != store.SignInAny {
		t.Fatalf("gate of a new tenant: %+v", g)
	}
	_, err = db.UpdateTenant(actx, store.TenantUpdate{SignInPolicy: &dirUsers})
	wantErr(t, err, store.ErrNoDirectory)
	wantErr(t, err, store.ErrConflict)
	_, err = db.UpdateTenant(actx, store.TenantUpdate{SignInPolicy: &bogus})
	wantErr(t, err, store.ErrInvalid)

	// B's directory is no directory of A's.
	must(db.CreateDirectory(bctx, store.Directory{Name: "B's", TokenHash: []byte("b")}))
	_, err = db.UpdateTenant(actx, store.TenantUpdate{SignInPolicy: &dirUsers})
	wantErr(t, err, store.ErrNoDirectory)

	// A directory added later makes it work.
	dir := must(db.CreateDirectory(actx, store.Directory{Name: "A's", TokenHash: []byte("a")}))
	if up := must(db.UpdateTenant(actx, store.TenantUpdate{SignInPolicy: &dirUsers})); up.SignInPolicy != dirUsers {
		t.Fatalf("updated %+v", up)
	}
	paused := store.TenantPaused
	must(db.UpdateTenant(actx, store.TenantUpdate{Status: &paused}))
	if g := must(db.SignInGate(actx)); g.Status != store.TenantPaused || g.Policy != dirUsers {
		t.Fatalf("gate: %+v", g)
	}
	if got := must(db.Tenant(actx)); got.SignInPolicy != dirUsers {
		t.Fatalf("read back %+v", got)
	}
	// The directory deleted: the policy stays (it never opens by itself),
	// and setting it again is no change to refuse.
	if _, _, err := db.DeleteDirectory(actx, dir.ID); err != nil {
		t.Fatal(err)
	}
	if got := must(db.UpdateTenant(actx, store.TenantUpdate{SignInPolicy: &dirUsers})); got.SignInPolicy != dirUsers {
		t.Fatalf("after the directory went: %+v", got)
	}
	if got := must(db.UpdateTenant(actx, store.TenantUpdate{SignInPolicy: &anyone})); got.SignInPolicy != store.SignInAny {
		t.Fatalf("set back: %+v", got)
	}
	if g := must(db.SignInGate(bctx)); g.Policy != store.SignInAny {
		t.Fatalf("B's gate: %+v", g)
	}
}
