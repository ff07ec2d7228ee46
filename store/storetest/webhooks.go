package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// testWebhookManagement: a webhook can be changed, disabled, re-enabled,
// deleted and given a new secret. Disabling or deleting ends what it was
// still owed, visibly (dead, saying why), and it is owed nothing while
// disabled or once deleted; its events stay in the stream.
func testWebhookManagement(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, ta := newTenant(t, db, "A")
	hook := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/1", Events: []string{"dsync.user.created"}, Secret: "s1"}))
	deliveries := func(id string) []store.Delivery {
		ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{WebhookID: id, Page: store.Page{Limit: 100}}))
		return ds
	}
	event := func(typ string) store.Event {
		return must(db.AppendEvent(a, store.Event{TenantID: ta.ID, Type: typ}))
	}

	// Changes, each field on its own; a bad URL and an unknown id change nothing.
	url, events := "https://h2.example/x", []string{"*"}
	got, ended, err := db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{URL: &url})
	if err != nil || got.URL != url || !reflect.DeepEqual(got.Events, hook.Events) || got.Disabled || ended != 0 || got.Secret != "s1" {
		t.Fatalf("update url: %+v %d %v", got, ended, err)
	}
	got, _, err = db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Events: &events})
	if err != nil || got.URL != url || !reflect.DeepEqual(got.Events, events) {
		t.Fatalf("update events: %+v %v", got, err)
	}
	bad := "ftp://x"
	_, _, err = db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{URL: &bad})
	wantErr(t, err, store.ErrInvalid)
	_, _, err = db.UpdateWebhook(ctx, "wh_nope", store.WebhookUpdate{URL: &url})
	wantErr(t, err, store.ErrNotFound)
	if got := must(db.Webhook(ctx, hook.ID)); got.URL != url || !reflect.DeepEqual(got.Events, events) {
		t.Fatalf("stored %+v", got)
	}

	// Two events owed: one claimed (in flight), one pending. Disabling ends
	// both; the attempt in flight, failing, does not bring its own back.
	first := event("x.one")
	event("x.two")
	claimed := must(db.ClaimDeliveries(ctx, time.Now().Add(time.Second), time.Minute, 1))
	if len(claimed) != 1 || claimed[0].EventID != first.ID {
		t.Fatalf("claimed %+v", claimed)
	}
	off, on := true, false
	got, ended, err = db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Disabled: &off})
	if err != nil || !got.Disabled || ended != 2 {
		t.Fatalf("disable: %+v ended %d %v", got, ended, err)
	}
	if err := db.RecordDelivery(ctx, claimed[0].ID, store.DeliveryResult{Status: store.DeliveryFailed, StatusCode: 500, Error: "HTTP 500", NextAttemptAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, d := range deliveries(hook.ID) {
		if d.Status != store.DeliveryDead || d.LastError != store.DeliveryEndedDisabled {
			t.Fatalf("after disabling: %+v", d)
		}
	}
	if ds := must(db.ClaimDeliveries(ctx, time.Now().Add(time.Hour), time.Minute, 10)); len(ds) != 0 {
		t.Fatalf("ended deliveries claimed: %+v", ds)
	}
	_, err = db.RedeliverDelivery(ctx, claimed[0].ID)
	wantErr(t, err, store.ErrConflict)

	// Disabled: an event makes no delivery (the only webhook is disabled:
	// PostgreSQL's fast path), and re-enabling replays nothing.
	while := event("x.while")
	if ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{EventID: while.ID})); len(ds) != 0 {
		t.Fatalf("an event while disabled has deliveries: %+v", ds)
	}
	got, ended, err = db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Disabled: &on})
	if err != nil || got.Disabled || ended != 0 || len(deliveries(hook.ID)) != 2 {
		t.Fatalf("enable: %+v %d %v, deliveries %+v", got, ended, err, deliveries(hook.ID))
	}
	after := event("x.after")
	if ds := deliveries(hook.ID); len(ds) != 3 || ds[2].EventID != after.ID || ds[2].Status != store.DeliveryPending {
		t.Fatalf("after enabling: %+v", ds)
	}
	// A success recorded on an ended delivery is what happened: kept.
	retry := must(db.ClaimDeliveries(ctx, time.Now().Add(time.Second), time.Minute, 10))
	got, _, _ = db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Disabled: &off})
	if err := db.RecordDelivery(ctx, retry[0].ID, store.DeliveryResult{Status: store.DeliverySucceeded, StatusCode: 200}); err != nil {
		t.Fatal(err)
	}
	if ds := deliveries(hook.ID); ds[2].Status != store.DeliverySucceeded {
		t.Fatalf("success during the disable: %+v", ds[2])
	}
	must3(db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Disabled: &on}))

	// Rotation keeps the replaced secret, sealed, until now+overlap; a
	// second one keeps only the one it replaced.
	before := time.Now()
	rot := must(db.RotateWebhookSecret(ctx, hook.ID, "s2", 24*time.Hour))
	if rot.Secret != "s2" || rot.PreviousSecret != "s1" || rot.PreviousSecretExpiresAt == nil ||
		rot.PreviousSecretExpiresAt.Before(before.Add(24*time.Hour-time.Minute)) || rot.PreviousSecretExpiresAt.After(time.Now().Add(24*time.Hour+time.Minute)) {
		t.Fatalf("rotated %+v", rot)
	}
	if got := must(db.Webhook(ctx, hook.ID)); got.Secret != "s2" || got.PreviousSecret != "s1" {
		t.Fatalf("stored after rotation %+v", got)
	}
	if got := must(db.RotateWebhookSecret(ctx, hook.ID, "s3", time.Hour)); got.Secret != "s3" || got.PreviousSecret != "s2" {
		t.Fatalf("rotated twice %+v", got)
	}
	_, err = db.RotateWebhookSecret(ctx, "wh_nope", "s", time.Hour)
	wantErr(t, err, store.ErrNotFound)
	_, err = db.RotateWebhookSecret(ctx, hook.ID, "", time.Hour)
	wantErr(t, err, store.ErrInvalid)

	// Deletion: what was owed ends, nothing new is owed, the events stay,
	// the row stays (DeletedAt, no secret) for the deliveries naming it.
	other := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/2", Events: []string{"*"}, Secret: "o"}))
	owed := event("x.owed")
	n := must(db.DeleteWebhook(ctx, hook.ID))
	if n != 1 {
		t.Fatalf("delete ended %d deliveries, want 1", n)
	}
	ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{EventID: owed.ID}))
	for _, d := range ds {
		want := store.DeliveryPending
		if d.WebhookID == hook.ID {
			want = store.DeliveryDead
			if d.LastError != store.DeliveryEndedDeleted {
				t.Fatalf("ended delivery %+v", d)
			}
		}
		if d.Status != want {
			t.Fatalf("delivery %+v, want %s", d, want)
		}
	}
	if len(ds) != 2 {
		t.Fatalf("deliveries of %s: %+v", owed.ID, ds)
	}
	late := event("x.late")
	if ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{EventID: late.ID})); len(ds) != 1 || ds[0].WebhookID != other.ID {
		t.Fatalf("an event after the deletion: %+v", ds)
	}
	if l := must(db.Webhooks(ctx)); len(l) != 1 || l[0].ID != other.ID {
		t.Fatalf("webhooks after the deletion: %+v", l)
	}
	gone := must(db.Webhook(ctx, hook.ID))
	if gone.DeletedAt == nil || gone.Secret != "" || gone.PreviousSecret != "" {
		t.Fatalf("deleted webhook %+v", gone)
	}
	evs, _ := must2(db.ListEvents(ctx, store.Page{Limit: 100}))
	if len(evs) != 6 {
		t.Fatalf("events after the deletion: %d, want 6", len(evs))
	}
	_, err = db.DeleteWebhook(ctx, hook.ID)
	wantErr(t, err, store.ErrNotFound)
	_, _, err = db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Disabled: &on})
	wantErr(t, err, store.ErrNotFound)
	_, err = db.RotateWebhookSecret(ctx, hook.ID, "s4", time.Hour)
	wantErr(t, err, store.ErrNotFound)
	_, err = db.DeleteWebhook(ctx, "wh_nope")
	wantErr(t, err, store.ErrNotFound)
}

func must3[T any](v T, _ int, err error) T { return must(v, err) }

// testWebhookNarrowed: a webhook whose events list is changed to leave a
// type out is sent nothing more of that type: the deliveries of it still
// waiting (pending, or failed and due for a retry) end, saying why, and
// those of the types it kept are untouched. Widening the list again
// replays none of them.
func testWebhookNarrowed(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, ta := newTenant(t, db, "A")
	hook := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/n", Events: []string{"x.kept", "x.dropped"}, Secret: "s"}))
	other := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/o", Events: []string{"x.dropped"}, Secret: "o"}))
	event := func(typ string) store.Event {
		return must(db.AppendEvent(a, store.Event{TenantID: ta.ID, Type: typ}))
	}
	status := func(hookID, eventID string) store.Delivery {
		t.Helper()
		ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{WebhookID: hookID, EventID: eventID}))
		if len(ds) != 1 {
			t.Fatalf("deliveries of %s to %s: %+v", eventID, hookID, ds)
		}
		return ds[0]
	}
	// One dropped-type delivery failed once and waits for its retry, one
	// is pending, one already succeeded; one of the kept type is pending.
	failed := event("x.dropped")
	claimed := must(db.ClaimDeliveries(ctx, time.Now().Add(time.Second), time.Minute, 10))
	for _, d := range claimed {
		r := store.DeliveryResult{Status: store.DeliveryFailed, StatusCode: 500, Error: "HTTP 500", NextAttemptAt: time.Now().Add(time.Hour)}
		if d.WebhookID == other.ID {
			r = store.DeliveryResult{Status: store.DeliverySucceeded, StatusCode: 200}
		}
		if err := db.RecordDelivery(ctx, d.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	done := event("x.dropped")
	for _, d := range must(db.ClaimDeliveries(ctx, time.Now().Add(time.Second), time.Minute, 10)) {
		if err := db.RecordDelivery(ctx, d.ID, store.DeliveryResult{Status: store.DeliverySucceeded, StatusCode: 200}); err != nil {
			t.Fatal(err)
		}
	}
	pending, kept := event("x.dropped"), event("x.kept")

	narrowed := []string{"x.kept"}
	got, ended, err := db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Events: &narrowed})
	if err != nil || !reflect.DeepEqual(got.Events, narrowed) || ended != 2 {
		t.Fatalf("narrow: %+v ended %d %v, want 2 ended", got, ended, err)
	}
	for _, e := range []store.Event{failed, pending} {
		if d := status(hook.ID, e.ID); d.Status != store.DeliveryDead || d.LastError != store.DeliveryEndedUnsubscribed {
			t.Fatalf("a delivery of a type no longer subscribed: %+v", d)
		}
	}
	if d := status(hook.ID, done.ID); d.Status != store.DeliverySucceeded {
		t.Fatalf("a delivery made before the change: %+v", d)
	}
	if d := status(hook.ID, kept.ID); d.Status != store.DeliveryPending {
		t.Fatalf("a delivery of the type kept: %+v", d)
	}
	// Another webhook still subscribed to the type keeps its own.
	if d := status(other.ID, pending.ID); d.Status != store.DeliveryPending {
		t.Fatalf("another webhook's delivery: %+v", d)
	}
	// Nor can an operator send it again by hand: it would only end again.
	_, err = db.RedeliverDelivery(ctx, status(hook.ID, failed.ID).ID)
	wantErr(t, err, store.ErrConflict)
	// The same list again, then every type: nothing more ends, nothing
	// comes back.
	if _, ended, err := db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Events: &narrowed}); err != nil || ended != 0 {
		t.Fatalf("same list: ended %d %v", ended, err)
	}
	all := []string{"*"}
	if _, ended, err := db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Events: &all}); err != nil || ended != 0 {
		t.Fatalf("widen: ended %d %v", ended, err)
	}
	if d := status(hook.ID, pending.ID); d.Status != store.DeliveryDead {
		t.Fatalf("widening replayed %+v", d)
	}
	if d := status(hook.ID, kept.ID); d.Status != store.DeliveryPending {
		t.Fatalf("widening changed %+v", d)
	}
	// Subscribed again, the dead letter can be redelivered on request.
	if d, err := db.RedeliverDelivery(ctx, status(hook.ID, failed.ID).ID); err != nil || d.Status != store.DeliveryPending {
		t.Fatalf("redeliver once subscribed again: %+v %v", d, err)
	}
}

// testWebhookFailingStreak: a receiver's failed attempts start and extend
// a webhook's failing streak and a success ends it; other failures (the
// broker's own) leave it alone. DisableFailingWebhook disables a webhook
// failing since the cutoff, once, ending what it was owed, and refuses
// one failing for less long; enabling it again starts the streak over. A
// redelivery opens a retry window of its own.
func testWebhookFailingStreak(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, ta := newTenant(t, db, "A")
	hook := must(db.CreateWebhook(ctx, store.Webhook{URL: "https://h.example/f", Events: []string{"*"}, Secret: "s"}))
	attempt := func(r store.DeliveryResult) store.Delivery {
		t.Helper()
		must(db.AppendEvent(a, store.Event{TenantID: ta.ID, Type: "session.revoked"}))
		ds := must(db.ClaimDeliveries(ctx, time.Now().Add(time.Minute), time.Minute, 10))
		if len(ds) != 1 {
			t.Fatalf("claimed %d, want 1", len(ds))
		}
		if err := db.RecordDelivery(ctx, ds[0].ID, r); err != nil {
			t.Fatal(err)
		}
		return ds[0]
	}
	failed := func(at time.Time) store.DeliveryResult {
		return store.DeliveryResult{Status: store.DeliveryFailed, StatusCode: 502, Error: "HTTP 502 Bad Gateway",
			NextAttemptAt: time.Now().Add(time.Hour), ReceiverFailed: true, At: at}
	}
	day := 24 * time.Hour
	start := time.Now().Add(-3 * day).UTC().Truncate(time.Second)
	attempt(store.DeliveryResult{Status: store.DeliveryFailed, Error: "event unavailable", NextAttemptAt: time.Now().Add(time.Hour)})
	if w := must(db.Webhook(ctx, hook.ID)); w.FailingSince != nil {
		t.Fatalf("the broker's own failure started a streak: %v", w.FailingSince)
	}
	attempt(failed(start))
	attempt(failed(start.Add(day)))
	w := must(db.Webhook(ctx, hook.ID))
	if w.FailingSince == nil || !w.FailingSince.Equal(start) || w.LastFailureAt == nil || !w.LastFailureAt.Equal(start.Add(day)) || w.LastFailure != "HTTP 502 Bad Gateway" {
		t.Fatalf("after two failures: since %v, last %v %q", w.FailingSince, w.LastFailureAt, w.LastFailure)
	}
	attempt(store.DeliveryResult{Status: store.DeliverySucceeded, StatusCode: 204})
	if w = must(db.Webhook(ctx, hook.ID)); w.FailingSince != nil || w.LastFailure == "" {
		t.Fatalf("after a success: since %v, last %q (kept)", w.FailingSince, w.LastFailure)
	}
	attempt(failed(start))
	if _, _, err := db.DisableFailingWebhook(ctx, hook.ID, start.Add(-time.Hour)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("disable, failing for less long than asked: %v, want ErrConflict", err)
	}
	owed := attempt(failed(start.Add(time.Hour))) // failed, still owed
	w, ended, err := db.DisableFailingWebhook(ctx, hook.ID, start)
	if err != nil || !w.Disabled || w.DisabledReason != store.WebhookDisabledFailing || w.DisabledAt == nil || ended < 1 {
		t.Fatalf("disable: %+v, ended %d, %v", w, ended, err)
	}
	ds, _ := must2(db.ListDeliveries(ctx, store.DeliveryQuery{WebhookID: hook.ID, Page: store.Page{Limit: 100}}))
	for _, d := range ds {
		if d.ID == owed.ID && (d.Status != store.DeliveryDead || d.LastError != store.DeliveryEndedFailing) {
			t.Fatalf("what it was owed: %s %q", d.Status, d.LastError)
		}
	}
	if _, _, err := db.DisableFailingWebhook(ctx, hook.ID, start); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("disable twice: %v, want ErrConflict", err)
	}
	if _, _, err := db.DisableFailingWebhook(ctx, "wh_missing", start); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("disable an unknown webhook: %v, want ErrConflict", err)
	}
	on := false
	if w = must3(db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Disabled: &on})); w.Disabled || w.FailingSince != nil || w.DisabledReason != "" || w.DisabledAt != nil {
		t.Fatalf("enabled again: %+v", w)
	}
	off := true
	if w = must3(db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Disabled: &off})); w.DisabledReason != "" {
		t.Fatalf("disabled by an operator: reason %q", w.DisabledReason)
	}
	w = must3(db.UpdateWebhook(ctx, hook.ID, store.WebhookUpdate{Disabled: &on}))

	// Redelivery: a window of its own, the backoff counted from there.
	d := attempt(store.DeliveryResult{Status: store.DeliveryDead, StatusCode: 500, Error: "HTTP 500", ReceiverFailed: true})
	r := must(db.RedeliverDelivery(ctx, d.ID))
	if r.RetryFrom == nil || r.RetryBase != r.Attempts || r.Attempts != 1 || r.Status != store.DeliveryPending {
		t.Fatalf("redelivered: %+v", r)
	}
}
