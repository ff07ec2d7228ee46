package portal

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/store"
)

func TestCreateLinkChecksItsArguments(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "")
	tests := []struct {
		intent, ret, field string
	}{
		{"sso", "", ""},
		{"audit_logs", "https://app.example/back", ""},
		{"sso", "http://localhost:3000/back", ""},
		{"sso", "http://127.0.0.1:3000/back", ""},
		{"admin", "", "intent"},
		{"sso", "http://app.example/back", "return_url"},
		{"sso", "javascript:alert(1)", "return_url"},
		{"sso", "/relative", "return_url"},
		// The bound is 2048 characters, inclusive.
		{"sso", "https://app.example/" + strings.Repeat("a", 2048-len("https://app.example/")), ""},
		{"sso", "https://app.example/" + strings.Repeat("a", 2049-len("https://app.example/")), "return_url"},
		{"sso", "http://app.localhost/back", ""},
		{"sso", "http://[::1]:3000/back", ""},
		{"sso", "https://user:pw@app.example/back", "return_url"},
		{"sso", "http://localhost.app.example/back", "return_url"},
	}
	for _, tc := range tests {
		u, exp, err := h.portal.CreateLink(ctx, tc.intent, tc.ret)
		if tc.field == "" {
			if err != nil || !strings.HasPrefix(u, h.url+"/portal/link/idb_pl_") || exp.Sub(h.clock()) > 5*time.Minute || exp.Before(h.clock().Add(4*time.Minute)) {
				t.Errorf("CreateLink(%q, %q) = %q, %v, %v", tc.intent, tc.ret, u, exp, err)
			}
			continue
		}
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != tc.field || !strings.HasPrefix(fe.Error(), tc.field+": ") {
			t.Errorf("CreateLink(%q, %q) error = %v, want one naming %s", tc.intent, tc.ret, err, tc.field)
		}
	}
}

func TestLinkOpensOnceIntoAScopedSession(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	link := h.link(ctx, store.IntentSSO)

	// A chat or mail program fetching it for a preview (by its name, or
	// a prefetch) gets its page (a HEAD is refused: cmd/idbroker's
	// head_test.go) and spends nothing: the admin
	// who clicks it later still gets in.
	for _, prev := range []struct{ method, header, value string }{
		{"GET", "User-Agent", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
		{"GET", "User-Agent", "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com"},
		{"GET", "User-Agent", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"},
		{"GET", "User-Agent", "facebookexternalhit/1.1"},
		{"GET", "Sec-Purpose", "prefetch;prerender"},
	} {
		req, _ := http.NewRequest(prev.method, link, nil)
		if prev.header != "" {
			req.Header.Set(prev.header, prev.value)
		}
		resp, err := h.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 ||
			prev.method == "GET" && (!strings.Contains(string(body), "Set up single sign-on") || !strings.Contains(string(body), `id="open-link"`)) {
			t.Fatalf("%s %s: %s: link page = %d, cookies %v\n%s", prev.method, prev.header, prev.value, resp.StatusCode, resp.Cookies(), body)
		}
	}
	// The admin's browser opens it (a GET, as the link in an email is
	// opened); the Continue button of a previewed page does the same.
	c := h.client()
	resp, _ := get(t, c, link)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/sso" {
		t.Fatalf("open = %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := h.continueLink(h.client(), h.link(ctx, store.IntentSSO)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Continue = %d", resp.StatusCode)
	}
	var ck *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == sessionCookie {
			ck = k
		}
	}
	if ck == nil || !ck.HttpOnly || ck.Path != "/portal" || ck.SameSite != http.SameSiteLaxMode || ck.MaxAge != 3600 || ck.Secure {
		t.Fatalf("session cookie %+v", ck)
	}
	if strings.Contains(ck.Value, strings.TrimPrefix(link, h.url+"/portal/link/")) {
		t.Fatal("the session cookie carries the link token")
	}
	resp, body := get(t, c, h.url+"/portal/sso")
	if resp.StatusCode != 200 || !strings.Contains(body, "Acme HR") || !strings.Contains(body, "Acme") || !strings.Contains(body, `href="https://app.example/settings"`) {
		t.Fatalf("sso page = %d\n%s", resp.StatusCode, body)
	}

	// Used: a second browser opening the same link is told so, and so is
	// the button of a page shown before the first opened it.
	resp, body = get(t, h.client(), link)
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "already been used") || !strings.Contains(body, "Ask Acme HR for a new setup link") {
		t.Fatalf("reused link = %d\n%s", resp.StatusCode, body)
	}
	if resp := h.continueLink(h.client(), link); resp.StatusCode != http.StatusGone {
		t.Fatalf("Continue on a used link = %d", resp.StatusCode)
	}
	// Expired: opened after five minutes.
	late := h.link(ctx, store.IntentDSync)
	h.advance(5*time.Minute + time.Second)
	resp, body = get(t, h.client(), late)
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "has expired") || !strings.Contains(body, "Ask Acme HR for a new setup link") {
		t.Fatalf("expired link = %d\n%s", resp.StatusCode, body)
	}
	if resp := h.continueLink(h.client(), late); resp.StatusCode != http.StatusGone {
		t.Fatalf("Continue on an expired link = %d", resp.StatusCode)
	}
	// Unknown.
	for _, bad := range []string{"idb_pl_" + strings.Repeat("x", 43), "nonsense"} {
		resp, body = get(t, h.client(), h.url+"/portal/link/"+bad)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "not valid") {
			t.Fatalf("unknown link %s = %d\n%s", bad, resp.StatusCode, body)
		}
		if resp := h.continueLink(h.client(), h.url+"/portal/link/"+bad); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("Continue on unknown link %s = %d", bad, resp.StatusCode)
		}
	}
	// The session ends after an hour.
	h.advance(time.Hour)
	resp, body = get(t, c, h.url+"/portal/sso")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "session has ended") {
		t.Fatalf("after an hour = %d\n%s", resp.StatusCode, body)
	}
}

func TestSessionIsBoundToItsIntent(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentAuditLogs))
	for _, path := range []string{"/portal/sso", "/portal/sso/new", "/portal/dsync", "/portal/domains"} {
		if resp, _ := get(t, c, h.url+path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("audit_logs session GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestEveryPageSendsTheCSP(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentSSO))
	for _, path := range []string{"/portal/sso", "/portal/sso/new", "/portal/domains", "/portal/logs", "/portal/nowhere", "/portal/link/bad", "/portal/expired"} {
		resp, _ := get(t, c, h.url+path)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s (%d): CSP %q", path, resp.StatusCode, csp)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: content type %q", path, resp.Header.Get("Content-Type"))
		}
	}
}

// TestEveryAnswerSendsTheHeaders: the portal's redirects (home to the
// intent's page, a saved form to the next page, a test login begun) carry
// the same CSP and framing, caching and referrer headers as its pages.
func TestEveryAnswerSendsTheHeaders(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentSSO))
	_, page := get(t, c, h.url+"/portal/domains")
	check := func(what string, resp *http.Response) {
		t.Helper()
		hd := resp.Header
		if csp := hd.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") ||
			hd.Get("X-Frame-Options") != "DENY" || hd.Get("Cache-Control") != "no-store" || hd.Get("X-Content-Type-Options") != "nosniff" ||
			hd.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s (%d): headers %v", what, resp.StatusCode, hd)
		}
	}
	resp, _ := get(t, c, h.url+"/portal")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /portal = %d, want a redirect", resp.StatusCode)
	}
	check("GET /portal", resp)
	resp, _ = post(t, c, h.url+"/portal/domains", url.Values{"csrf_token": {csrfOf(t, page)}, "domain": {"acme.test"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add a domain = %d, want a redirect", resp.StatusCode)
	}
	check("POST /portal/domains", resp)
	resp, _ = post(t, c, h.url+"/portal/sso/new", url.Values{"csrf_token": {csrfOf(t, page)}, "idp": {"okta"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create a connection = %d, want a redirect", resp.StatusCode)
	}
	check("POST /portal/sso/new", resp)
}

func TestPostWithoutCSRFIsRefused(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentSSO))
	_, page := get(t, c, h.url+"/portal/sso/new")
	token := csrfOf(t, page)

	for _, form := range []url.Values{{"idp": {"okta"}}, {"idp": {"okta"}, "csrf_token": {"wrong"}}} {
		resp, body := post(t, c, h.url+"/portal/sso/new", form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "security token") {
			t.Fatalf("POST %v = %d\n%s", form, resp.StatusCode, body)
		}
	}
	if conns, _ := h.store.Connections(ctx); len(conns) != 0 {
		t.Fatalf("a refused POST created %d connections", len(conns))
	}
	resp, _ := post(t, c, h.url+"/portal/sso/new", url.Values{"idp": {"okta"}, "csrf_token": {token}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST with the token = %d", resp.StatusCode)
	}
}

func TestAnotherTenantsIDsAreNotFound(t *testing.T) {
	h := newHarness(t)
	acme := h.tenant("Acme", "acme.example")
	globex := h.tenant("Globex", "globex.example")
	conn, err := h.reg.CreateConnection(globex, saml.Name, "Globex Okta", connectionsSettingsNone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := h.open(h.link(acme, store.IntentSSO))
	for _, path := range []string{"/portal/sso/" + conn.ID, "/portal/sso/" + conn.ID + "/setup", "/portal/sso/" + conn.ID + "/test/result", "/portal/sso/" + conn.ID + "/metadata.xml", "/portal/sso/conn_nope"} {
		if resp, _ := get(t, c, h.url+path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
	_, page := get(t, c, h.url+"/portal/sso/new")
	token := csrfOf(t, page)
	for _, path := range []string{"/portal/sso/" + conn.ID + "/activate", "/portal/sso/" + conn.ID + "/delete"} {
		if resp, _ := post(t, c, h.url+path, url.Values{"csrf_token": {token}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s = %d, want 404", path, resp.StatusCode)
		}
	}
	if _, err := h.store.Connection(globex, conn.ID); err != nil {
		t.Fatalf("the other tenant's connection: %v", err)
	}
}

// TestSignOutEndsTheSession: signing out ends the session; opening the
// link and signing out are both in the tenant's audit chain, by the
// session's link (a used link opened again adds nothing).
func TestSignOutEndsTheSession(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	link := h.link(ctx, store.IntentSSO)
	c := h.open(link)
	if resp, _ := get(t, h.client(), link); resp.StatusCode != http.StatusGone {
		t.Fatalf("reused link = %d", resp.StatusCode)
	}
	_, page := get(t, c, h.url+"/portal/sso")
	if resp, body := post(t, c, h.url+"/portal/signout", url.Values{"csrf_token": {csrfOf(t, page)}}); resp.StatusCode != 200 || !strings.Contains(body, "signed out") {
		t.Fatalf("sign out = %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := get(t, c, h.url+"/portal/sso"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after sign-out = %d", resp.StatusCode)
	}
	for _, action := range []string{"portal_session.started", "portal_session.ended"} {
		rows, _, err := h.store.AuditEvents(ctx, action, store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].Actor.Type != "tenant_admin" || !strings.HasPrefix(rows[0].Actor.ID, "pl_") ||
			rows[0].Resource.ID != rows[0].Actor.ID || rows[0].RequestID == "" {
			t.Errorf("%s audit rows %+v, want one by the session's link", action, rows)
		}
	}
}

func TestAnotherTenantsDirectoriesAndDomainsAreNotFound(t *testing.T) {
	h := newHarness(t)
	acme := h.tenant("Acme", "acme.example")
	globex := h.tenant("Globex", "globex.example")
	dir, err := h.store.CreateDirectory(globex, store.Directory{Name: "Globex Okta", TokenHash: []byte("h")})
	if err != nil {
		t.Fatal(err)
	}
	dom, err := h.store.AddDomain(globex, store.Domain{Domain: "sales.globex.example", VerificationToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	dsync := h.open(h.link(acme, store.IntentDSync))
	if resp, _ := get(t, dsync, h.url+"/portal/dsync/"+dir.ID); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET another tenant's directory = %d", resp.StatusCode)
	}
	_, page := get(t, dsync, h.url+"/portal/dsync")
	if resp, _ := post(t, dsync, h.url+"/portal/dsync/"+dir.ID+"/token", url.Values{"csrf_token": {csrfOf(t, page)}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("rotate another tenant's token = %d", resp.StatusCode)
	}
	doms := h.open(h.link(acme, store.IntentDomainVerification))
	_, page = get(t, doms, h.url+"/portal/domains")
	if strings.Contains(page, "sales.globex.example") {
		t.Error("another tenant's domain is listed")
	}
	for _, path := range []string{"/verify", "/delete"} {
		if resp, _ := post(t, doms, h.url+"/portal/domains/"+dom.ID+path, url.Values{"csrf_token": {csrfOf(t, page)}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s on another tenant's domain = %d", path, resp.StatusCode)
		}
	}
	if _, err := h.store.Domain(globex, dom.ID); err != nil {
		t.Fatalf("the other tenant's domain: %v", err)
	}
}

func TestLogsExportCSV(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentDomainVerification))
	_, page := get(t, c, h.url+"/portal/domains")
	post(t, c, h.url+"/portal/domains", url.Values{"csrf_token": {csrfOf(t, page)}, "domain": {"=cmd.acme.example"}})
	post(t, c, h.url+"/portal/domains", url.Values{"csrf_token": {csrfOf(t, page)}, "domain": {"eu.acme.example"}})
	resp, body := get(t, c, h.url+"/portal/logs?tab=audit&format=csv")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(body, "time,actor,action,target,outcome,detail\n") || !strings.Contains(body, "domain.added,domain eu.acme.example") {
		t.Fatalf("CSV %d %q:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestPausedTenantsPageSaysWhatHelps: a paused tenant's link, or its
// session once the tenant is paused, answers 403 with a page that says so
// and sends the admin to the vendor, not for a new link: none is made
// for a paused tenant, so "ask for a new setup link" is a dead end.
func TestPausedTenantsPageSaysWhatHelps(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	link := h.link(ctx, store.IntentSSO)
	c := h.open(h.link(ctx, store.IntentSSO))
	paused := store.TenantPaused
	if _, err := h.store.UpdateTenant(ctx, store.TenantUpdate{Status: &paused}); err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func() (*http.Response, string){
		"link":    func() (*http.Response, string) { return get(t, h.client(), link) },
		"session": func() (*http.Response, string) { return get(t, c, h.url+"/portal/sso") },
	} {
		resp, body := open()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not active") {
			t.Fatalf("%s of a paused tenant = %d\n%s", name, resp.StatusCode, body)
		}
		if strings.Contains(body, "new setup link") || !strings.Contains(body, "Contact Acme HR") {
			t.Errorf("%s of a paused tenant does not send the admin to the vendor:\n%s", name, body)
		}
	}
}

// TestLeavingServiceEndsPortalSessionsAndLinks: pausing (and so
// cancelling, which follows a pause) or deleting a tenant ends the portal
// sessions its admins have open and spends the links not yet opened, as
// it ends its users' sessions; a resume or a restore brings back the
// tenant, not them (the vendor sends a new link). Another tenant's
// session is untouched.
func TestLeavingServiceEndsPortalSessionsAndLinks(t *testing.T) {
	status := func(s store.TenantStatus) func(h *harness, ctx context.Context) error {
		return func(h *harness, ctx context.Context) error {
			_, err := h.store.UpdateTenant(ctx, store.TenantUpdate{Status: &s})
			return err
		}
	}
	del := func(h *harness, ctx context.Context) error { _, err := h.store.SoftDeleteTenant(ctx); return err }
	restore := func(h *harness, ctx context.Context) error { _, err := h.store.RestoreTenant(ctx); return err }
	for _, tc := range []struct {
		name string
		out  []func(h *harness, ctx context.Context) error
		back []func(h *harness, ctx context.Context) error
	}{
		{"delete, restore", []func(*harness, context.Context) error{del}, []func(*harness, context.Context) error{restore}},
		{"pause, resume", []func(*harness, context.Context) error{status(store.TenantPaused)}, []func(*harness, context.Context) error{status(store.TenantActive)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := h.tenant("Acme", "acme.example")
			otherCtx := h.tenant("Other", "other.example")
			open := h.open(h.link(ctx, store.IntentSSO))
			unopened := h.link(ctx, store.IntentDSync)
			other := h.open(h.link(otherCtx, store.IntentSSO))
			for _, step := range tc.out {
				if err := step(h, ctx); err != nil {
					t.Fatal(err)
				}
			}
			if resp, _ := get(t, open, h.url+"/portal/sso"); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("session of a tenant out of service = %d, want 403", resp.StatusCode)
			}
			for _, step := range tc.back {
				if err := step(h, ctx); err != nil {
					t.Fatal(err)
				}
			}
			// The store dates the change on the real clock, which the
			// portal's (standing still since the harness started)
			// catches up with.
			h.advance(time.Since(h.clock()) + time.Second)
			if resp, body := get(t, open, h.url+"/portal/sso"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "session has ended") {
				t.Fatalf("session opened before, after coming back = %d\n%s", resp.StatusCode, body)
			}
			if resp, _ := get(t, h.client(), unopened); resp.StatusCode != http.StatusGone {
				t.Fatalf("link issued before, opened after coming back = %d, want 410", resp.StatusCode)
			}
			if resp, _ := get(t, other, h.url+"/portal/sso"); resp.StatusCode != http.StatusOK {
				t.Fatalf("another tenant's session = %d, want 200", resp.StatusCode)
			}
			// A link issued after opens.
			fresh := h.open(h.link(ctx, store.IntentSSO))
			if resp, _ := get(t, fresh, h.url+"/portal/sso"); resp.StatusCode != http.StatusOK {
				t.Fatalf("a new link after coming back = %d, want 200", resp.StatusCode)
			}
		})
	}
}
