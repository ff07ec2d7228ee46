package adminportal_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/store"
)

type managedWebhookOut struct {
	ID                      string     `json:"id"`
	URL                     string     `json:"url"`
	Events                  []string   `json:"events"`
	Enabled                 *bool      `json:"enabled"`
	Secret                  *string    `json:"secret"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

type endedDeliveryOut struct {
	EventID   string  `json:"event_id"`
	Status    string  `json:"status"`
	LastError *string `json:"last_error"`
}

// TestWebhookManagement: a webhook is read, changed, disabled, enabled,
// given a new secret and deleted through the API. Disabling or deleting
// ends the deliveries it was owed, visibly (dead, saying why); events
// committed while it is disabled are never sent to it; its events stay in
// GET /events after it is deleted.
func TestWebhookManagement(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var hook managedWebhookOut
		e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": "https://hooks.example/a", "events": []string{"*"}}).decode(t, &hook)
		if hook.Enabled == nil || !*hook.Enabled || hook.Secret == nil || hook.PreviousSecretExpiresAt != nil {
			t.Fatalf("created %+v", hook)
		}
		event := func(typ string) store.Event {
			t.Helper()
			ev, err := e.st.AppendEvent(ctx, store.Event{Type: typ, Data: json.RawMessage(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			return ev
		}
		deliveries := func() []endedDeliveryOut {
			t.Helper()
			var l listOut[endedDeliveryOut]
			e.must(http.StatusOK, "GET", "/webhooks/"+hook.ID+"/deliveries", nil).decode(t, &l)
			return l.Data
		}
		path := "/webhooks/" + hook.ID

		// PATCH: each field alone, the others kept.
		var got managedWebhookOut
		e.must(http.StatusOK, "PATCH", path, map[string]any{"url": "https://hooks2.example/b"}).decode(t, &got)
		if got.URL != "https://hooks2.example/b" || len(got.Events) != 1 || got.Events[0] != "*" || !*got.Enabled || got.Secret != nil {
			t.Fatalf("PATCH url: %+v", got)
		}
		e.must(http.StatusOK, "PATCH", path, map[string]any{"events": []string{"session.revoked", "tenant.status_changed"}}).decode(t, &got)
		if got.URL != "https://hooks2.example/b" || strings.Join(got.Events, ",") != "session.revoked,tenant.status_changed" {
			t.Fatalf("PATCH events: %+v", got)
		}
		e.must(http.StatusOK, "GET", path, nil).decode(t, &got)
		if got.URL != "https://hooks2.example/b" || len(got.Events) != 2 || got.Secret != nil {
			t.Fatalf("GET after PATCH: %+v", got)
		}

		// Refusals: 400 naming the field, nothing changed.
		for _, c := range []struct {
			name  string
			body  any
			field string
		}{
			{"loopback", map[string]any{"url": "http://127.0.0.1/x"}, "url"},
			{"decimal loopback", map[string]any{"url": "http://2130706433/x"}, "url"},
			{"metadata name", map[string]any{"url": "http://metadata.google.internal/x"}, "url"},
			{"relative", map[string]any{"url": "/x"}, "url"},
			{"credentials", map[string]any{"url": "https://u:p@hooks.example/x"}, "url"},
			{"null url", map[string]any{"url": nil}, "url"},
			{"no events", map[string]any{"events": []string{}}, "events"},
			{"unknown event", map[string]any{"events": []string{"user.exploded"}}, "events[0]"},
			{"star and more", map[string]any{"events": []string{"*", "session.revoked"}}, "events[0]"},
			{"null events", map[string]any{"events": nil}, "events"},
			{"null enabled", map[string]any{"enabled": nil}, "enabled"},
			{"enabled text", map[string]any{"enabled": "no"}, "enabled"},
			{"secret", map[string]any{"secret": "mine"}, "secret"},
		} {
			r := e.call("PATCH", path, c.body)
			if r.status != http.StatusBadRequest || r.err(t).Code != "invalid_request" || r.err(t).Field != c.field {
				t.Errorf("%s: %d %s, want 400 on %s", c.name, r.status, r.body, c.field)
			}
		}
		if w, _ := e.st.Webhook(ctx, hook.ID); w.URL != "https://hooks2.example/b" || len(w.Events) != 2 || w.Disabled {
			t.Fatalf("refused PATCHes changed %+v", w)
		}

		// Disabling ends what was owed; nothing is owed while disabled;
		// enabling resumes with the next event, replaying none.
		owed := event("session.revoked")
		e.must(http.StatusOK, "PATCH", path, map[string]any{"enabled": false}).decode(t, &got)
		if *got.Enabled {
			t.Fatalf("disabled %+v", got)
		}
		if ds := deliveries(); len(ds) != 1 || ds[0].EventID != owed.ID || ds[0].Status != "dead" ||
			ds[0].LastError == nil || *ds[0].LastError != store.DeliveryEndedDisabled {
			t.Fatalf("deliveries after disabling: %+v", ds)
		}
		event("session.revoked")
		if ds := deliveries(); len(ds) != 1 {
			t.Fatalf("an event while disabled was queued: %+v", ds)
		}
		e.must(http.StatusOK, "PATCH", path, map[string]any{"enabled": true}).decode(t, &got)
		resumed := event("tenant.status_changed")
		if ds := deliveries(); !*got.Enabled || len(ds) != 2 || ds[1].EventID != resumed.ID || ds[1].Status != "pending" {
			t.Fatalf("after enabling: %+v %+v", got, ds)
		}

		// Rotation: a new secret, shown once; the old one signs beside it
		// for 24 hours.
		before, _ := e.st.Webhook(ctx, hook.ID)
		r := e.must(http.StatusOK, "POST", path+"/secret", nil)
		r.decode(t, &got)
		if got.Secret == nil || !strings.HasPrefix(*got.Secret, adminportal.WebhookSecretPrefix+"_") || *got.Secret == *hook.Secret ||
			got.PreviousSecretExpiresAt == nil || time.Until(*got.PreviousSecretExpiresAt) < 23*time.Hour || time.Until(*got.PreviousSecretExpiresAt) > 25*time.Hour {
			t.Fatalf("rotated %s", r.body)
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("rotation answer Cache-Control %q", cc)
		}
		if w, _ := e.st.Webhook(ctx, hook.ID); w.Secret != *got.Secret || w.PreviousSecret != before.Secret {
			t.Fatalf("stored after rotation: new %v, previous kept %v", w.Secret == *got.Secret, w.PreviousSecret == before.Secret)
		}
		for _, p := range []string{path, "/webhooks"} {
			if b := string(e.must(http.StatusOK, "GET", p, nil).body); strings.Contains(b, *got.Secret) || strings.Contains(b, before.Secret) ||
				strings.Contains(b, `"secret"`) || !strings.Contains(b, "previous_secret_expires_at") {
				t.Errorf("GET %s shows a secret, or not when the old one ends: %s", p, b)
			}
		}

		// Deletion: 204, then 404 everywhere; what was owed ends; the
		// events stay in the stream.
		e.must(http.StatusNoContent, "DELETE", path, nil)
		for _, c := range []struct{ method, path string }{
			{"GET", path}, {"DELETE", path}, {"PATCH", path}, {"POST", path + "/secret"}, {"GET", path + "/deliveries"},
		} {
			var body any
			if c.method == "PATCH" {
				body = map[string]any{"enabled": true}
			}
			if r := e.call(c.method, c.path, body); r.status != http.StatusNotFound || r.err(t).Code != "not_found" {
				t.Errorf("%s %s after DELETE: %d %s", c.method, c.path, r.status, r.body)
			}
		}
		ds, _, err := e.st.ListDeliveries(ctx, store.DeliveryQuery{EventID: resumed.ID})
		if err != nil || len(ds) != 1 || ds[0].Status != store.DeliveryDead || ds[0].LastError != store.DeliveryEndedDeleted {
			t.Fatalf("delivery owed at the deletion: %+v %v", ds, err)
		}
		var wl listOut[map[string]any]
		e.must(http.StatusOK, "GET", "/webhooks", nil).decode(t, &wl)
		if len(wl.Data) != 0 {
			t.Fatalf("deleted webhook listed: %+v", wl)
		}
		var evs listOut[eventOut]
		e.must(http.StatusOK, "GET", "/events", nil).decode(t, &evs)
		if len(evs.Data) != 3 {
			t.Fatalf("events after the deletion: %+v", evs)
		}

		// Unknown and malformed ids, and ids of another kind: 404; no key: 401.
		for _, id := range []string{store.NewID(store.PrefixWebhook), "wh_x", store.NewID(store.PrefixTenant)} {
			for _, m := range []string{"PATCH", "DELETE", "POST"} {
				p := "/webhooks/" + id
				if m == "POST" {
					p += "/secret"
				}
				if r := e.call(m, p, map[string]any{}); r.status != http.StatusNotFound {
					t.Errorf("%s %s: %d %s", m, p, r.status, r.body)
				}
			}
		}
		var other managedWebhookOut
		e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": "https://hooks.example/c", "events": []string{"*"}}).decode(t, &other)
		for _, m := range []string{"PATCH", "DELETE", "POST"} {
			p := "/webhooks/" + other.ID
			if m == "POST" {
				p += "/secret"
			}
			if r := e.call(m, p, map[string]any{"enabled": false}, "Authorization", ""); r.status != http.StatusUnauthorized {
				t.Errorf("%s %s without a key: %d", m, p, r.status)
			}
		}
		if w, _ := e.st.Webhook(ctx, other.ID); w.Disabled || w.DeletedAt != nil || w.Secret != *other.Secret {
			t.Fatalf("unauthenticated calls changed %+v", w)
		}
	})
}

// TestWebhookChangesAudited: each change of a webhook appends a row to the
// operators' trail naming the key, what changed (hosts, never paths or
// secrets) and how many deliveries it ended.
func TestWebhookChangesAudited(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		var hook managedWebhookOut
		e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": "https://hooks.example/T0/s3cr3t", "events": []string{"*"}}).decode(t, &hook)
		if _, err := e.st.AppendEvent(context.Background(), store.Event{Type: "session.revoked"}); err != nil {
			t.Fatal(err)
		}
		e.must(http.StatusOK, "PATCH", "/webhooks/"+hook.ID, map[string]any{"url": "https://other.example/T1/t0p", "enabled": false})
		var rot managedWebhookOut
		e.must(http.StatusOK, "POST", "/webhooks/"+hook.ID+"/secret", nil).decode(t, &rot)
		e.must(http.StatusNoContent, "DELETE", "/webhooks/"+hook.ID, nil)

		rows, _, err := e.st.OperatorAudit(context.Background(), "", store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]map[string]any{}
		for _, r := range rows {
			raw := string(r.Context)
			for _, s := range []string{*hook.Secret, *rot.Secret, "s3cr3t", "t0p"} {
				if strings.Contains(raw, s) {
					t.Errorf("%s row carries a secret or a path: %s", r.Action, raw)
				}
			}
			if !strings.HasPrefix(r.Action, "webhook.") {
				continue
			}
			if r.Actor.Type != "operator" || r.Actor.ID != e.keyID || r.Resource.Type != "webhook" || r.Resource.ID != hook.ID || r.RequestID == "" {
				t.Errorf("%s row %+v", r.Action, r)
			}
			var c map[string]any
			_ = json.Unmarshal(r.Context, &c)
			got[r.Action] = c
		}
		upd := got["webhook.updated"]
		if h, _ := upd["host"].(map[string]any); h["from"] != "hooks.example" || h["to"] != "other.example" {
			t.Errorf("webhook.updated host: %v", upd)
		}
		if en, _ := upd["enabled"].(map[string]any); en["from"] != true || en["to"] != false || upd["deliveries_ended"] != float64(1) {
			t.Errorf("webhook.updated enabled: %v", upd)
		}
		if _, ok := upd["events"]; ok {
			t.Errorf("webhook.updated names events that did not change: %v", upd)
		}
		if got["webhook.secret_rotated"]["previous_secret_expires_at"] == nil {
			t.Errorf("webhook.secret_rotated: %v", got["webhook.secret_rotated"])
		}
		if del := got["webhook.deleted"]; del == nil || del["host"] != "other.example" || del["deliveries_ended"] != float64(0) {
			t.Errorf("webhook.deleted: %v", del)
		}
	})
}

// TestFailingWebhookThroughTheAPI: the API shows a webhook's failing
// streak and its last failure; one the dispatcher disabled says so
// (disabled_reason failing, disabled_at) and PATCH {"enabled": true}
// enables it again, its streak started over. A webhook an operator
// disabled says "operator".
func TestFailingWebhookThroughTheAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		type out struct {
			Enabled        bool       `json:"enabled"`
			DisabledReason *string    `json:"disabled_reason"`
			DisabledAt     *time.Time `json:"disabled_at"`
			FailingSince   *time.Time `json:"failing_since"`
			LastFailureAt  *time.Time `json:"last_failure_at"`
			LastFailure    *string    `json:"last_failure"`
		}
		var hook managedWebhookOut
		e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": "https://hooks.example/f", "events": []string{"*"}}).decode(t, &hook)
		path := "/webhooks/" + hook.ID
		var got out
		e.must(http.StatusOK, "GET", path, nil).decode(t, &got)
		if !got.Enabled || got.DisabledReason != nil || got.FailingSince != nil || got.LastFailure != nil {
			t.Fatalf("a new webhook: %+v", got)
		}
		if _, err := e.st.AppendEvent(ctx, store.Event{Type: "session.revoked", Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		claimed, err := e.st.ClaimDeliveries(ctx, time.Now().Add(time.Minute), time.Minute, 10)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim: %+v %v", claimed, err)
		}
		since := time.Now().Add(-6 * 24 * time.Hour).UTC().Truncate(time.Second)
		if err := e.st.RecordDelivery(ctx, claimed[0].ID, store.DeliveryResult{Status: store.DeliveryFailed, StatusCode: 410,
			Error: "HTTP 410 Gone", NextAttemptAt: time.Now().Add(time.Hour), ReceiverFailed: true, At: since}); err != nil {
			t.Fatal(err)
		}
		e.must(http.StatusOK, "GET", path, nil).decode(t, &got)
		if !got.Enabled || got.FailingSince == nil || !got.FailingSince.Equal(since) || got.LastFailure == nil || *got.LastFailure != "HTTP 410 Gone" {
			t.Fatalf("a failing webhook: %+v", got)
		}
		if _, _, err := e.st.DisableFailingWebhook(ctx, hook.ID, time.Now().Add(-5*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		e.must(http.StatusOK, "GET", path, nil).decode(t, &got)
		if got.Enabled || got.DisabledReason == nil || *got.DisabledReason != "failing" || got.DisabledAt == nil {
			t.Fatalf("disabled for failing: %+v", got)
		}
		e.must(http.StatusOK, "PATCH", path, map[string]any{"enabled": true}).decode(t, &got)
		if !got.Enabled || got.DisabledReason != nil || got.DisabledAt != nil || got.FailingSince != nil || got.LastFailure == nil {
			t.Fatalf("enabled again: %+v", got)
		}
		e.must(http.StatusOK, "PATCH", path, map[string]any{"enabled": false}).decode(t, &got)
		if got.Enabled || got.DisabledReason == nil || *got.DisabledReason != "operator" || got.DisabledAt != nil {
			t.Fatalf("disabled by an operator: %+v", got)
		}
	})
}
