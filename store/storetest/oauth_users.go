package storetest

import (
	"context"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// testResolveUser: a user id alone names its tenant, for the operator API;
// unknown, malformed and deleted ids are not found.
func testResolveUser(t *testing.T, db *store.DB) {
	ctxA, a := newTenant(t, db, "A")
	ctxB, b := newTenant(t, db, "B")
	ua := must(db.CreateUser(ctxA, store.User{Email: "alice@a.example", Active: true}))
	ub := must(db.CreateUser(ctxB, store.User{Email: "bob@b.example", Active: true}))

	bg := context.Background()
	for id, want := range map[string]string{ua.ID: a.ID, ub.ID: b.ID} {
		if got := must(db.ResolveUser(bg, id)); got != want {
			t.Errorf("ResolveUser(%s) = %s, want %s", id, got, want)
		}
	}
	for _, id := range []string{"", "usr_nope", "tnt_" + ua.ID[4:], store.NewID(store.PrefixUser), ua.ID + "'; --"} {
		_, err := db.ResolveUser(bg, id)
		wantErr(t, err, store.ErrNotFound)
	}
	if err := db.DeleteUser(ctxA, ua.ID); err != nil {
		t.Fatal(err)
	}
	_, err := db.ResolveUser(bg, ua.ID)
	wantErr(t, err, store.ErrNotFound)
}
