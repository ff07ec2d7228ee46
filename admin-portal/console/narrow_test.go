package console_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/store"
)

// TestPagesFitAPhoneInBrowser: at a phone's 375 pixels every console page
// with a table — tenants, a tenant (its SLO table has seven columns),
// events and audit with long ids and data, webhooks, logouts, the API
// reference — keeps to the screen's width: a wide table scrolls inside
// its own box. Tables were bare, and the whole page scrolled sideways,
// the header and navigation with it.
func TestPagesFitAPhoneInBrowser(t *testing.T) {
	h := start(t, "")
	tn := newTenant(t, h.db, "Initech Corporation International Holdings")
	ctx := storeCtx(tn.ID)
	seedAudit(t, h, tn.ID, 3, time.Now().Add(-time.Hour))
	data, _ := json.Marshal(map[string]any{"id": "usr_01M97H0GDX3QPFYCNQG0FFN9RC", "email": "someone.with.a.long.name@initech-international.example", "groups": []string{"Engineering", "Finance"}})
	for range 3 {
		if _, err := h.db.AppendEvent(ctx, store.Event{Type: "dsync.user.created", TenantID: tn.ID, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := h.db.CreateWebhook(ctx, store.Webhook{URL: "https://hooks.initech-international.example/idbroker/events/receiver", Events: []string{"*"}, Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	tok := operatorSession(t, h)

	tab := browsertest.NewTab(t, browsertest.New(t))
	if _, err := chromedp.Call(tab, network.SetCookie, network.SetCookieParams{Name: console.SessionCookie, Value: tok, URL: h.url + "/console"}); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.Do(tab, chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/console/tenants", "/console/tenants/" + tn.ID, "/console/events", "/console/audit?tenant_id=" + tn.ID,
		"/console/webhooks", "/console/webhooks/" + w.ID + "?status=", "/console/logouts?status=", "/console/api"} {
		if err := browsertest.Do(tab, chromedp.Navigate(h.url+path), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got, err := chromedp.Run(tab, chromedp.Evaluate[string](`(() => {
			const w = document.documentElement.clientWidth;
			if (document.querySelectorAll("table").length === 0) return "no table on the page";
			if (document.documentElement.scrollWidth > w) return "the page scrolls sideways: " + document.documentElement.scrollWidth + "px in " + w + "px";
			return "";
		})()`))
		if err != nil || got != "" {
			t.Errorf("%s at 375px: %s %v", path, got, err)
		}
	}
}
