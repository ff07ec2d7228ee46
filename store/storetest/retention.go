package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// testEventRetention: events older than the cut go with their deliveries,
// in batches of the limit, except those still owed a delivery; a deleted
// webhook's row goes once no delivery names it.
func testEventRetention(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, ta := newTenant(t, db, "A")
	hook := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/1", Events: []string{"*"}, Secret: "s1"}))
	event := func(typ string) store.Event {
		return must(db.AppendEvent(a, store.Event{TenantID: ta.ID, Type: typ}))
	}
	exists := func(e store.Event) bool {
		_, err := db.Event(ctx, e.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	owed := func(e store.Event) []store.Delivery {
		ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{EventID: e.ID, Page: store.Page{Limit: 10}}))
		return ds
	}

	delivered, waiting := event("x.delivered"), event("x.waiting")
	vendor := must(db.AppendEvent(ctx, store.Event{Type: "x.vendor"})) // no tenant
	// Whatever the clock's resolution, the cut falls between these events
	// and the next.
	time.Sleep(5 * time.Millisecond)
	cut := time.Now()
	time.Sleep(5 * time.Millisecond)
	recent := event("x.recent")

	claimed := must(db.ClaimDeliveries(ctx, time.Now(), time.Minute, 1))
	if len(claimed) != 1 || claimed[0].EventID != delivered.ID {
		t.Fatalf("claimed %+v, want the first event's delivery", claimed)
	}
	if err := db.RecordDelivery(ctx, claimed[0].ID, store.DeliveryResult{Status: store.DeliverySucceeded, StatusCode: 200}); err != nil {
		t.Fatal(err)
	}
	// The vendor event's delivery ends too (dead), so only "waiting" is owed.
	for _, d := range owed(vendor) {
		if err := db.RecordDelivery(ctx, d.ID, store.DeliveryResult{Status: store.DeliveryDead, Error: "gone"}); err != nil {
			t.Fatal(err)
		}
	}

	if n := must(db.PurgeEvents(ctx, cut, 0)); n != 0 {
		t.Fatalf("limit 0 purged %d", n)
	}
	if n := must(db.PurgeEvents(ctx, cut, 100)); n != 2 {
		t.Fatalf("purged %d events, want 2 (delivered, vendor)", n)
	}
	if exists(delivered) || exists(vendor) || !exists(waiting) || !exists(recent) {
		t.Fatalf("after the purge: delivered %v vendor %v waiting %v recent %v, want only the last two",
			exists(delivered), exists(vendor), exists(waiting), exists(recent))
	}
	if ds := owed(delivered); len(ds) != 0 {
		t.Fatalf("a purged event's deliveries stayed: %+v", ds)
	}

	// Deleting the webhook ends what it was owed; its row stays while
	// deliveries name it, then goes.
	if _, err := db.DeleteWebhook(ctx, hook.ID); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if n := must(db.PurgeDeletedWebhooks(ctx, later, 10)); n != 0 {
		t.Fatalf("purged %d webhooks while deliveries name it", n)
	}
	for i := 0; i < 2; i++ { // "waiting" and "recent", one per batch
		if n := must(db.PurgeEvents(ctx, later, 1)); n != 1 {
			t.Fatalf("batch %d purged %d events, want 1", i, n)
		}
	}
	if n := must(db.PurgeEvents(ctx, later, 10)); n != 0 {
		t.Fatalf("purged %d events from an empty stream", n)
	}
	if n := must(db.PurgeDeletedWebhooks(ctx, cut, 10)); n != 0 {
		t.Fatalf("purged %d webhooks deleted after the cut", n)
	}
	if n := must(db.PurgeDeletedWebhooks(ctx, later, 10)); n != 1 {
		t.Fatalf("purged %d webhooks, want the deleted one", n)
	}
	if ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{WebhookID: hook.ID, Page: store.Page{Limit: 10}})); len(ds) != 0 {
		t.Fatalf("deliveries left: %+v", ds)
	}
}
