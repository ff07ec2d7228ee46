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

// testKeptRevocations: an order is kept from the transaction that records
// it (and rolled back with it), marked applied when it is retired from the
// queue, listed for a replay while within the window, pruned after; the
// session store epoch advances only from the value a node read.
func testKeptRevocations(t *testing.T, db *store.DB) {
	ctx := context.Background()
	tn, err := db.CreateTenant(ctx, store.Tenant{Name: "Kept"})
	if err != nil {
		t.Fatal(err)
	}
	tctx := store.WithTenant(ctx, tn.ID)
	start, err := db.KeptRevocations(ctx, time.Time{}, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	after := int64(0)
	if len(start) > 0 {
		after = start[len(start)-1].Seq
	}
	kept := func(since time.Time) []store.KeptRevocation {
		t.Helper()
		var all []store.KeptRevocation
		for cur := after; ; {
			page, err := db.KeptRevocations(ctx, since, cur, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				return all
			}
			all = append(all, page...)
			cur = page[len(page)-1].Seq
		}
	}

	_ = db.InTx(tctx, func(ctx context.Context) error {
		if _, err := db.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: "usr_rolledback"}); err != nil {
			t.Fatal(err)
		}
		return store.ErrConflict
	})
	var rvs []store.Revocation
	for _, r := range []store.Revocation{
		{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: "usr_1", Reason: "scim:deleted"},
		{Kind: store.RevokeTenant, TenantID: tn.ID, Reason: "tenant.paused"},
		{Kind: store.RevokeConnection, TenantID: tn.ID, SubjectID: "conn_1"},
		{Kind: store.RevokeSession, TenantID: tn.ID, SubjectID: "ses_1"},
	} {
		rv, err := db.RecordRevocation(tctx, r)
		if err != nil {
			t.Fatal(err)
		}
		rvs = append(rvs, rv)
	}
	got := kept(time.Now().Add(time.Hour))
	if len(got) != len(rvs) {
		t.Fatalf("kept before any is applied: %+v; want the %d recorded (pending ones whatever since says)", got, len(rvs))
	}
	for i, k := range got {
		r := rvs[i]
		if k.ID != r.ID || k.Kind != r.Kind || k.TenantID != r.TenantID || k.SubjectID != r.SubjectID ||
			!k.AppliedAt.IsZero() || k.CreatedAt.IsZero() || (i > 0 && k.Seq <= got[i-1].Seq) {
			t.Fatalf("kept[%d] = %+v; want %+v, in order, not applied", i, k, r)
		}
	}

	before := time.Now().Add(-time.Second)
	for _, r := range rvs[:3] {
		if err := db.FinishRevocation(ctx, r.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	if p, err := db.PendingRevocations(ctx, 100); err != nil || len(p) != 1 || p[0].ID != rvs[3].ID {
		t.Fatalf("queue after finishing three: %+v, %v", p, err)
	}
	got = kept(before)
	if len(got) != 4 {
		t.Fatalf("kept after finishing three: %+v", got)
	}
	for i, k := range got[:3] {
		if k.AppliedAt.Before(before) || k.AppliedAt.After(time.Now().Add(time.Second)) {
			t.Errorf("kept[%d].AppliedAt = %v; want about now", i, k.AppliedAt)
		}
	}
	// Past the window only the order still queued is listed.
	if got := kept(time.Now().Add(time.Hour)); len(got) != 1 || got[0].ID != rvs[3].ID {
		t.Fatalf("kept since an hour ahead: %+v; want only the queued %s", got, rvs[3].ID)
	}
	if n, err := db.PruneKeptRevocations(ctx, time.Now().Add(time.Hour)); err != nil || n < 3 {
		t.Fatalf("prune = %d, %v; want the 3 applied", n, err)
	}
	if got := kept(time.Time{}); len(got) != 1 || got[0].ID != rvs[3].ID {
		t.Fatalf("kept after pruning: %+v; want the queued one kept", got)
	}
	if _, err := db.KeptRevocations(ctx, time.Time{}, 0, 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("limit 0: %v, want ErrInvalid", err)
	}

	// A sign-out kept without queueing: listed as applied, never queued.
	if err := db.KeepRevocation(ctx, store.Revocation{Kind: store.RevokeSession, TenantID: tn.ID, SubjectID: "ses_out", Reason: "logout"}); err != nil {
		t.Fatal(err)
	}
	if err := db.KeepRevocation(ctx, store.Revocation{Kind: store.RevokeSession, TenantID: tn.ID}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("KeepRevocation without a subject: %v, want ErrInvalid", err)
	}
	got = kept(time.Now().Add(-time.Minute))
	if len(got) != 2 || got[1].SubjectID != "ses_out" || got[1].Kind != store.RevokeSession || got[1].AppliedAt.IsZero() {
		t.Fatalf("kept after a sign-out: %+v; want the queued order and the sign-out, applied", got)
	}
	if p, err := db.PendingRevocations(ctx, 100); err != nil || len(p) != 1 {
		t.Fatalf("a kept sign-out was queued: %+v, %v", p, err)
	}

	// One application's grant in a session (kind client): kept and
	// queued like the others, its subject naming the session and the
	// client; a subject without both is refused.
	grant := store.Revocation{Kind: store.RevokeClientGrant, TenantID: tn.ID, SubjectID: "ses_g app_b", Reason: "token revoked"}
	if err := db.KeepRevocation(ctx, grant); err != nil {
		t.Fatalf("KeepRevocation(client): %v", err)
	}
	queued, err := db.RecordRevocation(ctx, grant)
	if err != nil {
		t.Fatalf("RecordRevocation(client): %v", err)
	}
	if p, err := db.PendingRevocations(ctx, 100); err != nil || len(p) != 2 || p[1].ID != queued.ID ||
		p[1].Kind != store.RevokeClientGrant || p[1].SubjectID != "ses_g app_b" || p[1].CreatedAt.IsZero() {
		t.Fatalf("queue after a grant's revocation: %+v, %v", p, err)
	}
	if got := kept(time.Now().Add(-time.Minute)); len(got) != 4 || got[2].Kind != store.RevokeClientGrant || got[3].SubjectID != "ses_g app_b" {
		t.Fatalf("kept after a grant's revocation: %+v", got)
	}
	if err := db.FinishRevocation(ctx, queued.ID, nil); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"ses_g", "app_b"} {
		if err := db.KeepRevocation(ctx, store.Revocation{Kind: store.RevokeClientGrant, TenantID: tn.ID, SubjectID: bad}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("KeepRevocation(client %q) = %v, want ErrInvalid", bad, err)
		}
		if _, err := db.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeClientGrant, TenantID: tn.ID, SubjectID: bad}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("RecordRevocation(client %q) = %v, want ErrInvalid", bad, err)
		}
	}

	// The epoch: advanced only from the value read.
	e, err := db.SessionStoreEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := db.AdvanceSessionStoreEpoch(ctx, e.Epoch, e.Epoch+1, "run-a"); err != nil || !ok {
		t.Fatalf("advance from %d: %v, %v", e.Epoch, ok, err)
	}
	if ok, err := db.AdvanceSessionStoreEpoch(ctx, e.Epoch, e.Epoch+1, "run-b"); err != nil || ok {
		t.Fatalf("advance from a stale %d: %v, %v; want refused", e.Epoch, ok, err)
	}
	if _, err := db.AdvanceSessionStoreEpoch(ctx, e.Epoch+1, e.Epoch+1, "run-b"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("advance to the same epoch: %v, want ErrInvalid", err)
	}
	// The applied count only grows.
	for _, raise := range []int64{e.Applied + 5, e.Applied + 3} {
		if err := db.RaiseSessionStoreApplied(ctx, raise); err != nil {
			t.Fatalf("RaiseSessionStoreApplied(%d): %v", raise, err)
		}
	}
	if now, err := db.SessionStoreEpoch(ctx); err != nil || now.Applied != e.Applied+5 {
		t.Fatalf("applied after raising by 5 then 3 = %+v, %v; want %d", now, err, e.Applied+5)
	}
	if now, err := db.SessionStoreEpoch(ctx); err != nil || now.Epoch != e.Epoch+1 || now.Server != "run-a" || now.UpdatedAt.IsZero() {
		t.Fatalf("epoch after advancing: %+v, %v", now, err)
	}
}

// testQueueStats: the gauges' read counts what waits in each queue, of
// every tenant, and dates the oldest; what was applied, delivered or given
// up waits no more.
func testQueueStats(t *testing.T, db *store.DB) {
	ctx := context.Background()
	s, err := db.QueueStats(ctx)
	if err != nil || s != (store.QueueStats{}) {
		t.Fatalf("empty queues: %+v, %v", s, err)
	}
	before := time.Now().Add(-time.Second)
	var rvs []store.Revocation
	for _, name := range []string{"Q1", "Q2"} {
		tn := must(db.CreateTenant(ctx, store.Tenant{Name: name}))
		rvs = append(rvs, must(db.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: "usr_q", Reason: "scim:deleted"})))
	}
	app := must(db.CreateApplication(ctx, store.Application{Name: "Q", Public: true, RedirectURIs: []string{"https://q.example/cb"}, BackchannelLogoutURI: "https://q.example/bcl"}))
	if err := db.FinishRevocation(ctx, rvs[0].ID, []store.Logout{
		{SessionID: "ses_q1", TenantID: rvs[0].TenantID, UserID: "usr_q", ApplicationID: app.ID},
		{SessionID: "ses_q2", TenantID: rvs[0].TenantID, UserID: "usr_q", ApplicationID: app.ID},
	}); err != nil {
		t.Fatal(err)
	}
	must(db.CreateWebhook(ctx, store.Webhook{URL: "https://hooks.example.com/q", Events: []string{"queue.test"}, Secret: "whsec"}))
	must(db.AppendEvent(store.WithTenant(ctx, rvs[1].TenantID), store.Event{TenantID: rvs[1].TenantID, Type: "queue.test", Data: []byte(`{}`)}))
	after := time.Now().Add(time.Second)

	s, err = db.QueueStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Revocations.Pending != 1 || s.Logouts.Pending != 2 || s.Deliveries.Pending != 1 {
		t.Fatalf("pending: %+v", s)
	}
	for name, q := range map[string]store.Queue{"revocations": s.Revocations, "logouts": s.Logouts, "deliveries": s.Deliveries} {
		if q.Oldest.Before(before) || q.Oldest.After(after) {
			t.Errorf("%s: oldest %v, want between %v and %v", name, q.Oldest, before, after)
		}
	}
	if !s.Revocations.Oldest.Equal(rvs[1].CreatedAt) {
		t.Errorf("oldest revocation %v, want %v", s.Revocations.Oldest, rvs[1].CreatedAt)
	}

	// A logout given up and a delivery that succeeded wait no more.
	claimed := must(db.ClaimLogouts(ctx, time.Now(), time.Minute, 1))
	if err := db.RecordLogout(ctx, claimed[0].ID, store.DeliveryResult{Status: store.DeliveryDead, Error: "HTTP 500"}); err != nil {
		t.Fatal(err)
	}
	ds := must(db.ClaimDeliveries(ctx, time.Now(), time.Minute, 10))
	for _, d := range ds {
		if err := db.RecordDelivery(ctx, d.ID, store.DeliveryResult{Status: store.DeliverySucceeded, StatusCode: 200}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.FinishRevocation(ctx, rvs[1].ID, nil); err != nil {
		t.Fatal(err)
	}
	s, err = db.QueueStats(ctx)
	if err != nil || s.Revocations != (store.Queue{}) || s.Logouts.Pending != 1 || s.Deliveries != (store.Queue{}) {
		t.Fatalf("after delivery: %+v, %v", s, err)
	}
}
