package adminportal_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/store"
)

type webhookOut struct {
	ID        string   `json:"id"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	Secret    *string  `json:"secret"`
	CreatedAt string   `json:"created_at"`
}

type eventOut struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	TenantID  *string        `json:"tenant_id"`
	Data      map[string]any `json:"data"`
	CreatedAt time.Time      `json:"created_at"`
}

type deliveryOut struct {
	ID            string     `json:"id"`
	WebhookID     string     `json:"webhook_id"`
	EventID       string     `json:"event_id"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
}

func TestWebhooksAndEvents(t *testing.T) {
	eachSCIMBackend(t, func(t *testing.T, e *env) {
		var all, users webhookOut
		e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": "https://hooks.example/all", "events": []string{"*"}}).decode(t, &all)
		if !store.HasPrefix(all.ID, store.PrefixWebhook) || all.Secret == nil || !strings.HasPrefix(*all.Secret, adminportal.WebhookSecretPrefix+"_") ||
			len(all.Events) != 1 || all.Events[0] != "*" {
			t.Fatalf("created %+v", all)
		}
		e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": "http://hooks.example/users", "events": []string{"dsync.user.created", "dsync.user.deleted"}}).decode(t, &users)
		w, err := e.st.Webhook(context.Background(), all.ID)
		if err != nil || w.Secret != *all.Secret {
			t.Fatalf("stored secret differs from the one shown (%v)", err)
		}
		// The secret is shown once.
		var got map[string]any
		e.must(http.StatusOK, "GET", "/webhooks/"+all.ID, nil).decode(t, &got)
		if _, ok := got["secret"]; ok {
			t.Fatalf("GET shows the secret: %v", got)
		}
		var wl listOut[map[string]any]
		e.must(http.StatusOK, "GET", "/webhooks", nil).decode(t, &wl)
		if len(wl.Data) != 2 {
			t.Fatalf("list %+v", wl)
		}
		for _, x := range wl.Data {
			if _, ok := x["secret"]; ok {
				t.Fatalf("list shows a secret: %v", x)
			}
		}

		// Changes through the API and SCIM produce events; each webhook gets
		// a delivery of the types it subscribed to.
		ta := e.createTenant(map[string]any{"name": "Acme"})
		var d directoryOut
		e.must(http.StatusCreated, "POST", "/tenants/"+ta.ID+"/directories", map[string]any{"name": "Okta"}).decode(t, &d)
		st, body := scimCall(t, d.SCIMBaseURL, *d.BearerToken, "POST", "/Users", scimUser("ann@acme.test", "Ann"))
		if st != http.StatusCreated {
			t.Fatalf("SCIM create: %d", st)
		}
		uid := body["id"].(string)
		e.must(http.StatusOK, "PATCH", "/tenants/"+ta.ID, map[string]any{"status": "paused"})

		var evs listOut[eventOut]
		e.must(http.StatusOK, "GET", "/events", nil).decode(t, &evs)
		var types []string
		for _, ev := range evs.Data {
			types = append(types, ev.Type)
			if !store.HasPrefix(ev.ID, store.PrefixEvent) || ev.TenantID == nil || *ev.TenantID != ta.ID || ev.CreatedAt.IsZero() || ev.Data == nil {
				t.Fatalf("event %+v", ev)
			}
		}
		if strings.Join(types, ",") != "dsync.user.created,tenant.status_changed" {
			t.Fatalf("event types %v", types)
		}
		if ev := evs.Data[0]; ev.Data["id"] != uid || ev.Data["directory_id"] != d.ID {
			t.Fatalf("dsync.user.created data %v", ev.Data)
		}
		// No secret ever rides in an event.
		raw := e.call("GET", "/events", nil).body
		for _, secret := range []string{*d.BearerToken, *all.Secret, *users.Secret, e.key} {
			if strings.Contains(string(raw), secret) {
				t.Fatal("an event carries a secret")
			}
		}
		// Cursor: after the first event comes the second, and after the
		// last nothing.
		var page listOut[eventOut]
		e.must(http.StatusOK, "GET", "/events?limit=1", nil).decode(t, &page)
		if len(page.Data) != 1 || page.NextCursor == nil || *page.NextCursor != evs.Data[0].ID {
			t.Fatalf("page %+v", page)
		}
		e.must(http.StatusOK, "GET", "/events?after="+*page.NextCursor, nil).decode(t, &page)
		if len(page.Data) != 1 || page.Data[0].Type != "tenant.status_changed" || page.NextCursor != nil {
			t.Fatalf("after %+v", page)
		}
		e.must(http.StatusOK, "GET", "/events?after="+page.Data[0].ID, nil).decode(t, &page)
		if len(page.Data) != 0 || page.NextCursor != nil {
			t.Fatalf("after the last %+v", page)
		}
		for _, q := range []string{"after=" + store.NewID(store.PrefixEvent), "after=evt_x", "after=" + uid, "limit=0", "limit=1000"} {
			if r := e.call("GET", "/events?"+q, nil); r.status != http.StatusBadRequest || r.err(t).Code != "invalid_request" {
				t.Errorf("events?%s: %d %s", q, r.status, r.body)
			}
		}

		var dl listOut[deliveryOut]
		e.must(http.StatusOK, "GET", "/webhooks/"+all.ID+"/deliveries", nil).decode(t, &dl)
		if len(dl.Data) != 2 || dl.Data[0].EventID != evs.Data[0].ID || dl.Data[1].EventID != evs.Data[1].ID ||
			dl.Data[0].Status != "pending" || dl.Data[0].WebhookID != all.ID || dl.Data[0].NextAttemptAt == nil {
			t.Fatalf("deliveries of * %+v", dl)
		}
		e.must(http.StatusOK, "GET", "/webhooks/"+all.ID+"/deliveries?limit=1", nil).decode(t, &dl)
		if len(dl.Data) != 1 || dl.NextCursor == nil {
			t.Fatalf("page %+v", dl)
		}
		e.must(http.StatusOK, "GET", "/webhooks/"+all.ID+"/deliveries?after="+*dl.NextCursor, nil).decode(t, &dl)
		if len(dl.Data) != 1 || dl.Data[0].EventID != evs.Data[1].ID {
			t.Fatalf("page 2 %+v", dl)
		}
		e.must(http.StatusOK, "GET", "/webhooks/"+users.ID+"/deliveries", nil).decode(t, &dl)
		if len(dl.Data) != 1 || dl.Data[0].EventID != evs.Data[0].ID {
			t.Fatalf("deliveries of dsync.user.* %+v", dl)
		}
		for _, q := range []string{"after=dlv_x", "after=" + all.ID, "limit=-1"} {
			if r := e.call("GET", "/webhooks/"+all.ID+"/deliveries?"+q, nil); r.status != http.StatusBadRequest {
				t.Errorf("deliveries?%s: %d", q, r.status)
			}
		}
		for _, id := range []string{store.NewID(store.PrefixWebhook), "wh_x", ta.ID} {
			if r := e.call("GET", "/webhooks/"+id+"/deliveries", nil); r.status != http.StatusNotFound {
				t.Errorf("deliveries of %s: %d", id, r.status)
			}
		}
		for _, p := range []string{"/events", "/webhooks/" + all.ID + "/deliveries", "/webhooks"} {
			if r := e.call("GET", p, nil, "Authorization", ""); r.status != http.StatusUnauthorized {
				t.Errorf("GET %s without a key: %d", p, r.status)
			}
		}

		// Bad webhooks: 400, nothing stored.
		bad := map[string]any{
			"no url":          map[string]any{"events": []string{"*"}},
			"relative":        map[string]any{"url": "/hook", "events": []string{"*"}},
			"ftp":             map[string]any{"url": "ftp://hooks.example/x", "events": []string{"*"}},
			"javascript":      map[string]any{"url": "javascript:alert(1)", "events": []string{"*"}},
			"credentials":     map[string]any{"url": "https://u:p@hooks.example/x", "events": []string{"*"}},
			"fragment":        map[string]any{"url": "https://hooks.example/x#f", "events": []string{"*"}},
			"no host":         map[string]any{"url": "https:///x", "events": []string{"*"}},
			"no events":       map[string]any{"url": "https://hooks.example/x"},
			"empty events":    map[string]any{"url": "https://hooks.example/x", "events": []string{}},
			"unknown event":   map[string]any{"url": "https://hooks.example/x", "events": []string{"dsync.user.exploded"}},
			"case":            map[string]any{"url": "https://hooks.example/x", "events": []string{"DSYNC.USER.CREATED"}},
			"star and more":   map[string]any{"url": "https://hooks.example/x", "events": []string{"*", "session.revoked"}},
			"duplicate":       map[string]any{"url": "https://hooks.example/x", "events": []string{"session.revoked", "session.revoked"}},
			"secret supplied": map[string]any{"url": "https://hooks.example/x", "events": []string{"*"}, "secret": "mine"},
			"events type":     map[string]any{"url": "https://hooks.example/x", "events": "*"},
		}
		for name, b := range bad {
			if r := e.call("POST", "/webhooks", b); r.status != http.StatusBadRequest || r.err(t).Code != "invalid_request" {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
		if ws, _ := e.st.Webhooks(context.Background()); len(ws) != 2 {
			t.Fatalf("refused requests stored webhooks: %d", len(ws))
		}
	})
}
