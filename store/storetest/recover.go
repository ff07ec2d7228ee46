package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// testWebhookRecover: RecoverDeliveries requeues the dead letters of one
// webhook whose events are at or after since, in batches, each with a
// retry window of its own, and nothing else: not another webhook's, not
// an older event's, not a delivery that succeeded, not a type the webhook
// no longer subscribes to. A second call finds nothing to requeue. A
// disabled webhook is refused (ErrConflict), a deleted or unknown one is
// ErrNotFound. Delivery reads one delivery, of any webhook.
func testWebhookRecover(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, ta := newTenant(t, db, "A")
	hook := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/r", Events: []string{"x.kept", "x.dropped"}, Secret: "s"}))
	other := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/o", Events: []string{"*"}, Secret: "s"}))
	event := func(typ string) store.Event {
		return must(db.AppendEvent(a, store.Event{TenantID: ta.ID, Type: typ}))
	}
	of := func(hookID, eventID string) store.Delivery {
		t.Helper()
		ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{EventID: eventID, Page: store.Page{Limit: 10}}))
		for _, d := range ds {
			if d.WebhookID == hookID {
				return d
			}
		}
		t.Fatalf("no delivery of %s to %s", eventID, hookID)
		return store.Delivery{}
	}

	old := event("x.kept")
	time.Sleep(5 * time.Millisecond) // since falls strictly between old and the rest
	since := time.Now()
	time.Sleep(5 * time.Millisecond)
	kept := []store.Event{event("x.kept"), event("x.kept"), event("x.kept")}
	dropped := event("x.dropped")
	done := event("x.kept")
	// done succeeds; everything else dies.
	for _, d := range must(db.ClaimDeliveries(ctx, time.Now().Add(time.Second), time.Minute, 100)) {
		r := store.DeliveryResult{Status: store.DeliveryDead, StatusCode: 500, Error: "HTTP 500", ReceiverFailed: true}
		if d.EventID == done.ID && d.WebhookID == hook.ID {
			r = store.DeliveryResult{Status: store.DeliverySucceeded, StatusCode: 204}
		}
		if err := db.RecordDelivery(ctx, d.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	narrowed := []string{"x.kept"}
	must3(db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Events: &narrowed}))

	if d := must(db.Delivery(ctx, of(hook.ID, old.ID).ID)); d.Status != store.DeliveryDead || d.WebhookID != hook.ID || d.EventID != old.ID {
		t.Fatalf("Delivery: %+v", d)
	}
	_, err := db.Delivery(ctx, "dlv_00000000000000000000000000000000")
	wantErr(t, err, store.ErrNotFound)

	n, err := db.RecoverDeliveries(ctx, hook.ID, since, 2) // two batches, the second short
	if err != nil || n != len(kept) {
		t.Fatalf("recover: %d, %v; want %d", n, err, len(kept))
	}
	for _, e := range kept {
		if d := of(hook.ID, e.ID); d.Status != store.DeliveryPending || d.RetryFrom == nil || d.RetryBase != d.Attempts || d.NextAttemptAt.After(time.Now()) {
			t.Fatalf("recovered %+v", d)
		}
	}
	for _, c := range []struct {
		name        string
		hook, event string
		want        store.DeliveryStatus
	}{
		{"an event before since", hook.ID, old.ID, store.DeliveryDead},
		{"a type no longer subscribed", hook.ID, dropped.ID, store.DeliveryDead},
		{"a delivery that succeeded", hook.ID, done.ID, store.DeliverySucceeded},
		{"another webhook's", other.ID, kept[0].ID, store.DeliveryDead},
	} {
		if d := of(c.hook, c.event); d.Status != c.want {
			t.Errorf("%s: %s, want %s", c.name, d.Status, c.want)
		}
	}
	if n, err := db.RecoverDeliveries(ctx, hook.ID, since, 0); err != nil || n != 0 {
		t.Fatalf("recover again: %d, %v; want nothing", n, err)
	}

	off := true
	must3(db.UpdateWebhook(ctx, other.ID, store.WebhookUpdate{Disabled: &off}))
	_, err = db.RecoverDeliveries(ctx, other.ID, since, 0)
	wantErr(t, err, store.ErrConflict)
	_, err = db.RecoverDeliveries(ctx, "wh_nope", since, 0)
	wantErr(t, err, store.ErrNotFound)
	if _, err := db.DeleteWebhook(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.RecoverDeliveries(ctx, other.ID, since, 0)
	wantErr(t, err, store.ErrNotFound)
	if d := of(other.ID, kept[0].ID); d.Status != store.DeliveryDead {
		t.Fatalf("a refused recovery changed %+v", d)
	}
}

// recoverMany and recoverBatch shape testWebhookRecoverMany: six batches.
// Set recoverMany to 3000 and recoverBatch to store.RecoverBatch to
// measure the broker's own batches (without -race, under which the pure Go
// SQLite is a hundred times slower): on a laptop-class machine 3000 dead
// letters took 20-35 ms on SQLite and 350-400 ms on PostgreSQL, no claim
// meanwhile waiting more than 20 ms.
const (
	recoverMany  = 600
	recoverBatch = 100
)

// testWebhookRecoverMany: recovering many dead letters takes batches, not
// one long transaction: the dispatcher's claims, polled meanwhile, go on
// between them (on SQLite, whose one writer they share). The times are
// logged (go test -v) for the record; the bound asserted is loose, for
// slow CI machines.
func testWebhookRecoverMany(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, ta := newTenant(t, db, "A")
	hook := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/many", Events: []string{"*"}, Secret: "s"}))
	since := time.Now().Add(-time.Minute)
	err := db.InTx(a, func(ctx context.Context) error {
		for range recoverMany {
			if _, err := db.AppendEvent(ctx, store.Event{TenantID: ta.ID, Type: "x.many"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Disabling ends every delivery owed, as dead letters, in one go.
	off, on := true, false
	if _, ended, err := db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Disabled: &off}); err != nil || ended != recoverMany {
		t.Fatalf("disable: ended %d, %v", ended, err)
	}
	must3(db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Disabled: &on}))

	// A dispatcher's poll, claiming nothing (the lease pushes no row:
	// another webhook's, none due), timed while the recovery runs.
	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		slowest time.Duration
		polls   int
	)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			if _, err := db.ClaimDeliveries(ctx, time.Now().Add(-time.Hour), time.Minute, 10); err != nil {
				t.Error(err)
				return
			}
			slowest = max(slowest, time.Since(start))
			polls++
			time.Sleep(2 * time.Millisecond)
		}
	})
	start := time.Now()
	n, err := db.RecoverDeliveries(ctx, hook.ID, since, recoverBatch)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil || n != recoverMany {
		t.Fatalf("recover: %d, %v; want %d", n, err, recoverMany)
	}
	t.Logf("recovered %d dead letters in %v (%d batches of up to %d); %d claims meanwhile, the slowest %v",
		n, took, (n+recoverBatch-1)/recoverBatch, recoverBatch, polls, slowest)
	if slowest > 30*time.Second {
		t.Errorf("a claim waited %v behind the recovery", slowest)
	}
	due := must(db.ClaimDeliveries(ctx, time.Now().Add(time.Second), time.Minute, recoverMany+1))
	if len(due) != recoverMany {
		t.Fatalf("due after recovery: %d, want %d", len(due), recoverMany)
	}
}
