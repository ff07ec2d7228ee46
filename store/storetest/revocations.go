package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// testRevocations: a revocation commits or rolls back with its transaction,
// outlives its tenant, is claimed by one worker at a time, and its finish
// queues back-channel logouts only for applications with a logout URI.
func testRevocations(t *testing.T, db *store.DB) {
	ctx := context.Background()
	tn, err := db.CreateTenant(ctx, store.Tenant{Name: "Revoked"})
	if err != nil {
		t.Fatal(err)
	}
	tctx := store.WithTenant(ctx, tn.ID)

	// Rolled back with the change.
	_ = db.InTx(tctx, func(ctx context.Context) error {
		if _, err := db.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: "usr_x"}); err != nil {
			t.Fatal(err)
		}
		return store.ErrConflict
	})
	if p, err := db.PendingRevocations(ctx, 10); err != nil || len(p) != 0 {
		t.Fatalf("after rollback: %v, %v", p, err)
	}
	for _, bad := range []store.Revocation{
		{Kind: "everything", TenantID: tn.ID},
		{Kind: store.RevokeUser, TenantID: tn.ID},
		{Kind: store.RevokeTenant},
	} {
		if _, err := db.RecordRevocation(ctx, bad); err == nil {
			t.Errorf("RecordRevocation(%+v) accepted", bad)
		}
	}

	// Committed with the tenant's deletion, and outliving it.
	var rv store.Revocation
	err = db.InTx(tctx, func(ctx context.Context) error {
		if err := db.DeleteTenant(ctx); err != nil {
			return err
		}
		rv, err = db.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeTenant, TenantID: tn.ID, Reason: "tenant.deleted"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	later, err := db.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeConnection, TenantID: tn.ID, SubjectID: "conn_x",
		NotBefore: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if due, err := db.DueRevocations(ctx, now); err != nil || !due {
		t.Fatalf("DueRevocations = %v, %v", due, err)
	}
	got, err := db.ClaimRevocations(ctx, now, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].ID != rv.ID || got[0].Kind != store.RevokeTenant || got[0].Attempts != 1 {
		t.Fatalf("claim: %+v, %v", got, err)
	}
	if again, err := db.ClaimRevocations(ctx, now, time.Minute, 10); err != nil || len(again) != 0 {
		t.Fatalf("claimed twice within the lease: %+v, %v", again, err)
	}
	if due, _ := db.DueRevocations(ctx, now); due {
		t.Fatal("due while leased")
	}
	if err := db.RetryRevocation(ctx, rv.ID, now, "redis: connection refused"); err != nil {
		t.Fatal(err)
	}
	got, err = db.ClaimRevocations(ctx, now, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].Attempts != 2 || got[0].LastError != "redis: connection refused" {
		t.Fatalf("claim after retry: %+v, %v", got, err)
	}

	// Finishing queues logouts for apps with a back-channel URI only.
	withURI, err := db.CreateApplication(ctx, store.Application{Name: "A", Public: true, RedirectURIs: []string{"https://a.example/cb"}, BackchannelLogoutURI: "https://a.example/bcl"})
	if err != nil {
		t.Fatal(err)
	}
	without, err := db.CreateApplication(ctx, store.Application{Name: "B", Public: true, RedirectURIs: []string{"https://b.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	ls := []store.Logout{
		{SessionID: "ses_1", TenantID: tn.ID, UserID: "usr_1", ApplicationID: withURI.ID},
		{SessionID: "ses_1", TenantID: tn.ID, UserID: "usr_1", ApplicationID: without.ID},
		{SessionID: "ses_1", TenantID: tn.ID, UserID: "usr_1", ApplicationID: "app_gone"},
	}
	if err := db.FinishRevocation(ctx, rv.ID, ls); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishRevocation(ctx, rv.ID, ls); err != nil { // a second node finishing too
		t.Fatal(err)
	}
	if p, err := db.PendingRevocations(ctx, 10); err != nil || len(p) != 1 || p[0].ID != later.ID {
		t.Fatalf("pending after finish: %+v, %v", p, err)
	}
	queued, _, err := db.ListLogouts(ctx, store.LogoutQuery{ApplicationID: withURI.ID})
	if err != nil || len(queued) != 1 || queued[0].SessionID != "ses_1" || queued[0].Status != store.DeliveryPending {
		t.Fatalf("logouts: %+v, %v", queued, err)
	}
	if l, _, _ := db.ListLogouts(ctx, store.LogoutQuery{ApplicationID: without.ID}); len(l) != 0 {
		t.Fatalf("queued for an app without a logout URI: %+v", l)
	}
	claimed, err := db.ClaimLogouts(ctx, time.Now(), time.Minute, 10)
	if err != nil || len(claimed) != 1 || claimed[0].Attempts != 1 {
		t.Fatalf("claim logouts: %+v, %v", claimed, err)
	}
	if err := db.RecordLogout(ctx, claimed[0].ID, store.DeliveryResult{Status: store.DeliveryDead, StatusCode: 500, Error: "HTTP 500"}); err != nil {
		t.Fatal(err)
	}
	dead, _, err := db.ListLogouts(ctx, store.LogoutQuery{ApplicationID: withURI.ID, Status: store.DeliveryDead})
	if err != nil || len(dead) != 1 || dead[0].LastStatusCode != 500 {
		t.Fatalf("dead letters: %+v, %v", dead, err)
	}
	if due, err := db.DueLogouts(ctx, time.Now()); err != nil || due {
		t.Fatalf("DueLogouts after dead letter = %v, %v", due, err)
	}
	if l, _, err := db.ListLogouts(ctx, store.LogoutQuery{TenantID: tn.ID, Status: store.DeliveryDead}); err != nil || len(l) != 1 || l[0].ID != dead[0].ID {
		t.Fatalf("the tenant's dead letters: %+v, %v", l, err)
	}
	if l, _, err := db.ListLogouts(ctx, store.LogoutQuery{TenantID: "tnt_other"}); err != nil || len(l) != 0 {
		t.Fatalf("another tenant's logouts: %+v, %v", l, err)
	}
	if _, err := db.RedeliverLogout(ctx, "tnt_other", dead[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("redeliver as another tenant: %v, want ErrNotFound", err)
	}
	again, err := db.RedeliverLogout(ctx, tn.ID, dead[0].ID)
	if err != nil || again.Status != store.DeliveryPending {
		t.Fatalf("redeliver: %+v, %v", again, err)
	}
	if due, err := db.DueLogouts(ctx, time.Now().Add(time.Second)); err != nil || !due {
		t.Fatalf("DueLogouts after redeliver = %v, %v", due, err)
	}
	if _, err := db.RedeliverLogout(ctx, tn.ID, dead[0].ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("redeliver a pending logout: %v, want ErrConflict", err)
	}
}
