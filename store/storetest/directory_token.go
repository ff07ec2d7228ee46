package storetest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// testDirectoryTokenRotation: a rotation with an overlap keeps the old
// token working until then, for the lookup and for the in-transaction
// check of a remembered credential (WithDirectoryCredential), and for its
// own directory only; a rotation without one, or the overlap's end, stops
// it; another tenant cannot rotate the directory.
func testDirectoryTokenRotation(t *testing.T, db *store.DB) {
	a, ta := newTenant(t, db, "A")
	b, _ := newTenant(t, db, "B")
	sum := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	da := must(db.CreateDirectory(a, store.Directory{Name: "Okta", TokenHash: sum("one")}))
	dbb := must(db.CreateDirectory(b, store.Directory{Name: "Entra", TokenHash: sum("b")}))
	bg := context.Background()
	opens := func(dir, token string) bool {
		t.Helper()
		id, _, err := db.AuthenticateDirectory(bg, dir, sum(token))
		if err != nil {
			wantErr(t, err, store.ErrNotFound)
			return false
		}
		if id != ta.ID && dir == da.ID {
			t.Fatalf("directory %s opened tenant %s", dir, id)
		}
		return true
	}
	// writes reports whether a remembered credential still opens tenant
	// ctx's data: the check PostgreSQL runs inside the transaction.
	writes := func(ctx context.Context, dir, token string) bool {
		t.Helper()
		_, err := db.Directories(store.WithDirectoryCredential(ctx, dir, sum(token)))
		if err != nil {
			wantErr(t, err, store.ErrCredentialStale)
			return false
		}
		return true
	}

	now := time.Now()
	until, err := db.RotateDirectoryToken(a, da.ID, sum("two"), time.Hour)
	if err != nil || until == nil || until.Sub(now) < 59*time.Minute || until.Sub(now) > 61*time.Minute {
		t.Fatalf("rotate with overlap: %v, %v", until, err)
	}
	if !opens(da.ID, "one") || !opens(da.ID, "two") || !writes(a, da.ID, "one") || !writes(a, da.ID, "two") {
		t.Fatal("during the overlap both tokens should open the directory")
	}
	// The previous token opens no other directory, nor another tenant.
	if opens(dbb.ID, "one") || writes(b, da.ID, "one") || writes(b, dbb.ID, "one") {
		t.Fatal("the previous token opened another tenant's directory")
	}
	_, err = db.RotateDirectoryToken(b, da.ID, sum("x"), time.Hour)
	wantErr(t, err, store.ErrNotFound)
	_, err = db.RotateDirectoryToken(a, da.ID, nil, 0)
	wantErr(t, err, store.ErrInvalid)

	// A second rotation keeps only what it replaces; without an overlap none.
	must(db.RotateDirectoryToken(a, da.ID, sum("three"), time.Hour))
	if opens(da.ID, "one") || !opens(da.ID, "two") || writes(a, da.ID, "one") {
		t.Fatal("the token two rotations back still works")
	}
	if until, err := db.RotateDirectoryToken(a, da.ID, sum("four"), 0); err != nil || until != nil {
		t.Fatalf("rotate without overlap: %v, %v", until, err)
	}
	if opens(da.ID, "two") || opens(da.ID, "three") || writes(a, da.ID, "three") || !opens(da.ID, "four") {
		t.Fatal("a rotation without overlap left an old token working")
	}

	// The overlap's end stops the old token, in both checks.
	must(db.RotateDirectoryToken(a, da.ID, sum("five"), 1500*time.Millisecond))
	if !opens(da.ID, "four") || !writes(a, da.ID, "four") {
		t.Fatal("short overlap: old token refused at once")
	}
	time.Sleep(1600 * time.Millisecond)
	if opens(da.ID, "four") || writes(a, da.ID, "four") || !opens(da.ID, "five") || !writes(a, da.ID, "five") {
		t.Fatal("after the overlap only the new token opens the directory")
	}
	// SetDirectoryToken drops a kept previous token too.
	must(db.RotateDirectoryToken(a, da.ID, sum("six"), time.Hour))
	if err := db.SetDirectoryToken(a, da.ID, sum("seven")); err != nil {
		t.Fatal(err)
	}
	if opens(da.ID, "six") {
		t.Fatal("SetDirectoryToken left the previous token working")
	}
}
