package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// TestEndedWebhookInConsole: the console says a webhook is disabled or
// deleted, shows its deliveries ended with the reason, offers no
// Redeliver for them and refuses one sent anyway (409).
func TestEndedWebhookInConsole(t *testing.T) {
	h := start(t, "")
	do := signedIn(t, h)
	ctx := context.Background()
	off := true
	for _, tc := range []struct {
		name, says, why string
		end             func(id string) error
	}{
		{"disabled", "Disabled: it is sent nothing", store.DeliveryEndedDisabled, func(id string) error {
			_, _, err := h.db.UpdateWebhook(ctx, id, store.WebhookUpdate{Disabled: &off})
			return err
		}},
		{"deleted", "Deleted ", store.DeliveryEndedDeleted, func(id string) error {
			_, err := h.db.DeleteWebhook(ctx, id)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := h.db.CreateWebhook(ctx, store.Webhook{URL: "https://hooks.example/" + tc.name, Events: []string{"*"}, Secret: "s"})
			if err != nil {
				t.Fatal(err)
			}
			ev, err := h.db.AppendEvent(ctx, store.Event{Type: "session.revoked"})
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.end(w.ID); err != nil {
				t.Fatal(err)
			}
			ds, _, err := h.db.ListDeliveries(ctx, store.DeliveryQuery{WebhookID: w.ID, EventID: ev.ID})
			if err != nil || len(ds) != 1 {
				t.Fatalf("deliveries %+v %v", ds, err)
			}
			resp, body := do("GET", "/console/webhooks/"+w.ID+"?status=", nil)
			if resp.StatusCode != http.StatusOK || !contains(body, tc.says, ds[0].ID, "dead", tc.why) || strings.Contains(body, "Redeliver") {
				t.Fatalf("webhook page: %d\n%s", resp.StatusCode, body)
			}
			if resp, body := do("POST", "/console/deliveries/"+ds[0].ID+"/redeliver", url.Values{"webhook_id": {w.ID}}); resp.StatusCode != http.StatusConflict {
				t.Fatalf("redeliver an ended delivery: %d\n%s", resp.StatusCode, body)
			}
		})
	}
}

// TestFailingWebhookInConsole: a webhook the dispatcher disabled after
// days of failures says so on its page, with its last failure, and an
// operator enables it again there (audited; its streak starts over); a
// webhook enabled already is 409, an unknown one 404.
func TestFailingWebhookInConsole(t *testing.T) {
	h := start(t, "")
	do := signedIn(t, h)
	ctx := context.Background()
	w, err := h.db.CreateWebhook(ctx, store.Webhook{URL: "https://hooks.example/failing", Events: []string{"*"}, Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.AppendEvent(ctx, store.Event{Type: "session.revoked"}); err != nil {
		t.Fatal(err)
	}
	claimed, err := h.db.ClaimDeliveries(ctx, time.Now().Add(time.Minute), time.Minute, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %+v %v", claimed, err)
	}
	if err := h.db.RecordDelivery(ctx, claimed[0].ID, store.DeliveryResult{Status: store.DeliveryFailed, StatusCode: 503,
		Error: "HTTP 503 Service Unavailable", NextAttemptAt: time.Now().Add(time.Hour), ReceiverFailed: true,
		At: time.Now().Add(-6 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	resp, body := do("GET", "/console/webhooks/"+w.ID, nil)
	if resp.StatusCode != http.StatusOK || !contains(body, "Failing since", "disabled after 5 days", "HTTP 503 Service Unavailable") {
		t.Fatalf("failing webhook's page: %d\n%s", resp.StatusCode, body)
	}
	if _, _, err := h.db.DisableFailingWebhook(ctx, w.ID, time.Now().Add(-5*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	resp, body = do("GET", "/console/webhooks/"+w.ID, nil)
	if resp.StatusCode != http.StatusOK || !contains(body, "Disabled by the broker", "every attempt at it failed since", "HTTP 503 Service Unavailable", "/enable") {
		t.Fatalf("disabled webhook's page: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := do("GET", "/console/webhooks", nil); !contains(body, "disabled: failing") {
		t.Fatalf("webhooks page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = do("POST", "/console/webhooks/"+w.ID+"/enable", url.Values{})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "webhook_enabled") {
		t.Fatalf("enable: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	got, err := h.db.Webhook(ctx, w.ID)
	if err != nil || got.Disabled || got.FailingSince != nil || got.DisabledReason != "" {
		t.Fatalf("after enabling: %+v %v", got, err)
	}
	rows, _, err := h.db.OperatorAudit(ctx, "webhook.updated", store.Page{})
	if err != nil || len(rows) != 1 || rows[0].Resource.ID != w.ID || !strings.Contains(string(rows[0].Context), `"failing"`) {
		t.Fatalf("audit: %+v %v", rows, err)
	}
	if resp, body := do("POST", "/console/webhooks/"+w.ID+"/enable", url.Values{}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("enable an enabled webhook: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := do("POST", "/console/webhooks/wh_missing/enable", url.Values{}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("enable an unknown webhook: %d\n%s", resp.StatusCode, body)
	}
}
