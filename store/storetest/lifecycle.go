package storetest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

func testTenantLifecycle(t *testing.T, db *store.DB) {
	bg := context.Background()
	a, ta := newTenant(t, db, "A")
	must(db.AddDomain(a, store.Domain{Domain: "a.com", VerificationToken: "t", Verified: true}))
	c := must(db.CreateConnection(a, store.Connection{Type: store.ConnectionType("saml"), Name: "x"}))
	h := sha256.Sum256([]byte("t"))
	dir := must(db.CreateDirectory(a, store.Directory{Name: "d", TokenHash: h[:]}))
	u := must(db.CreateUser(a, store.User{Email: "u@a.com", Active: true}))
	paused := store.TenantPaused
	must(db.UpdateTenant(a, store.TenantUpdate{Status: &paused}))
	last := must(db.AppendAudit(a, store.AuditEvent{Action: "x"}))
	must(db.RecordUsage(a, store.UsageRecord{IdempotencyKey: "k", Meter: store.MeterLogin, Subject: u.ID, Value: 1}))

	inService := func(want bool) {
		t.Helper()
		checks := map[string]error{}
		_, checks["domain"] = db.ResolveDomain(bg, "a.com")
		_, checks["connection"] = db.ResolveConnection(bg, c.ID)
		_, checks["directory"] = db.ResolveDirectory(bg, dir.ID)
		_, checks["user"] = db.ResolveUser(bg, u.ID)
		_, _, checks["directory token"] = db.AuthenticateDirectory(bg, dir.ID, h[:])
		for what, err := range checks {
			if want && err != nil {
				t.Fatalf("%s of a live tenant: %v", what, err)
			}
			if !want && err != store.ErrNotFound {
				t.Fatalf("%s of a deleted tenant: %v, want ErrNotFound", what, err)
			}
		}
	}
	listed := func(status store.TenantStatus) bool {
		list, _ := must2(db.ListTenantsByStatus(bg, status, store.Page{}))
		for _, x := range list {
			if x.ID == ta.ID {
				return true
			}
		}
		return false
	}

	del := must(db.SoftDeleteTenant(a))
	if del.Status != store.TenantDeleted || del.DeletedAt == nil {
		t.Fatalf("deleted tenant = %+v", del)
	}
	inService(false)
	// While restorable its verified domain stays its own: another tenant
	// may claim it, not verify it (a restore would find it taken).
	other, _ := newTenant(t, db, "Other")
	_, err0 := db.AddDomain(other, store.Domain{Domain: "a.com", VerificationToken: "o", Verified: true})
	wantErr(t, err0, store.ErrConflict)
	claim := must(db.AddDomain(other, store.Domain{Domain: "a.com", VerificationToken: "o"}))
	_, err0 = db.MarkDomainVerified(other, claim.ID)
	wantErr(t, err0, store.ErrConflict)
	if err := db.DeleteDomain(other, claim.ID); err != nil {
		t.Fatal(err)
	}
	if listed("") || !listed(store.TenantDeleted) {
		t.Fatal("a deleted tenant is listed among the live, or not among the deleted")
	}
	_, err := db.SoftDeleteTenant(a)
	wantErr(t, err, store.ErrNotFound)
	deleted := store.TenantActive
	_, err = db.UpdateTenant(a, store.TenantUpdate{Status: &deleted})
	wantErr(t, err, store.ErrInvalid)

	res := must(db.RestoreTenant(a))
	if res.Status != store.TenantPaused || res.DeletedAt != nil {
		t.Fatalf("restored tenant = %+v, want paused again", res)
	}
	inService(true)
	_, err = db.RestoreTenant(a)
	wantErr(t, err, store.ErrNotFound)
	_, err = db.EraseTenant(a, store.Actor{Type: "system"}, nil)
	wantErr(t, err, store.ErrInvalid) // only a deleted tenant is erased

	must(db.SoftDeleteTenant(a))
	if ids := must(db.TenantsDeletedBefore(bg, time.Now().Add(-time.Hour), 10)); len(ids) != 0 {
		t.Fatalf("deleted an hour ago: %v", ids)
	}
	if ids := must(db.TenantsDeletedBefore(bg, time.Now().Add(time.Hour), 10)); len(ids) != 1 || ids[0] != ta.ID {
		t.Fatalf("deleted before now: %v", ids)
	}
	rep := must(db.EraseTenant(a, store.Actor{Type: "system", ID: "erase-job"}, nil))
	if rep.Action != store.ActionTenantErased || rep.PrevHash != last.Hash || rep.TenantID != ta.ID {
		t.Fatalf("erase report = %+v, want prev_hash %s", rep, last.Hash)
	}
	_, err = db.Tenant(a)
	wantErr(t, err, store.ErrNotFound)
	_, err = db.RestoreTenant(a)
	wantErr(t, err, store.ErrNotFound)
	if n := len(must(db.UsageRecords(a, time.Time{}, time.Now().Add(time.Hour), time.Time{}, "", 10))); n != 0 {
		t.Fatalf("%d usage records of the erased tenant remain", n)
	}
	kept := must(db.UsageRecords(store.WithTenant(bg, store.UsagePseudonym(ta.ID)), time.Time{}, time.Now().Add(time.Hour), time.Time{}, "", 10))
	if len(kept) != 1 || kept[0].Subject != "" || kept[0].Value != 1 {
		t.Fatalf("pseudonymised usage kept = %+v", kept)
	}
	reports := must(db.TenantErasures(bg))
	if len(reports) != 1 || reports[0].Hash != rep.Hash {
		t.Fatalf("erase reports = %+v", reports)
	}
	if h, err := must(db.AuditKeys(bg)).Hash(reports[0]); err != nil || h != rep.Hash || reports[0].KeyVersion == 0 {
		t.Fatalf("stored report re-hashes to %s (%v), want %s", h, err, rep.Hash)
	}
	// The erased domain is free again.
	b, _ := newTenant(t, db, "B")
	must(db.AddDomain(b, store.Domain{Domain: "a.com", VerificationToken: "t", Verified: true}))
}
