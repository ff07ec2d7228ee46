package storetest

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// testSCIMErrors: each directory keeps its newest store.SCIMErrorsKept
// errors, newest first, seen only under its own tenant.
func testSCIMErrors(t *testing.T, db *store.DB) {
	ctx, _ := newTenant(t, db, "A")
	other, _ := newTenant(t, db, "B")
	h := sha256.Sum256([]byte("t"))
	d1 := must(db.CreateDirectory(ctx, store.Directory{Name: "Okta", TokenHash: h[:]}))
	d2 := must(db.CreateDirectory(ctx, store.Directory{Name: "Entra", TokenHash: h[:]}))
	db3 := must(db.CreateDirectory(other, store.Directory{Name: "B's", TokenHash: h[:]}))

	total := store.SCIMErrorsKept + 5
	for i := range total {
		if err := db.RecordSCIMError(ctx, store.SCIMError{DirectoryID: d1.ID, Status: 400, ScimType: "invalidValue",
			Detail: fmt.Sprint("error ", i), Method: "POST", Path: "/scim/v2/" + d1.ID + "/Users"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.RecordSCIMError(ctx, store.SCIMError{DirectoryID: d2.ID, Status: 409, Detail: "d2", Method: "PUT", Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	got := must(db.SCIMErrors(ctx, d1.ID))
	if len(got) != store.SCIMErrorsKept {
		t.Fatalf("%d errors kept, want %d", len(got), store.SCIMErrorsKept)
	}
	if got[0].Detail != fmt.Sprint("error ", total-1) || got[len(got)-1].Detail != fmt.Sprint("error ", total-store.SCIMErrorsKept) {
		t.Fatalf("kept %q … %q, want the newest first", got[0].Detail, got[len(got)-1].Detail)
	}
	if e := got[0]; e.Status != 400 || e.ScimType != "invalidValue" || e.Method != "POST" || e.At.IsZero() || e.DirectoryID != d1.ID {
		t.Fatalf("error %+v", e)
	}
	if got := must(db.SCIMErrors(ctx, d2.ID)); len(got) != 1 || got[0].Detail != "d2" {
		t.Fatalf("second directory %+v", got)
	}
	// Another tenant sees none of them, and cannot write to A's ring.
	if got := must(db.SCIMErrors(other, d1.ID)); len(got) != 0 {
		t.Fatalf("tenant B sees A's errors: %+v", got)
	}
	if err := db.RecordSCIMError(other, store.SCIMError{DirectoryID: d1.ID, Status: 400, Method: "GET", Path: "/x"}); err == nil {
		t.Fatal("tenant B recorded an error in A's directory")
	}
	if got := must(db.SCIMErrors(other, db3.ID)); len(got) != 0 {
		t.Fatalf("B's directory %+v", got)
	}
}
