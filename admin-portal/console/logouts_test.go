package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/testdb"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// signedIn opens a console session for the dev operator and returns a
// function that sends a request with it (the form, when not nil, with the
// session's CSRF token unless it has one).
func signedIn(t *testing.T, h *harness) func(method, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	s := h.signIn(t)
	tok, csrf := s.token, s.csrf
	return func(method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		if form != nil && !form.Has("csrf_token") {
			form.Set("csrf_token", csrf)
		}
		return h.do(t, tok, method, path, form)
	}
}

// TestDeadLogoutsInConsole: the console lists dead back-channel logouts
// beside the webhooks, and redelivers one only under its own tenant.
func TestDeadLogoutsInConsole(t *testing.T) {
	h := start(t, "")
	do := signedIn(t, h)
	ctx := context.Background()
	acme, globex := newTenant(t, h.db, "Acme"), newTenant(t, h.db, "Globex")
	app, err := h.db.CreateApplication(ctx, store.Application{Name: "CRM", Public: true,
		RedirectURIs: []string{"https://crm.example/cb"}, BackchannelLogoutURI: "https://crm.example/bcl"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.EnqueueLogouts(ctx, []store.Logout{
		{SessionID: "ses_acme", TenantID: acme.ID, UserID: "usr_a", ApplicationID: app.ID},
		{SessionID: "ses_globex", TenantID: globex.ID, UserID: "usr_g", ApplicationID: app.ID},
	}); err != nil {
		t.Fatal(err)
	}
	claimed, err := h.db.ClaimLogouts(ctx, time.Now().Add(time.Second), time.Minute, 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	ids := map[string]string{}
	for _, l := range claimed {
		ids[l.TenantID] = l.ID
		if err := h.db.RecordLogout(ctx, l.ID, store.DeliveryResult{Status: store.DeliveryDead, StatusCode: 410, Error: "HTTP 410 Gone"}); err != nil {
			t.Fatal(err)
		}
	}

	if resp, body := do("GET", "/console/webhooks", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/console/logouts?status=dead"`) {
		t.Fatalf("webhooks page: %d, no link to the dead logouts:\n%s", resp.StatusCode, body)
	}
	resp, body := do("GET", "/console/logouts", nil)
	if resp.StatusCode != http.StatusOK || !contains(body, ids[acme.ID], ids[globex.ID], "HTTP 410", "Redeliver") {
		t.Fatalf("logouts page: %d\n%s", resp.StatusCode, body)
	}
	if _, body := do("GET", "/console/logouts?status=dead&tenant_id="+globex.ID, nil); strings.Contains(body, ids[acme.ID]) || !strings.Contains(body, ids[globex.ID]) {
		t.Fatalf("filtered by tenant:\n%s", body)
	}

	// Under another tenant, without the CSRF token, or unknown: refused,
	// nothing queued.
	for _, tc := range []struct {
		id   string
		form url.Values
		want int
	}{
		{ids[acme.ID], url.Values{"tenant_id": {globex.ID}}, http.StatusNotFound},
		{ids[acme.ID], url.Values{"tenant_id": {"nope"}}, http.StatusNotFound},
		{"blo_unknown", url.Values{"tenant_id": {acme.ID}}, http.StatusNotFound},
		{ids[acme.ID], url.Values{"tenant_id": {acme.ID}, "csrf_token": {"wrong"}}, http.StatusForbidden},
	} {
		if resp, body := do("POST", "/console/logouts/"+tc.id+"/redeliver", tc.form); resp.StatusCode != tc.want {
			t.Fatalf("redeliver %s %v: %d, want %d\n%s", tc.id, tc.form, resp.StatusCode, tc.want, body)
		}
	}
	if due, err := h.db.DueLogouts(ctx, time.Now().Add(time.Hour)); err != nil || due {
		t.Fatalf("a refused redeliver queued a logout: %v, %v", due, err)
	}

	resp, _ = do("POST", "/console/logouts/"+ids[acme.ID]+"/redeliver", url.Values{"tenant_id": {acme.ID}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/logouts?") {
		t.Fatalf("redeliver: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if due, err := h.db.DueLogouts(ctx, time.Now().Add(time.Second)); err != nil || !due {
		t.Fatalf("the redelivered logout is not due: %v, %v", due, err)
	}
	rows, _, err := h.db.AuditEvents(storeCtx(acme.ID), "logout.redelivered", storePage())
	if err != nil || len(rows) != 1 || rows[0].Actor.Type != "operator" || rows[0].Resource.ID != ids[acme.ID] {
		t.Fatalf("audit rows: %+v, %v", rows, err)
	}
	if resp, _ := do("POST", "/console/logouts/"+ids[acme.ID]+"/redeliver", url.Values{"tenant_id": {acme.ID}}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("redeliver a pending logout: %d", resp.StatusCode)
	}
}

// TestConsoleOutagePage stops the console's PostgreSQL (a server of the
// test's own): a signed-in operator gets the console's own HTML page,
// 503 with Retry-After, never a 500 or the API's JSON, and the console
// works again once the database is back.
func TestConsoleOutagePage(t *testing.T) {
	pg := testdb.StartPostgres(t)
	h := startWith(t, "", false, storetest.Open(t, pg.URL(), storetest.NewCipher(t)))
	do := signedIn(t, h)
	if resp, _ := do("GET", "/console/tenants", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("tenants with the database up: %d", resp.StatusCode)
	}

	pg.Stop()
	for _, path := range []string{"/console/tenants", "/console/webhooks", "/console/logouts"} {
		resp, body := do("GET", path, nil)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<html") ||
			resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s with the database down: %d Retry-After %q %s\n%.500s; want the console's 503 page with Retry-After",
				path, resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), body)
		}
	}

	pg.Start()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if resp, _ := do("GET", "/console/tenants", nil); resp.StatusCode == http.StatusOK {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("tenants after the database came back: %d", resp.StatusCode)
		}
	}
}
