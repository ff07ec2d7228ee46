package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// supportFixture is two tenants a support call is about: Acme, which has
// verified acme.com and whose directory holds alice@acme.com (active) and
// bob@acme.com (deactivated), with a failed and a successful sign-in of
// alice and a live session of hers; and Globex, where alice@acme.com also
// signed in once by SSO (a contractor), with a failure of its own.
type supportFixture struct {
	acme, globex            store.Tenant
	conn                    store.Connection
	alice, bob, aliceGlobex store.User
	dana                    store.User // of Globex, never signed in
	ref, globexRef          string
	session                 sessions.Session
}

func seedSupport(t *testing.T, h *harness) supportFixture {
	t.Helper()
	f := supportFixture{acme: newTenant(t, h.db, "Acme"), globex: newTenant(t, h.db, "Globex"),
		ref: strings.Repeat("ab12", 8), globexRef: strings.Repeat("cd34", 8)}
	actx, gctx := storeCtx(f.acme.ID), storeCtx(f.globex.ID)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	d, err := h.db.AddDomain(actx, store.Domain{Domain: "acme.com", VerificationToken: "tok"})
	must(err)
	_, err = h.db.MarkDomainVerified(actx, d.ID)
	must(err)
	f.conn, err = h.db.CreateConnection(actx, store.Connection{Type: "oidc", Name: "Acme Okta", Status: store.ConnectionActive})
	must(err)
	dir, err := h.db.CreateDirectory(actx, store.Directory{Name: "Acme Okta SCIM", TokenHash: []byte("hash")})
	must(err)
	f.alice, err = h.db.CreateDirectoryUser(actx, store.User{DirectoryID: dir.ID, UserName: "alice@acme.com", Email: "alice@acme.com",
		DisplayName: "Alice Example", Active: true})
	must(err)
	f.bob, err = h.db.CreateDirectoryUser(actx, store.User{DirectoryID: dir.ID, UserName: "bob@acme.com", Email: "bob@acme.com", Active: false})
	must(err)
	f.aliceGlobex, err = h.db.CreateUser(gctx, store.User{Email: "alice@acme.com", Active: true})
	must(err)
	f.dana, err = h.db.CreateUser(gctx, store.User{Email: "dana@globex.example", Active: true})
	must(err)
	gconn, err := h.db.CreateConnection(gctx, store.Connection{Type: "saml", Name: "Globex ADFS", Status: store.ConnectionActive})
	must(err)
	// The events as the broker writes them (broker.Provider.failed).
	event := func(ctx context.Context, tenantID, typ string, data map[string]any) {
		t.Helper()
		b, _ := json.Marshal(data)
		_, err := h.db.AppendEvent(ctx, store.Event{TenantID: tenantID, Type: typ, Data: b})
		must(err)
	}
	event(actx, f.acme.ID, "authentication.failed", map[string]any{"connection_id": f.conn.ID, "connection_type": "oidc",
		"client_id": "app_1", "reason_code": "idp_error", "reason": "the IdP answered access_denied: user is not assigned to the application",
		"request_id": f.ref, "email": "alice@acme.com"})
	event(actx, f.acme.ID, "authentication.succeeded", map[string]any{"connection_id": f.conn.ID, "email": "alice@acme.com", "user_id": f.alice.ID})
	event(gctx, f.globex.ID, "authentication.failed", map[string]any{"connection_id": gconn.ID, "reason_code": "signature_invalid",
		"reason": "globex own failure", "request_id": f.globexRef, "email": "alice@acme.com"})
	f.session = sessions.Session{ID: "ses_" + strings.Repeat("s", 26), TenantID: f.acme.ID, UserID: f.alice.ID, ConnectionID: f.conn.ID,
		AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	must(h.sessions.Create(context.Background(), f.session))
	return f
}

// TestSupportLookups: the support box finds a failed sign-in by its
// reference, users by email in the tenant that verified the domain (and in
// a tenant named, never in another), and the tenant of a domain; what it
// does not find it says so.
func TestSupportLookups(t *testing.T) {
	h := start(t, "")
	f := seedSupport(t, h)
	s := h.signIn(t)
	for _, tc := range []struct {
		name, query string
		status      int
		want, not   []string
	}{
		{"reference", "q=" + f.ref, 200,
			[]string{`id="failure"`, "Acme", f.acme.ID, "Acme Okta", f.conn.ID, "idp_error", "user is not assigned"},
			[]string{"globex own failure"}},
		{"reference of another tenant", "q=" + f.globexRef, 200, []string{"Globex", "signature_invalid"}, []string{"idp_error"}},
		{"unknown reference", "q=" + strings.Repeat("0", 32), 200, []string{`id="no-failure"`}, []string{`id="failure"`}},
		{"not a reference", "q=" + url.QueryEscape("<script>"), 200, []string{`role="alert"`}, []string{"<script>"}},
		{"email in the domain's tenant", "q=alice%40acme.com", 200,
			[]string{`id="user-` + f.alice.ID, "Alice Example", "Acme Okta SCIM", "active", "idp_error", f.ref, "End every session"},
			[]string{f.bob.ID, f.session.ID}},
		// Operators see across tenants: alice signed in at Globex too.
		{"email across tenants it signed in at", "q=alice%40acme.com", 200,
			[]string{f.alice.ID, f.aliceGlobex.ID, "globex own failure", "Globex ADFS"}, nil},
		{"email that never signed in, outside the domain's tenant", "q=carol%40globex.example", 200, []string{`id="no-user"`}, nil},
		{"deactivated user", "q=bob%40acme.com", 200, []string{`id="user-` + f.bob.ID, "deactivated"}, []string{f.alice.ID}},
		{"email in a tenant named", "q=dana%40globex.example&tenant_id=" + f.globex.ID, 200,
			[]string{f.dana.ID, "Globex", "None kept."}, []string{f.alice.ID}},
		{"the same email without the tenant", "q=dana%40globex.example", 200, []string{`id="no-user"`}, []string{f.dana.ID}},
		{"unknown tenant named", "q=alice%40acme.com&tenant_id=tnt_nope", 200, []string{"No tenant has that id"}, []string{f.alice.ID}},
		{"unknown email", "q=carol%40acme.com", 200, []string{`id="no-user"`}, nil},
		{"email of an unverified domain", "q=alice%40globex.example", 200, []string{"no tenant has verified"}, nil},
		{"domain", "q=ACME.com", 200, []string{`id="domain-tenant"`, f.acme.ID}, []string{f.globex.ID}},
		{"unverified domain", "q=globex.example", 200, []string{`id="no-tenant"`}, nil},
		{"too long", "q=" + strings.Repeat("a", 400), 400, []string{`role="alert"`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.get(t, s.token, "/console/support?"+tc.query)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("CSP %q", csp)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(body, n) {
					t.Errorf("page shows %q", n)
				}
			}
		})
	}
}

// TestSupportRevokeSessions: the button ends the user's sessions through
// the API's code path, with a row in the tenant's chain and one in the
// operators' trail; without the CSRF token it is 403, without a session
// 401, and an unknown user 404. The page itself needs a session.
func TestSupportRevokeSessions(t *testing.T) {
	h := start(t, "")
	f := seedSupport(t, h)
	s := h.signIn(t)
	ctx := context.Background()

	if resp, _ := h.get(t, "", "/console/support?q="+f.ref); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/signin") {
		t.Fatalf("signed out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	path := "/console/users/" + f.alice.ID + "/revoke_sessions"
	for _, tc := range []struct {
		name, cookie, path string
		form               url.Values
		status             int
	}{
		{"no session", "", path, url.Values{"csrf_token": {s.csrf}}, http.StatusUnauthorized},
		{"no CSRF token", s.token, path, url.Values{"q": {"alice@acme.com"}}, http.StatusForbidden},
		{"wrong CSRF token", s.token, path, url.Values{"csrf_token": {"csrf-wrong"}}, http.StatusForbidden},
		{"unknown user", s.token, "/console/users/usr_" + strings.Repeat("z", 26) + "/revoke_sessions", url.Values{"csrf_token": {s.csrf}}, http.StatusNotFound},
		{"not a user id", s.token, "/console/users/" + f.acme.ID + "/revoke_sessions", url.Values{"csrf_token": {s.csrf}}, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp, _ := h.do(t, tc.cookie, "POST", tc.path, tc.form); resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if _, err := h.sessions.Get(ctx, f.session.ID); err != nil {
				t.Fatalf("session ended by a refused post: %v", err)
			}
		})
	}
	resp, _ := h.do(t, s.token, "POST", path, url.Values{"csrf_token": {s.csrf}, "q": {"alice@acme.com"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "notice=sessions_revoked") {
		t.Fatalf("revoke: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := h.sessions.Get(ctx, f.session.ID); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("session after revoke: %v", err)
	}
	assertRevokeAudited(t, h, f, s.operatorID)
	_, body := h.get(t, s.token, resp.Header.Get("Location"))
	if !strings.Contains(body, "Every session of user "+f.alice.ID+" is ending") {
		t.Errorf("no notice after revoke")
	}
}

// assertRevokeAudited checks the one row of each trail a revocation of
// alice's sessions by operator writes.
func assertRevokeAudited(t *testing.T, h *harness, f supportFixture, operatorID string) {
	t.Helper()
	rows, _, err := h.db.AuditEvents(storeCtx(f.acme.ID), "user.sessions_revoked", store.Page{})
	if err != nil || len(rows) != 1 || rows[0].Actor.Type != "operator" || rows[0].Actor.ID != operatorID || rows[0].Resource.ID != f.alice.ID {
		t.Fatalf("tenant audit: %+v %v", rows, err)
	}
	ops, _, err := h.db.OperatorAudit(context.Background(), "user.sessions_revoked", store.Page{Limit: 10})
	if err != nil || len(ops) != 1 || ops[0].Actor.ID != operatorID || ops[0].Resource.ID != f.alice.ID ||
		!strings.Contains(string(ops[0].Context), f.acme.ID) || strings.Contains(string(ops[0].Context), "alice@") {
		t.Fatalf("operator audit: %+v %v", ops, err)
	}
	if rows, _, _ := h.db.AuditEvents(storeCtx(f.globex.ID), "user.sessions_revoked", store.Page{}); len(rows) != 0 {
		t.Fatalf("globex audit: %+v", rows)
	}
}

// TestSupportDeskInBrowser walks the support engineer's three questions in
// a real Chromium, with the keyboard: the reference of a screenshot, the
// user who cannot sign in (whose sessions they end), and the tenant of a
// domain.
func TestSupportDeskInBrowser(t *testing.T) {
	h := start(t, "")
	f := seedSupport(t, h)
	s := h.signIn(t)
	shots := t.TempDir()
	tab := browsertest.NewTab(t, browsertest.New(t))
	fail := func(what string, err error) {
		t.Helper()
		t.Fatalf("%s: %v (screenshot %s)", what, err, browsertest.Screenshot(t, tab, shots, "support.png"))
	}
	text := func(sel string) string {
		t.Helper()
		got, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			fail("read "+sel, err)
		}
		return got
	}
	if _, err := chromedp.Call(tab, network.SetCookie, network.SetCookieParams{Name: console.SessionCookie, Value: s.token, URL: h.url + "/console"}); err != nil {
		t.Fatal(err)
	}
	// search types q into the box from the nav link and presses Enter.
	search := func(q string) {
		t.Helper()
		if err := browsertest.Do(tab,
			chromedp.Navigate(h.url+"/console/tenants"),
			chromedp.Click(chromedp.CSS(`nav a[href="/console/support"]`)),
			chromedp.WaitVisible(chromedp.CSS("#q")),
			chromedp.Focus(chromedp.CSS("#q")),
			chromedp.SendKeys(chromedp.CSS("#q"), q+"\r"),
			// Only the answer has the query in the value attribute.
			chromedp.WaitVisible(chromedp.CSS(`#q[value="`+q+`"]`)),
		); err != nil {
			fail("search "+q, err)
		}
	}

	search(f.ref)
	if got := text("#failure"); !contains(got, "Acme", "Acme Okta", "idp_error", "user is not assigned", f.ref) {
		fail("failure shown", errors.New(got))
	}

	search("alice@acme.com")
	if got := text("#user-" + f.alice.ID); !contains(got, "Acme", "active", "Acme Okta SCIM", "failed", "succeeded") {
		fail("user shown", errors.New(got))
	}
	// The fullest page (a user with sessions, sign-ins and the button)
	// meets WCAG 2.1 AA as axe-core checks it.
	violations, err := browsertest.Axe(tab)
	if err != nil {
		fail("axe", err)
	}
	for _, v := range violations {
		t.Errorf("support page: %s", v)
	}
	// Keyboard: focus the button and press Enter.
	if err := browsertest.Do(tab,
		chromedp.Focus(chromedp.CSS("#revoke-"+f.alice.ID)),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	); err != nil {
		fail("revoke", err)
	}
	if _, err := h.sessions.Get(context.Background(), f.session.ID); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("session after revoke: %v", err)
	}
	if got := text("#user-" + f.alice.ID + " table.sessions tbody"); !strings.Contains(got, "None.") {
		fail("sessions after revoke", errors.New(got))
	}
	assertRevokeAudited(t, h, f, s.operatorID)

	search("acme.com")
	if got := text("#domain-tenant"); !contains(got, "Acme", f.acme.ID) {
		fail("domain's tenant", errors.New(got))
	}
	t.Logf("screenshot: %s", browsertest.Screenshot(t, tab, shots, "support.png"))
}
