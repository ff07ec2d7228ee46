package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

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
