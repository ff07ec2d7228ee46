package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// testDirectoryMembers: SCIM membership changes accept only users of the
// group's own directory, all or nothing, and report what actually changed.
func testDirectoryMembers(t *testing.T, db *store.DB) {
	a, _ := newTenant(t, db, "A")
	b, _ := newTenant(t, db, "B")
	h := sha256.Sum256([]byte("t"))
	d1 := must(db.CreateDirectory(a, store.Directory{Name: "okta", TokenHash: h[:]}))
	d2 := must(db.CreateDirectory(a, store.Directory{Name: "entra", TokenHash: h[:]}))
	db1 := must(db.CreateDirectory(b, store.Directory{Name: "b", TokenHash: h[:]}))
	u1 := must(db.CreateUser(a, store.User{DirectoryID: d1.ID, UserName: "u1", Active: true}))
	u2 := must(db.CreateUser(a, store.User{DirectoryID: d1.ID, UserName: "u2", Active: true}))
	other := must(db.CreateUser(a, store.User{DirectoryID: d2.ID, UserName: "o", Active: true}))
	sso := must(db.CreateUser(a, store.User{Email: "sso@a.test", Active: true}))
	foreign := must(db.CreateUser(b, store.User{DirectoryID: db1.ID, UserName: "f", Active: true}))
	g := must(db.CreateGroup(a, store.Group{DirectoryID: d1.ID, DisplayName: "eng"}))

	members := func() []string {
		ids, _ := must2(db.GroupMembers(a, g.ID, store.Page{Limit: 100}))
		return ids
	}
	if got := must(db.AddDirectoryMembers(a, g.ID, []string{u2.ID, u1.ID, u2.ID})); !reflect.DeepEqual(got, []string{u2.ID, u1.ID}) {
		t.Fatalf("added %v, want [u2 u1]", got)
	}
	version := func() int64 { return must(db.Group(a, g.ID)).Version }
	v := version()
	if got := must(db.AddDirectoryMembers(a, g.ID, []string{u1.ID})); len(got) != 0 {
		t.Fatalf("re-adding a member reported %v as added", got)
	}
	// A change that changes nothing leaves the version (the ETag) alone.
	if got := version(); got != v {
		t.Fatalf("re-adding a member moved the version from %d to %d", v, got)
	}
	if got := must(db.RemoveDirectoryMembers(a, g.ID, []string{other.ID})); len(got) != 0 || version() != v {
		t.Fatalf("removing a non-member reported %v or moved the version", got)
	}
	// Another directory's user, an SSO-only user, another tenant's user or
	// an unknown id fails the whole batch.
	for _, bad := range []string{other.ID, sso.ID, foreign.ID, store.NewID(store.PrefixUser), "' OR 1=1 --"} {
		_, err := db.AddDirectoryMembers(a, g.ID, []string{u1.ID, bad})
		wantErr(t, err, store.ErrNotFound)
	}
	if got := members(); len(got) != 2 {
		t.Fatalf("members after refused batches: %v", got)
	}
	if got := must(db.RemoveDirectoryMembers(a, g.ID, []string{other.ID, u1.ID, u1.ID})); !reflect.DeepEqual(got, []string{u1.ID}) {
		t.Fatalf("removed %v, want [u1]", got)
	}
	if got := must(db.RemoveDirectoryMembers(a, g.ID, []string{u1.ID})); len(got) != 0 {
		t.Fatalf("removing a non-member reported %v", got)
	}
	if got := members(); !reflect.DeepEqual(got, []string{u2.ID}) {
		t.Fatalf("members %v, want [u2]", got)
	}
	// Another tenant cannot touch the group.
	_, err := db.AddDirectoryMembers(b, g.ID, []string{foreign.ID})
	wantErr(t, err, store.ErrNotFound)
	_, err = db.RemoveDirectoryMembers(b, g.ID, []string{u2.ID})
	wantErr(t, err, store.ErrNotFound)
	if got := members(); len(got) != 1 {
		t.Fatalf("cross-tenant change touched members: %v", got)
	}
	// Empty batches change nothing and need no group.
	if got := must(db.AddDirectoryMembers(a, g.ID, nil)); got != nil {
		t.Fatalf("empty add %v", got)
	}
	// Long lists go in several statements, all or nothing: a bad id in the
	// last one undoes the first.
	var users []string
	for i := range 600 {
		users = append(users, must(db.CreateUser(a, store.User{DirectoryID: d1.ID, UserName: fmt.Sprint("bulk", i), Active: true})).ID)
	}
	_, err = db.AddDirectoryMembers(a, g.ID, append(users[:len(users):len(users)], other.ID))
	wantErr(t, err, store.ErrNotFound)
	if got := members(); !reflect.DeepEqual(got, []string{u2.ID}) {
		t.Fatalf("a refused long batch changed members: %d of them", len(got))
	}
	if got := must(db.AddDirectoryMembers(a, g.ID, append(users, u2.ID))); len(got) != 600 {
		t.Fatalf("long batch added %d, want 600", len(got))
	}
	if got := must(db.RemoveDirectoryMembers(a, g.ID, users)); len(got) != 600 {
		t.Fatalf("long batch removed %d, want 600", len(got))
	}
}

// testAuthenticateDirectory: a directory token yields its tenant and the
// tenant's current status; another directory's token, a wrong one, or an
// unknown directory yield nothing.
func testAuthenticateDirectory(t *testing.T, db *store.DB) {
	a, ta := newTenant(t, db, "A")
	b, _ := newTenant(t, db, "B")
	ha, hb := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))
	da := must(db.CreateDirectory(a, store.Directory{Name: "a", TokenHash: ha[:]}))
	dbb := must(db.CreateDirectory(b, store.Directory{Name: "b", TokenHash: hb[:]}))
	bg := context.Background()
	id, status, err := db.AuthenticateDirectory(bg, da.ID, ha[:])
	if err != nil || id != ta.ID || status != store.TenantActive {
		t.Fatalf("authenticate = %s %s %v", id, status, err)
	}
	paused := store.TenantPaused
	must(db.UpdateTenant(a, store.TenantUpdate{Status: &paused}))
	if _, status, _ := db.AuthenticateDirectory(bg, da.ID, ha[:]); status != store.TenantPaused {
		t.Fatalf("status after pausing = %s", status)
	}
	for _, c := range []struct {
		dir   string
		hash  []byte
		wrong bool // the directory exists: SCIM counts the refusal as its own
	}{{da.ID, hb[:], true}, {dbb.ID, ha[:], true}, {da.ID, nil, false}, {store.NewID(store.PrefixDirectory), ha[:], false}, {"' OR 1=1 --", ha[:], false}} {
		_, _, err := db.AuthenticateDirectory(bg, c.dir, c.hash)
		wantErr(t, err, store.ErrNotFound)
		if got := errors.Is(err, store.ErrWrongDirectoryToken); got != c.wrong {
			t.Errorf("authenticate %q: ErrWrongDirectoryToken %v, want %v", c.dir, got, c.wrong)
		}
	}
}
