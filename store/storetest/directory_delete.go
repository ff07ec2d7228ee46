package storetest

import (
	"context"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// testDeleteDirectory: deleting a directory takes its token, groups,
// memberships and error log with it; its users stay the tenant's, with
// their ids and state, in no directory, and the next directory that
// pushes the same email adopts them. Another tenant's and another
// directory's rows are untouched, and another tenant cannot delete it.
func testDeleteDirectory(t *testing.T, db *store.DB) {
	a, _ := newTenant(t, db, "A")
	b, _ := newTenant(t, db, "B")
	// Verified, so that the directory vouches for its users' emails (an
	// unverified email adopts no one).
	must(db.AddDomain(a, store.Domain{Domain: "a.test", VerificationToken: "t", Verified: true}))
	okta := must(db.CreateDirectory(a, store.Directory{Name: "Okta", TokenHash: []byte("h-okta")}))
	other := must(db.CreateDirectory(a, store.Directory{Name: "Other", TokenHash: []byte("h-other")}))
	theirs := must(db.CreateDirectory(b, store.Directory{Name: "B's", TokenHash: []byte("h-b")}))

	ann := must(db.CreateDirectoryUser(a, store.User{DirectoryID: okta.ID, UserName: "ann@a.test", Email: "ann@a.test", Active: true}))
	gone := must(db.CreateDirectoryUser(a, store.User{DirectoryID: okta.ID, UserName: "bob@a.test", Email: "bob@a.test", Active: false}))
	kept := must(db.CreateDirectoryUser(a, store.User{DirectoryID: other.ID, UserName: "cy@a.test", Email: "cy@a.test", Active: true}))
	group := must(db.CreateGroup(a, store.Group{DirectoryID: okta.ID, DisplayName: "Eng"}))
	keptGroup := must(db.CreateGroup(a, store.Group{DirectoryID: other.ID, DisplayName: "Ops"}))
	must(db.AddDirectoryMembers(a, group.ID, []string{ann.ID}))
	must(db.AddDirectoryMembers(a, keptGroup.ID, []string{kept.ID}))
	if err := db.RecordSCIMError(a, store.SCIMError{DirectoryID: okta.ID, Status: 400, Method: "POST", Detail: "bad"}); err != nil {
		t.Fatal(err)
	}
	theirUser := must(db.CreateDirectoryUser(b, store.User{DirectoryID: theirs.ID, UserName: "ann@a.test", Email: "ann@a.test", Active: true}))

	// Not B's to delete, and not found under B.
	_, _, err := db.DeleteDirectory(b, okta.ID)
	wantErr(t, err, store.ErrNotFound)

	d, released, err := db.DeleteDirectory(a, okta.ID)
	if err != nil || d.ID != okta.ID || d.Name != "Okta" || released != 2 {
		t.Fatalf("DeleteDirectory = %+v, %d, %v; want Okta releasing 2 users", d, released, err)
	}
	_, _, err = db.DeleteDirectory(a, okta.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = db.Directory(a, okta.ID)
	wantErr(t, err, store.ErrNotFound)
	if _, _, err := db.AuthenticateDirectory(context.Background(), okta.ID, []byte("h-okta")); err == nil {
		t.Fatal("a deleted directory's token still authenticates")
	}
	_, err = db.Group(a, group.ID)
	wantErr(t, err, store.ErrNotFound)
	if errs := must(db.SCIMErrors(a, okta.ID)); len(errs) != 0 {
		t.Fatalf("error log kept: %+v", errs)
	}
	for _, want := range []store.User{ann, gone} {
		u := must(db.User(a, want.ID))
		if u.DirectoryID != "" || u.Active != want.Active || u.Email != want.Email || u.Version != want.Version+1 {
			t.Fatalf("user after the delete: %+v; want %s in no directory, active %v, version %d", u, want.ID, want.Active, want.Version+1)
		}
	}

	// Untouched: the tenant's other directory, and tenant B.
	if u := must(db.User(a, kept.ID)); u.DirectoryID != other.ID {
		t.Fatalf("another directory's user moved: %+v", u)
	}
	if m, _ := must2(db.GroupMembers(a, keptGroup.ID, store.Page{Limit: 10})); len(m) != 1 {
		t.Fatalf("another directory's group lost members: %v", m)
	}
	if u := must(db.User(b, theirUser.ID)); u.DirectoryID != theirs.ID {
		t.Fatalf("tenant B's user moved: %+v", u)
	}

	// The next directory adopts the person: same id, its own state.
	entra := must(db.CreateDirectory(a, store.Directory{Name: "Entra", TokenHash: []byte("h-entra")}))
	again := must(db.CreateDirectoryUser(a, store.User{DirectoryID: entra.ID, UserName: "ann@a.test", Email: "ann@a.test", Active: true}))
	if again.ID != ann.ID || again.DirectoryID != entra.ID {
		t.Fatalf("re-provisioned %+v; want %s adopted by %s", again, ann.ID, entra.ID)
	}
}
