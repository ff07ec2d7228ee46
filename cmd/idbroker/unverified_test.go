package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUnverifiedCallbacksWriteNothing posts 200 junk answers to the SAML
// ACS and the OIDC callback (made-up connections, and the demo SAML
// connection with an unparseable response): none may write an event or
// reach a webhook, each is counted in /metrics, and the per-address
// callback limit refuses the rest of a flood.
func TestUnverifiedCallbacksWriteNothing(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		types []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type string `json:"type"`
		}
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		types = append(types, ev.Type)
		mu.Unlock()
	}))
	defer hook.Close()

	b := startBroker(t, map[string]string{
		envDatabaseURL:       "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envBootstrapAPIKey:   e2eBootstrapKey,
		envRateLimitCallback: "200/1h",
	}, "--dev")
	m := regexp.MustCompile(`connection_id=(conn_[A-Za-z0-9]+)`).FindStringSubmatch(b.output.String())
	if m == nil {
		t.Fatalf("--dev logged no demo connection id:\n%s", b.output)
	}
	realConn := m[1]
	var wh struct{ ID string }
	if code := b.do("POST", "/api/v1/webhooks", e2eBootstrapKey, map[string]any{"url": hook.URL, "events": []string{"*"}}, &wh); code != http.StatusCreated {
		t.Fatalf("create webhook: %d", code)
	}

	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, path string, form url.Values) int {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, b.base+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s %s: %d answered as %q, want the HTML page", method, path, res.StatusCode, ct)
		}
		return res.StatusCode
	}
	junk := func(i int) int {
		switch i % 4 {
		case 0:
			return send("POST", fmt.Sprintf("/sso/saml/conn_madeup%d/acs", i), url.Values{"SAMLResponse": {"junk"}, "RelayState": {"x"}})
		case 1:
			return send("POST", "/sso/saml/"+realConn+"/acs", url.Values{"SAMLResponse": {"%%% not base64"}})
		case 2:
			return send("POST", "/sso/saml/"+realConn+"/acs", url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte("<not-saml"))}})
		default:
			return send("GET", fmt.Sprintf("/sso/oidc/conn_madeup%d/callback?state=abc&code=def", i), nil)
		}
	}
	for i := range 200 {
		if code := junk(i); code != http.StatusBadRequest && code != http.StatusNotFound {
			t.Fatalf("junk %d: %d, want 400 or 404", i, code)
		}
	}
	// The per-address budget (200 per hour here) is spent.
	if code := junk(0); code != http.StatusTooManyRequests {
		t.Fatalf("junk 201: %d, want 429", code)
	}

	var events struct {
		Data []struct {
			Type     string `json:"type"`
			TenantID string `json:"tenant_id"`
		} `json:"data"`
	}
	if code := b.do("GET", "/api/v1/events?limit=100", e2eBootstrapKey, nil, &events); code != http.StatusOK {
		t.Fatalf("GET /api/v1/events: %d", code)
	}
	for _, e := range events.Data {
		if e.Type == "authentication.failed" {
			t.Fatalf("junk wrote an event: %+v", e)
		}
	}
	// Nor an audit row, in any tenant (the demo tenant owns realConn).
	var tenants struct{ Data []struct{ ID string } }
	if code := b.do("GET", "/api/v1/tenants?limit=100", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) == 0 {
		t.Fatalf("GET /api/v1/tenants: %d, %d tenants", code, len(tenants.Data))
	}
	for _, tn := range tenants.Data {
		var rows struct{ Data []json.RawMessage }
		if code := b.do("GET", "/api/v1/audit_events?tenant_id="+tn.ID+"&action=authentication.failed", e2eBootstrapKey, nil, &rows); code != http.StatusOK {
			t.Fatalf("GET audit_events of %s: %d", tn.ID, code)
		}
		if len(rows.Data) != 0 {
			t.Fatalf("junk wrote audit rows in %s: %s", tn.ID, rows.Data[0])
		}
	}

	// A real event reaches the webhook, so the dispatcher ran: the junk
	// delivered nothing before it.
	var tn struct{ ID string }
	if code := b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Marker"}, &tn); code != http.StatusCreated {
		t.Fatalf("create tenant: %d", code)
	}
	if code := b.do("PATCH", "/api/v1/tenants/"+tn.ID, e2eBootstrapKey, map[string]any{"status": "paused"}, nil); code != http.StatusOK {
		t.Fatalf("pause tenant: %d", code)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		got := append([]string(nil), types...)
		mu.Unlock()
		if len(got) > 0 {
			for _, typ := range got {
				if typ != "tenant.status_changed" {
					t.Fatalf("webhook received %q: junk reached it (all: %v)", typ, got)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the webhook received nothing, not even the marker event")
		}
	}

	res, err := b.client.Get(b.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`idbroker_sso_unverified_total{reason="unknown_connection"} 100`,
		`idbroker_sso_unverified_total{reason="malformed"} 100`,
		`idbroker_rate_limited_total{surface="sso_callback"} 1`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(b.output.String(), "unverifiable upstream answer refused") {
		t.Error("the refusals were not logged")
	}
}

// TestInactiveTenantCallbacks: a paused tenant's ACS is as closed to junk
// as an active one's. Junk posted there was refused for the tenant's state
// before it was read, and each post wrote an authentication.failed event
// and an audit row (tenant_inactive), which anyone could flood. And a real
// sign-in the pause caught at the IdP is recorded naming the application
// it was for, which the early refusal left empty.
func TestInactiveTenantCallbacks(t *testing.T) {
	t.Parallel()
	b := startBroker(t, map[string]string{
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envBootstrapAPIKey: e2eBootstrapKey,
	}, "--dev")
	out := b.output.String()
	field := func(name string) string {
		m := regexp.MustCompile(name + `=(\w+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("--dev logged no %s:\n%s", name, out)
		}
		return m[1]
	}
	tenant, conn, client := field("tenant_id"), field("connection_id"), field("client_id")

	// Alice is at the IdP when the tenant is paused.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	acs, form := devIdPAnswer(t, c, b, nil)
	if code := b.do("PATCH", "/api/v1/tenants/"+tenant, e2eBootstrapKey, map[string]any{"status": "paused"}, nil); code != http.StatusOK {
		t.Fatalf("pause: %d", code)
	}
	failures := func() []map[string]any {
		t.Helper()
		var evs struct {
			Data []struct {
				Data map[string]any `json:"data"`
			} `json:"data"`
		}
		if code := b.do("GET", "/api/v1/events?events=authentication.failed&limit=100", e2eBootstrapKey, nil, &evs); code != http.StatusOK {
			t.Fatalf("GET /api/v1/events: %d", code)
		}
		var out []map[string]any
		for _, e := range evs.Data {
			out = append(out, e.Data)
		}
		return out
	}
	post := func(form url.Values) int {
		t.Helper()
		resp, err := c.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i, junk := range []url.Values{
		{"SAMLResponse": {"%%% not base64"}},
		{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte("<not-saml"))}, "RelayState": {"x"}},
	} {
		if code := post(junk); code != http.StatusBadRequest {
			t.Errorf("junk %d at the paused tenant's ACS: %d, want 400 as for an active tenant", i, code)
		}
	}
	if f := failures(); len(f) != 0 {
		t.Fatalf("junk at a paused tenant's ACS wrote authentication.failed: %v", f)
	}
	var rows struct{ Data []json.RawMessage }
	if code := b.do("GET", "/api/v1/audit_events?tenant_id="+tenant+"&action=authentication.failed", e2eBootstrapKey, nil, &rows); code != http.StatusOK || len(rows.Data) != 0 {
		t.Fatalf("audit rows of the junk: %d, %d rows", code, len(rows.Data))
	}

	// Alice's real answer arrives: refused, and recorded for the admin.
	if code := post(form); code != http.StatusForbidden {
		t.Fatalf("a real sign-in into a paused tenant: %d, want 403", code)
	}
	f := failures()
	if len(f) != 1 || f[0]["reason_code"] != "tenant_inactive" || f[0]["client_id"] != client || f[0]["connection_id"] != conn {
		t.Fatalf("authentication.failed of the refused sign-in: %v; want one, tenant_inactive, client_id %s", f, client)
	}

	// The same for an inactive connection of an active tenant.
	if code := b.do("PATCH", "/api/v1/tenants/"+tenant, e2eBootstrapKey, map[string]any{"status": "active"}, nil); code != http.StatusOK {
		t.Fatalf("resume: %d", code)
	}
	if code := b.do("PATCH", "/api/v1/connections/"+conn, e2eBootstrapKey, map[string]any{"status": "inactive"}, nil); code != http.StatusOK {
		t.Fatalf("deactivate the connection: %d", code)
	}
	if code := post(url.Values{"SAMLResponse": {"%%% not base64"}}); code != http.StatusBadRequest {
		t.Errorf("junk at an inactive connection's ACS: %d, want 400", code)
	}
	if f := failures(); len(f) != 1 {
		t.Fatalf("junk at an inactive connection's ACS wrote authentication.failed: %v", f[1:])
	}
	// And for a draft connection, whose ACS URL is public before it can
	// check anything.
	var draft struct {
		SAML struct {
			ACSURL string `json:"acs_url"`
		} `json:"saml"`
	}
	if code := b.do("POST", "/api/v1/tenants/"+tenant+"/connections", e2eBootstrapKey, map[string]any{"type": "saml", "name": "Draft"}, &draft); code != http.StatusCreated || draft.SAML.ACSURL == "" {
		t.Fatalf("create a draft connection: %d %+v", code, draft)
	}
	acs = draft.SAML.ACSURL
	if code := post(url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte("<samlp:Response/>"))}}); code != http.StatusBadRequest {
		t.Errorf("junk at a draft connection's ACS: %d, want 400", code)
	}
	if f := failures(); len(f) != 1 {
		t.Fatalf("junk at a draft connection's ACS wrote authentication.failed: %v", f[1:])
	}
	res, err := b.client.Get(b.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := `idbroker_sso_unverified_total{reason="incomplete_connection"} 1`; !strings.Contains(string(raw), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}
