package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// testResolveDirectory: the operator API's narrow lookup finds any
// tenant's directory by id and reveals nothing else.
func testResolveDirectory(t *testing.T, db *store.DB) {
	a, ta := newTenant(t, db, "A")
	b, tb := newTenant(t, db, "B")
	h := sha256.Sum256([]byte("t"))
	da := must(db.CreateDirectory(a, store.Directory{Name: "a", TokenHash: h[:]}))
	db2 := must(db.CreateDirectory(b, store.Directory{Name: "b", TokenHash: h[:]}))
	bg := context.Background()
	if got := must(db.ResolveDirectory(bg, da.ID)); got != ta.ID {
		t.Fatalf("resolve %s = %s, want %s", da.ID, got, ta.ID)
	}
	if got := must(db.ResolveDirectory(a, db2.ID)); got != tb.ID { // the ctx's tenant does not matter
		t.Fatalf("resolve %s = %s, want %s", db2.ID, got, tb.ID)
	}
	for _, id := range []string{"", "dir_x", store.NewID(store.PrefixDirectory), "' OR 1=1 --"} {
		_, err := db.ResolveDirectory(bg, id)
		wantErr(t, err, store.ErrNotFound)
	}
}

// testDeliveries: the outbox fans out to subscribed webhooks in the
// event's own transaction, claims are exclusive until their lease ends, and
// outcomes are recorded and listed.
func testDeliveries(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, ta := newTenant(t, db, "A")
	created := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/1", Events: []string{"dsync.user.created"}, Secret: "s1"}))
	all := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/2", Events: []string{"*"}, Secret: "s2"}))
	other := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/3", Events: []string{"dsync.group.created"}, Secret: "s3"}))

	// A rolled-back change leaves neither its event nor deliveries.
	boom := errors.New("boom")
	err := db.InTx(a, func(ctx context.Context) error {
		must(db.AppendEvent(ctx, store.Event{TenantID: ta.ID, Type: "dsync.user.created"}))
		return boom
	})
	wantErr(t, err, boom)
	if got, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{WebhookID: all.ID})); len(got) != 0 {
		t.Fatalf("rolled-back event has deliveries: %+v", got)
	}

	ev := must(db.AppendEvent(a, store.Event{TenantID: ta.ID, Type: "dsync.user.created", Data: []byte(`{"id":"usr_1"}`)}))
	byEvent, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{EventID: ev.ID}))
	if len(byEvent) != 2 {
		t.Fatalf("deliveries of %s: %+v, want one each for %s and %s", ev.ID, byEvent, created.ID, all.ID)
	}
	for _, d := range byEvent {
		if d.WebhookID == other.ID || d.Status != store.DeliveryPending || d.Attempts != 0 {
			t.Fatalf("delivery %+v", d)
		}
	}
	if got := must(db.Event(ctx, ev.ID)); got.Type != ev.Type || string(got.Data) == "" {
		t.Fatalf("event %+v", got)
	}
	if got := must(db.Webhook(ctx, all.ID)); got.Secret != "s2" {
		t.Fatalf("webhook %+v", got)
	}
	_, err = db.Webhook(ctx, "wh_nope")
	wantErr(t, err, store.ErrNotFound)

	now := time.Now().Add(time.Second)
	claimed := must(db.ClaimDeliveries(ctx, now, time.Minute, 10))
	if len(claimed) != 2 || claimed[0].Attempts != 1 {
		t.Fatalf("claimed %+v", claimed)
	}
	if again := must(db.ClaimDeliveries(ctx, now.Add(30*time.Second), time.Minute, 10)); len(again) != 0 {
		t.Fatalf("claimed under a live lease: %+v", again)
	}
	retryAt := now.Add(10 * time.Second)
	if err := db.RecordDelivery(ctx, claimed[0].ID, store.DeliveryResult{Status: store.DeliveryFailed, StatusCode: 500, Error: "HTTP 500", NextAttemptAt: retryAt}); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordDelivery(ctx, claimed[1].ID, store.DeliveryResult{Status: store.DeliverySucceeded, StatusCode: 204}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, db.RecordDelivery(ctx, "dlv_nope", store.DeliveryResult{Status: store.DeliveryDead}), store.ErrNotFound)
	wantErr(t, db.RecordDelivery(ctx, claimed[0].ID, store.DeliveryResult{Status: "bogus"}), store.ErrInvalid)

	retry := must(db.ClaimDeliveries(ctx, retryAt, time.Minute, 10))
	if len(retry) != 1 || retry[0].ID != claimed[0].ID || retry[0].Attempts != 2 || retry[0].LastStatusCode != 500 {
		t.Fatalf("retry claim %+v", retry)
	}
	if err := db.RecordDelivery(ctx, retry[0].ID, store.DeliveryResult{Status: store.DeliveryDead, Error: "gave up"}); err != nil {
		t.Fatal(err)
	}
	if got := must(db.ClaimDeliveries(ctx, retryAt.Add(48*time.Hour), time.Minute, 10)); len(got) != 0 {
		t.Fatalf("dead or succeeded deliveries claimed: %+v", got)
	}

	// Paging by webhook.
	for range 3 {
		must(db.AppendEvent(a, store.Event{TenantID: ta.ID, Type: "x.y"}))
	}
	page1, next := must2(db.ListDeliveries(ctx, store.DeliveryQuery{WebhookID: all.ID, Page: store.Page{Limit: 2}}))
	page2, end := must2(db.ListDeliveries(ctx, store.DeliveryQuery{WebhookID: all.ID, Page: store.Page{Limit: 2, After: next}}))
	if len(page1) != 2 || next == "" || len(page2) != 2 || end != "" || page2[0].ID == page1[1].ID {
		t.Fatalf("pages %v %q %v %q", page1, next, page2, end)
	}
	_, _, err = db.ListDeliveries(ctx, store.DeliveryQuery{})
	wantErr(t, err, store.ErrInvalid)
}

// testSCIMAndWebhooks groups the store additions of the SCIM and webhook
// work (issue 5) under one conformance entry.
func testSCIMAndWebhooks(t *testing.T, db *store.DB) {
	t.Run("ResolveDirectory", func(t *testing.T) { defer fatalOnFailure(t); testResolveDirectory(t, db) })
	t.Run("Deliveries", func(t *testing.T) { defer fatalOnFailure(t); testDeliveries(t, db) })
}

// testDeliveriesFanOut: the enqueueing trigger's fast path (no webhook at
// all, migration 0082) must not lose a delivery once there is one. Before
// any webhook an event enqueues nothing; a webhook created in the event's
// own transaction gets it; and each tenant's event, appended under that
// tenant's row security, is enqueued for the vendor's webhooks under its
// own id, never another tenant's.
func testDeliveriesFanOut(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, ta := newTenant(t, db, "A")
	b, tb := newTenant(t, db, "B")
	deliveries := func(eventID string) []store.Delivery {
		t.Helper()
		ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{EventID: eventID}))
		return ds
	}

	early := must(db.AppendEvent(a, store.Event{TenantID: ta.ID, Type: "dsync.user.created"}))
	if ds := deliveries(early.ID); len(ds) != 0 {
		t.Fatalf("an event before any webhook has deliveries: %+v", ds)
	}

	var hook store.Webhook
	var first store.Event
	err := db.InTx(b, func(ctx context.Context) error {
		hook = must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/1", Events: []string{"dsync.user.created"}, Secret: "s1"}))
		first = must(db.AppendEvent(ctx, store.Event{TenantID: tb.ID, Type: "dsync.user.created"}))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ds := deliveries(first.ID); len(ds) != 1 || ds[0].WebhookID != hook.ID || ds[0].EventID != first.ID {
		t.Fatalf("deliveries of the event in the webhook's own transaction: %+v", ds)
	}

	all := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/2", Events: []string{"*"}, Secret: "s2"}))
	for _, tc := range []struct {
		ctx    context.Context
		tenant string
		typ    string
		want   []string // webhook ids
	}{
		{a, ta.ID, "dsync.user.created", []string{hook.ID, all.ID}},
		{b, tb.ID, "dsync.user.created", []string{hook.ID, all.ID}},
		{a, ta.ID, "dsync.group.created", []string{all.ID}},
		{b, tb.ID, "dsync.group.created", []string{all.ID}},
	} {
		ev := must(db.AppendEvent(tc.ctx, store.Event{TenantID: tc.tenant, Type: tc.typ}))
		ds := deliveries(ev.ID)
		got := map[string]bool{}
		for _, d := range ds {
			if d.EventID != ev.ID || d.Status != store.DeliveryPending {
				t.Fatalf("delivery %+v of event %s", d, ev.ID)
			}
			got[d.WebhookID] = true
		}
		if len(ds) != len(tc.want) || len(got) != len(tc.want) {
			t.Fatalf("%s event of %s: deliveries %+v, want one each for %v", tc.typ, tc.tenant, ds, tc.want)
		}
		for _, id := range tc.want {
			if !got[id] {
				t.Fatalf("%s event of %s: no delivery for %s in %+v", tc.typ, tc.tenant, id, ds)
			}
		}
	}
	// Nothing else was enqueued: the catch-all webhook has the four events
	// after its creation, the other the three user events since its own.
	if ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{WebhookID: all.ID, Page: store.Page{Limit: 100}})); len(ds) != 4 {
		t.Fatalf("deliveries for the catch-all webhook: %+v, want 4", ds)
	}
	if ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{WebhookID: hook.ID, Page: store.Page{Limit: 100}})); len(ds) != 3 {
		t.Fatalf("deliveries for the user.created webhook: %+v, want 3", ds)
	}
}
