package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestSignedOutRoutes: every console page without a session sends a
// browser to sign-in and refuses anything else with 401, in HTML, under
// the console's CSP; a POST without its CSRF token is 403 even with a
// session's cookie missing.
func TestSignedOutRoutes(t *testing.T) {
	h := start(t, "")
	tn := newTenant(t, h.db, "Acme")
	gets := []string{"/console", "/console/tenants", "/console/tenants/" + tn.ID, "/console/tenants/" + tn.ID + "/status?to=paused",
		"/console/events", "/console/audit", "/console/webhooks", "/console/webhooks/wh_x", "/console/nope"}
	for _, p := range gets {
		resp, err := client().Get(h.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/signin?next=") {
			t.Errorf("GET %s = %d → %q, want 303 to sign-in", p, resp.StatusCode, loc)
		}
	}
	posts := []string{"/console/signout", "/console/tenants/" + tn.ID + "/status", "/console/tenants/" + tn.ID + "/portal_link",
		"/console/deliveries/dlv_x/redeliver"}
	for _, p := range posts {
		resp, err := client().PostForm(h.url+p, url.Values{"status": {"paused"}, "confirm": {"yes"}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("POST %s = %d %s, want 401 HTML", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !strings.Contains(string(body), "Sign in") {
			t.Errorf("POST %s: the page does not say to sign in:\n%s", p, body)
		}
	}
	// The tenant was not paused by any of that.
	if got, _ := h.db.Tenant(storeCtx(tn.ID)); got.Status != "active" {
		t.Fatalf("tenant status = %s", got.Status)
	}

	// Signed-out forms: no CSRF cookie and field, 403.
	resp, err := client().PostForm(h.url+"/console/signin", url.Values{"email": {"a@b.c"}, "password": {"x"}, "code": {"123456"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without CSRF = %d, want 403", resp.StatusCode)
	}

	resp, err = client().Get(h.url + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !contains(csp, "script-src 'self'", "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP = %q", csp)
	}
	ck := cookieNamed(resp, "idb_console_csrf")
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console" || ck.Secure {
		t.Errorf("CSRF cookie over http = %+v", ck)
	}
	resp, err = client().Get(h.url + "/console/enrol/idb_enrol_unknown")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "operator create") {
		t.Errorf("unknown enrolment link = %d:\n%s", resp.StatusCode, body)
	}
}

// TestCookiesSecureOnHTTPS: with an https issuer every console cookie is
// Secure, HttpOnly, SameSite=Strict and __Host- prefixed; the session's
// too (checked after a real enrolment in the browser test). Only the
// prefixed cookies count: a bare-named session or CSRF cookie, which a
// sibling subdomain or a plain http answer can plant, signs no one in and
// passes no form.
func TestCookiesSecureOnHTTPS(t *testing.T) {
	h := start(t, "https://idp.example.com")
	resp, err := client().Get(h.url + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ck := cookieNamed(resp, "__Host-idb_console_csrf")
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" {
		t.Fatalf("CSRF cookie over https issuer = %+v", ck)
	}
	if bare := cookieNamed(resp, "idb_console_csrf"); bare != nil {
		t.Fatalf("bare CSRF cookie set beside the prefixed one: %+v", bare)
	}

	// A planted bare CSRF cookie with a matching form field: refused as a
	// form without its token (login CSRF needs exactly this pair).
	planted := secrets.NewToken("")
	req, _ := http.NewRequest("POST", h.url+"/console/signin", strings.NewReader(url.Values{"csrf_token": {planted}, "email": {"x@example.com"}, "password": {"p"}, "code": {"123456"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "idb_console_csrf", Value: planted})
	resp, err = client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in with a planted bare CSRF cookie = %d, want 403", resp.StatusCode)
	}
	// The genuine pair passes the CSRF check (and fails on the password).
	req, _ = http.NewRequest("POST", h.url+"/console/signin", strings.NewReader(url.Values{"csrf_token": {csrfField.FindStringSubmatch(string(body))[1]}, "email": {"x@example.com"}, "password": {"p"}, "code": {"123456"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	resp, err = client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusForbidden {
		t.Errorf("sign-in with the prefixed CSRF cookie = %d: the genuine cookie is not read", resp.StatusCode)
	}

	// A live session's token under the bare name is no session.
	s := h.signIn(t)
	if resp, _ := h.get(t, s.token, "/console/tenants"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("bare-named session cookie = %d, want 303 to sign-in", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", h.url+"/console/tenants", nil)
	req.AddCookie(&http.Cookie{Name: console.SecureSessionCookie, Value: s.token})
	resp, err = client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("prefixed session cookie = %d, want 200", resp.StatusCode)
	}
}

// TestCreateOperatorLink: the CLI's link is one-time and under the issuer;
// creating the same email again (any case) makes no second operator (it
// gives the pending one a new link: TestPendingOperatorGetsANewLink).
func TestCreateOperatorLink(t *testing.T) {
	h := start(t, "")
	ctx := context.Background()
	link, op, err := console.CreateOperator(ctx, h.db, "https://id.example.com/", "Ops@Vendor.example", "cli")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, "https://id.example.com/console/enrol/idb_enrol_") || op.Status != "pending" {
		t.Fatalf("link %q, operator %+v", link, op)
	}
	if _, again, err := console.CreateOperator(ctx, h.db, "https://id.example.com", "ops@vendor.example", "cli"); err != nil || again.ID != op.ID {
		t.Fatalf("the same email again = %+v, %v: want the same operator", again, err)
	}
	if ops, err := h.db.ListOperators(ctx); err != nil || len(ops) != 1 {
		t.Fatalf("operators %+v, %v: want one", ops, err)
	}
	if _, _, err := console.CreateOperator(ctx, h.db, "https://id.example.com", "not an email", "cli"); err == nil {
		t.Fatal("an operator without an email was created")
	}
	rows, _, err := h.db.OperatorAudit(ctx, "operator.created", storePage())
	if err != nil || len(rows) != 1 || rows[0].Actor.Type != "cli" {
		t.Fatalf("audit: %+v %v", rows, err)
	}
	if _, err := console.DisableOperator(ctx, h.db, "OPS@vendor.example", "cli"); err != nil {
		t.Fatal(err)
	}
}

// TestSessionRules: with a session, a POST without its CSRF token is 403
// and changes nothing; a session idle past the timeout ends (and is
// deleted), sending the browser back to sign-in.
func TestSessionRules(t *testing.T) {
	h := start(t, "")
	ctx := context.Background()
	s := h.signIn(t)
	tok := s.token
	tn := newTenant(t, h.db, "Acme")
	do := func(method, path string, form url.Values) *http.Response {
		t.Helper()
		resp, _ := h.do(t, tok, method, path, form)
		return resp
	}
	if resp := do("GET", "/console/tenants", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed-in GET = %d", resp.StatusCode)
	}
	for _, form := range []url.Values{
		{"status": {"paused"}, "confirm": {"yes"}},
		{"status": {"paused"}, "confirm": {"yes"}, "csrf_token": {"wrong"}},
	} {
		if resp := do("POST", "/console/tenants/"+tn.ID+"/status", form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST with csrf %q = %d, want 403", form.Get("csrf_token"), resp.StatusCode)
		}
	}
	if got, _ := h.db.Tenant(storeCtx(tn.ID)); got.Status != store.TenantActive {
		t.Fatalf("tenant %s after refused POSTs", got.Status)
	}
	// Another tenant's id, or none at all, is 404 (HTML).
	if resp := do("GET", "/console/tenants/tnt_"+strings.Repeat("z", 26), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown tenant = %d, want 404", resp.StatusCode)
	}

	h.clock.Advance(31 * time.Minute)
	resp := do("GET", "/console/tenants", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/signin") {
		t.Fatalf("idle session GET = %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, _, err := h.db.OperatorSession(ctx, secrets.HashToken(tok)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("idle session still stored: %v", err)
	}
}

// TestConsoleActionsAudited: pausing and resuming a tenant and making a
// portal link from the console each append a row to the operators' trail
// naming the operator, and the status changes are in the tenant's own
// chain too, by the same operator.
func TestConsoleActionsAudited(t *testing.T) {
	h := start(t, "")
	ctx := context.Background()
	s := h.signIn(t)
	tok, csrf := s.token, s.csrf
	tn := newTenant(t, h.db, "Acme")
	post := func(path string, form url.Values, want int) {
		t.Helper()
		form.Set("csrf_token", csrf)
		if resp, _ := h.do(t, tok, "POST", path, form); resp.StatusCode != want {
			t.Fatalf("POST %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	post("/console/tenants/"+tn.ID+"/status", url.Values{"status": {"paused"}, "confirm": {"yes"}}, http.StatusSeeOther)
	post("/console/tenants/"+tn.ID+"/status", url.Values{"status": {"active"}, "confirm": {"yes"}}, http.StatusSeeOther)
	post("/console/tenants/"+tn.ID+"/portal_link", url.Values{"intent": {"sso"}}, http.StatusOK)

	type row struct{ action, from, to, intent string }
	rows, _, err := h.db.OperatorAudit(ctx, "", store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for _, r := range rows {
		if r.Action == "tenant.status_changed" || r.Action == "portal_link.created" {
			if r.Actor.Type != "operator" || r.Actor.ID != s.operatorID || r.Resource.ID != tn.ID || r.RequestID == "" {
				t.Errorf("row %+v, want operator %s on tenant %s", r, s.operatorID, tn.ID)
			}
			var d struct{ From, To, Intent string }
			if err := json.Unmarshal(r.Context, &d); err != nil {
				t.Fatal(err)
			}
			got = append(got, row{r.Action, d.From, d.To, d.Intent})
		}
	}
	// Newest first.
	if !slices.Equal(got, []row{
		{action: "portal_link.created", intent: "sso"},
		{action: "tenant.status_changed", from: "paused", to: "active"},
		{action: "tenant.status_changed", from: "active", to: "paused"},
	}) {
		t.Errorf("operator audit rows %v", got)
	}
	chain, _, err := h.db.AuditEvents(storeCtx(tn.ID), "tenant.updated", store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 || chain[0].Actor.ID != s.operatorID || chain[1].Actor.ID != s.operatorID {
		t.Errorf("tenant chain rows %+v, want two by operator %s", chain, s.operatorID)
	}
}

// TestPagesShareTheFrame: console pages carry what every app page shares
// with the portal — base.css before the console's own stylesheet, the skip
// link, the footer and the csrf_token form field — and every asset they
// link is served.
func TestPagesShareTheFrame(t *testing.T) {
	h := start(t, "")
	resp, err := client().Get(h.url + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(raw)
	for _, want := range []string{`href="/static/base.css"`, `src="/static/app.js"`, `href="#main">Skip to content`, `<main id="main"`,
		`<footer class="footer"><p>idbroker · Operator console</p></footer>`, `name="csrf_token"`} {
		if !strings.Contains(body, want) {
			t.Errorf("sign-in page lacks %q:\n%s", want, body)
		}
	}
	if b, c := strings.Index(body, "/static/base.css"), strings.Index(body, "/static/console.css"); c < 0 || b > c {
		t.Errorf("base.css (at %d) must come before console.css (at %d)", b, c)
	}
	for _, asset := range []string{"/static/base.css", "/static/console.css", "/static/app.js", "/static/favicon.svg"} {
		resp, err := client().Get(h.url + asset)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", asset, resp.StatusCode)
		}
	}
}

// TestPendingOperatorGetsANewLink: a spent or expired enrolment link's
// page tells the operator to have `operator create --email` run again, and
// that works for someone who never enrolled: a new link, the old one dead,
// and a fresh authenticator key (the old link may have shown its key to
// whoever held it). Once enrolled, the email is refused, as a disabled
// operator's is.
func TestPendingOperatorGetsANewLink(t *testing.T) {
	h := start(t, "")
	ctx := context.Background()
	first, op, err := console.CreateOperator(ctx, h.db, h.url, "late@vendor.example", "cli")
	if err != nil {
		t.Fatal(err)
	}
	path := func(link string) string { return strings.TrimPrefix(link, h.url) }
	keyOf := func(link string) string {
		t.Helper()
		resp, body := h.get(t, "", path(link))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("enrolment page = %d\n%s", resp.StatusCode, body)
		}
		m := regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no key on the enrolment page:\n%s", body)
		}
		return m[1]
	}
	oldKey := keyOf(first)

	second, again, err := console.CreateOperator(ctx, h.db, h.url, "late@vendor.example", "cli")
	if err != nil || again.ID != op.ID || second == first {
		t.Fatalf("again = %q %+v %v", second, again, err)
	}
	if resp, body := h.get(t, "", path(first)); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "operator create") {
		t.Fatalf("the old link = %d, want 404 saying how to get a new one\n%s", resp.StatusCode, body)
	}
	if keyOf(second) == oldKey {
		t.Error("the new link shows the old link's authenticator key")
	}
	rows, _, err := h.db.OperatorAudit(ctx, "operator.enrolment_reissued", storePage())
	if err != nil || len(rows) != 1 || rows[0].Resource.ID != op.ID {
		t.Fatalf("reissue audit: %+v %v", rows, err)
	}

	h.enrol(t, "done@vendor.example", "a long enough password")
	if _, _, err := console.CreateOperator(ctx, h.db, h.url, "done@vendor.example", "cli"); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("an enrolled operator's email again = %v, want refused", err)
	}
	if _, err := console.DisableOperator(ctx, h.db, "late@vendor.example", "cli"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := console.CreateOperator(ctx, h.db, h.url, "late@vendor.example", "cli"); err == nil {
		t.Fatal("a disabled operator got a new enrolment link")
	}
}

// TestTenantSearchIsLiteral: the tenants page's search is for the text
// typed; % and _ are themselves, not wildcards matching every tenant, on
// PostgreSQL and on SQLite alike.
func TestTenantSearchIsLiteral(t *testing.T) {
	h := start(t, "")
	s := h.signIn(t)
	newTenant(t, h.db, "100% Widgets")
	newTenant(t, h.db, "Acme_EU")
	newTenant(t, h.db, "Globex")
	for _, tc := range []struct{ q, want string }{
		{"%", "100% Widgets"}, {"_", "Acme_EU"}, {"0% w", "100% Widgets"}, {"globex", "Globex"},
	} {
		resp, body := h.get(t, s.token, "/console/tenants?q="+url.QueryEscape(tc.q))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("q=%q: %d", tc.q, resp.StatusCode)
		}
		if n := strings.Count(body, `href="/console/tenants/tnt_`); n != 1 || !strings.Contains(body, tc.want) {
			t.Errorf("q=%q: %d tenants, want only %s", tc.q, n, tc.want)
		}
	}
	lite := storetest.SQLite(t)
	for _, name := range []string{"100% Widgets", "Acme_EU", "Globex"} {
		if _, err := lite.CreateTenant(context.Background(), store.Tenant{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"%", "_"} {
		if list, _, err := lite.FindTenants(context.Background(), q, "", store.Page{}); err != nil || len(list) != 1 {
			t.Errorf("SQLite q=%q: %d tenants, %v", q, len(list), err)
		}
	}
}

// TestTenantStatusFilter: the tenants page filters by every status a
// listed tenant can be in, past_due and cancelled included, and filters in
// the query: a past_due tenant behind a full page of active ones is on the
// first page of ?status=past_due, not on a page of its own behind empty ones.
func TestTenantStatusFilter(t *testing.T) {
	h := start(t, "")
	s := h.signIn(t)
	for i := range 51 {
		newTenant(t, h.db, fmt.Sprintf("Active %02d", i))
	}
	for _, tn := range []store.Tenant{
		{Name: "Late Payer", Status: store.TenantPastDue},
		{Name: "Gone Away", Status: store.TenantCancelled},
	} {
		if _, err := h.db.CreateTenant(context.Background(), tn); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ status, want string }{
		{"past_due", "Late Payer"},
		{"cancelled", "Gone Away"},
	} {
		resp, body := h.get(t, s.token, "/console/tenants?status="+tc.status)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status=%s: %d", tc.status, resp.StatusCode)
		}
		if n := strings.Count(body, `href="/console/tenants/tnt_`); n != 1 || !strings.Contains(body, tc.want) {
			t.Errorf("status=%s: %d tenants on the first page, want only %s", tc.status, n, tc.want)
		}
		if !strings.Contains(body, `<option value="`+tc.status+`" selected>`) {
			t.Errorf("status=%s: the filter does not offer it, selected", tc.status)
		}
	}
	// An unknown status filters nothing, as "Any" does.
	if _, body := h.get(t, s.token, "/console/tenants?status=bogus"); strings.Count(body, `href="/console/tenants/tnt_`) != pageSizeForTest {
		t.Errorf("status=bogus: want a full page of every status")
	}
	// A search filters by status in the query too: "a" matches every
	// tenant, and the past_due one is on the first page, alone.
	if _, body := h.get(t, s.token, "/console/tenants?q=a&status=past_due"); strings.Count(body, `href="/console/tenants/tnt_`) != 1 || !strings.Contains(body, "Late Payer") {
		t.Errorf("q=a&status=past_due: want only Late Payer on the first page")
	}
	// "Any" lists every tenant but the deleted, searched or not, as the
	// API's list does.
	before := newTenant(t, h.db, "Zz Before")
	gone := newTenant(t, h.db, "Zz Deleted")
	if _, err := h.db.SoftDeleteTenant(store.WithTenant(context.Background(), gone.ID)); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/console/tenants?q=deleted", "/console/tenants?q=" + gone.ID, "/console/tenants?after=" + url.QueryEscape(before.ID)} {
		if _, body := h.get(t, s.token, path); strings.Contains(body, `href="/console/tenants/`+gone.ID) {
			t.Errorf("%s lists the deleted tenant", path)
		}
	}
}

// pageSizeForTest is the console's tenants page size.
const pageSizeForTest = 50
