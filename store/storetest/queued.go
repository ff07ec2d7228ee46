package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// testQueuedWrites: RecordUsageLater and AppendEvent return nothing the
// database computes, so on PostgreSQL a transaction holds them back and
// sends them with its next statement or its COMMIT. Whenever they are sent, their rows
// exist exactly when the transaction commits, and a failure of theirs fails
// the transaction without passing for the later call's own answer.
func testQueuedWrites(t *testing.T, db *store.DB) {
	a, ta := newTenant(t, db, "A")
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	queue := func(ctx context.Context, key string) error {
		return db.RecordUsageLater(ctx, store.UsageRecord{IdempotencyKey: key, Meter: store.MeterSCIMOperation, Subject: "users.create", Value: 1, At: at})
	}
	errRollback := errors.New("roll back")

	must(0, db.InTx(a, func(ctx context.Context) error { return queue(ctx, "k1") }))
	must(0, queue(a, "k2"))
	// A key already recorded writes nothing and is no error.
	must(0, db.InTx(a, func(ctx context.Context) error { return queue(ctx, "k1") }))
	// Queued, then the transaction rolls back: never written.
	if err := db.InTx(a, func(ctx context.Context) error {
		must(0, queue(ctx, "k3"))
		return errRollback
	}); !errors.Is(err, errRollback) {
		t.Fatalf("rolled-back transaction: %v", err)
	}
	// Queued, then read in the same transaction: the read sees it.
	must(0, db.InTx(a, func(ctx context.Context) error {
		must(0, queue(ctx, "k4"))
		if n := len(must(db.UsageRecords(ctx, at, at.Add(time.Second), time.Time{}, "", 10))); n != 3 {
			t.Errorf("a read after the queued write sees %d records, want 3", n)
		}
		return nil
	}))
	var keys []string
	for _, r := range must(db.UsageRecords(a, at, at.Add(time.Second), time.Time{}, "", 10)) {
		keys = append(keys, r.IdempotencyKey)
	}
	if strings.Join(keys, ",") != "k1,k2,k4" {
		t.Fatalf("recorded keys = %v, want k1, k2, k4", keys)
	}
	wantErr(t, db.RecordUsageLater(a, store.UsageRecord{IdempotencyKey: "x", Meter: "bogus"}), store.ErrInvalid)
	wantErr(t, queue(context.Background(), "x"), store.ErrNoTenant)

	// An event that cannot be written (its id is taken) fails the
	// transaction. On SQLite AppendEvent says so; on PostgreSQL the next
	// statement or COMMIT does, and a conflict of the event's must not
	// read as the user's (SCIM would answer 409 uniqueness).
	ev := must(db.AppendEvent(a, store.Event{TenantID: ta.ID, Type: "x"}))
	var createErr error
	err := db.InTx(a, func(ctx context.Context) error {
		if _, err := db.AppendEvent(ctx, store.Event{ID: ev.ID, TenantID: ta.ID, Type: "x"}); err != nil {
			return err
		}
		_, createErr = db.CreateUser(ctx, store.User{UserName: "queued@acme.test", Email: "queued@acme.test", Active: true})
		return createErr
	})
	if err == nil {
		t.Fatal("a transaction whose event failed committed")
	}
	if errors.Is(createErr, store.ErrConflict) {
		t.Errorf("the event's conflict was reported as the user's: %v", createErr)
	}
	if !strings.Contains(err.Error(), "append event") {
		t.Errorf("the error does not name the event: %v", err)
	}
	if _, total, err := db.FindUsers(a, store.UserQuery{}); err != nil || total != 0 {
		t.Fatalf("the failed transaction's user was kept: %d users, %v", total, err)
	}
	// The same when COMMIT is what sends the event.
	err = db.InTx(a, func(ctx context.Context) error {
		_, err := db.AppendEvent(ctx, store.Event{ID: ev.ID, TenantID: ta.ID, Type: "x"})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "append event") {
		t.Fatalf("a transaction whose last event failed: %v", err)
	}
	// The connection the failure left is not handed out half-done.
	must(0, queue(a, "k5"))
}
