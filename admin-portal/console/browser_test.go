package console_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// waitFor evaluates js in tab until it is true, riding out the errors of
// an evaluation that meets a navigation.
func waitFor(t *testing.T, tab context.Context, js string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](js)); err == nil && ok {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", js)
}

// TestOperatorInBrowser walks an operator through the console in a real
// Chromium: enrolment from the CLI's link (QR code, key, first code,
// recovery codes), sign-out, sign-in with the next code, refusals of a
// replayed and a wrong code, the lockout after repeated failures; and, for
// a second operator, a tenant paused from the console whose sessions end,
// and a portal link created for it.
func TestOperatorInBrowser(t *testing.T) {
	h := start(t, "")
	shots := t.TempDir()
	ctx := context.Background()
	fail := func(t *testing.T, tab context.Context, what string, err error) {
		t.Helper()
		t.Fatalf("%s: %v (screenshot %s)", what, err, browsertest.Screenshot(t, tab, shots, strings.ReplaceAll(t.Name(), "/", "_")+".png"))
	}
	text := func(t *testing.T, tab context.Context, sel string) string {
		t.Helper()
		s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			fail(t, tab, "read "+sel, err)
		}
		return s
	}
	code := func(t *testing.T, secret string) string {
		t.Helper()
		c, err := totp.GenerateCode(secret, h.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const password = "a long enough password"

	// enrol opens the CLI's link in a fresh tab and sets the operator up,
	// returning the tab (signed in) and the TOTP secret shown.
	enrol := func(t *testing.T, browser context.Context, email string) (context.Context, string) {
		t.Helper()
		link, _, err := console.CreateOperator(ctx, h.db, h.url, email, "cli")
		if err != nil {
			t.Fatal(err)
		}
		tab := browsertest.NewTab(t, browser)
		if err := browsertest.Do(tab, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#totp-secret"))); err != nil {
			fail(t, tab, "open enrolment link", err)
		}
		secret := strings.TrimSpace(text(t, tab, "#totp-secret"))
		// The QR code is a PNG served by the console itself.
		w, err := chromedp.Run(tab, chromedp.Poll[int](`(() => { const i = document.querySelector("img.qr"); return i.complete && i.naturalWidth; })()`))
		if err != nil || w != 200 {
			fail(t, tab, "QR code", errors.Join(err, errors.New("no 200px image")))
		}
		if err := browsertest.Do(tab,
			chromedp.SendKeys(chromedp.CSS("#password"), password),
			chromedp.SendKeys(chromedp.CSS("#password2"), password),
			chromedp.SendKeys(chromedp.CSS("#code"), code(t, secret)),
			chromedp.Submit(chromedp.CSS("#code")),
			chromedp.WaitVisible(chromedp.CSS("#recovery-codes")),
		); err != nil {
			fail(t, tab, "finish enrolment", err)
		}
		return tab, secret
	}
	signIn := func(t *testing.T, tab context.Context, email, pw, c string) {
		t.Helper()
		if err := browsertest.Do(tab,
			chromedp.Navigate(h.url+"/console/signin"),
			chromedp.WaitVisible(chromedp.CSS("#email")),
			chromedp.SendKeys(chromedp.CSS("#email"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), pw),
			chromedp.SendKeys(chromedp.CSS("#code"), c),
			chromedp.Evaluate[chromedp.Void](`window.beforeSubmit = true`),
			chromedp.Submit(chromedp.CSS("#code")),
		); err != nil {
			fail(t, tab, "sign in", err)
		}
		// The answer is a new document: the mark is gone.
		waitFor(t, tab, `!window.beforeSubmit && document.readyState === "complete"`)
	}
	alert := func(t *testing.T, tab context.Context) string {
		t.Helper()
		if err := browsertest.Do(tab, chromedp.WaitVisible(chromedp.CSS(".alert"))); err != nil {
			fail(t, tab, "wait for the refusal", err)
		}
		return text(t, tab, ".alert")
	}

	const email = "ops@vendor.example"
	var secret, replayed string
	t.Run("enrol, sign out, sign in", func(t *testing.T) {
		// Each subtest has its own browser: one browser's life is bounded.
		browser := browsertest.New(t)
		var tab context.Context
		tab, secret = enrol(t, browser, email)
		n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("#recovery-codes li").length`))
		if err != nil || n != 10 {
			fail(t, tab, "recovery codes", errors.Join(err, errors.New("not ten")))
		}
		// The session cookie: HttpOnly, SameSite=Strict, scoped to the console.
		got, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{h.url + "/console"}})
		if err != nil {
			t.Fatal(err)
		}
		var session *network.Cookie
		for _, c := range got.Cookies {
			if c.Name == console.SessionCookie {
				session = c
			}
		}
		if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || session.Path != "/console" {
			t.Fatalf("session cookie = %+v", session)
		}
		if js, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(js, console.SessionCookie) {
			t.Fatal("the session cookie is readable from script")
		}

		// Sign out.
		if err := browsertest.Do(tab,
			chromedp.Navigate(h.url+"/console/tenants"),
			chromedp.Click(chromedp.CSS(`header form button`)),
			chromedp.WaitVisible(chromedp.CSS("#email")),
		); err != nil {
			fail(t, tab, "sign out", err)
		}
		if loc, _ := chromedp.Run(tab, chromedp.Location()); !strings.Contains(loc, "/console/signin") {
			t.Fatalf("after sign-out at %s", loc)
		}

		// The enrolment code's step is spent: sign in with the next one.
		h.clock.Advance(30 * time.Second)
		c := code(t, secret)
		signIn(t, tab, email, password, c)
		if err := browsertest.Do(tab, chromedp.WaitVisible(chromedp.CSS(`h1`))); err != nil {
			fail(t, tab, "tenants page", err)
		}
		if got := text(t, tab, "h1"); got != "Tenants" {
			fail(t, tab, "signed in", errors.New("h1 is "+got))
		}

		replayed = c
	})

	// In another browser (a browser's life is bounded, and this is an
	// attacker's anyway): the code just used, a wrong one, the lockout.
	t.Run("replayed code, wrong code, lockout", func(t *testing.T) {
		if replayed == "" {
			t.Skip("enrolment failed")
		}
		other := browsertest.New(t)
		c := replayed
		signIn(t, other, email, password, c)
		if msg := alert(t, other); !strings.Contains(msg, "accepted once") {
			fail(t, other, "replayed code", errors.New("message "+msg))
		}
		// A wrong code is refused.
		wrong := []byte(code(t, secret))
		wrong[0] = '0' + (wrong[0]-'0'+1)%10
		signIn(t, other, email, password, string(wrong))
		alert(t, other)
		// Three more failures (a wrong password) reach the limit of five…
		for range 3 {
			signIn(t, other, email, "not the password!", code(t, secret))
		}
		if msg := alert(t, other); !strings.Contains(msg, "locked") {
			fail(t, other, "lockout", errors.New("message "+msg))
		}
		// …and now even the right credentials are refused.
		h.clock.Advance(30 * time.Second)
		signIn(t, other, email, password, code(t, secret))
		if msg := alert(t, other); !strings.Contains(msg, "locked") {
			fail(t, other, "locked sign-in", errors.New("message "+msg))
		}
		rows, _, err := h.db.OperatorAudit(ctx, "", store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		actions := map[string]int{}
		for _, r := range rows {
			actions[r.Action]++
		}
		if actions["operator.enrolled"] != 1 || actions["operator.signed_in"] != 1 || actions["operator.signed_out"] != 1 ||
			actions["operator.signin_failed"] != 5 || actions["operator.locked_out"] != 1 || actions["operator.signin_refused"] != 1 {
			t.Fatalf("operator audit = %v", actions)
		}
		t.Logf("screenshot: %s", browsertest.Screenshot(t, other, shots, "locked.png"))
	})

	t.Run("pause a tenant, its sessions end; portal link", func(t *testing.T) {
		tn := newTenant(t, h.db, "Initech")
		ses := sessions.Session{ID: "ses_" + strings.Repeat("a", 26), TenantID: tn.ID, UserID: "usr_" + strings.Repeat("b", 26),
			AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := h.sessions.Create(ctx, ses); err != nil {
			t.Fatal(err)
		}
		tab, _ := enrol(t, browsertest.New(t), "support@vendor.example")
		if err := browsertest.Do(tab,
			chromedp.Navigate(h.url+"/console/tenants"),
			chromedp.SendKeys(chromedp.CSS("#q"), "initech"),
			chromedp.Submit(chromedp.CSS("#q")),
			// The results page renders the query in the value attribute;
			// the page typed into only has it as a property. Waiting for
			// the attribute keeps the click off the old page's link,
			// which is also there and vanishes mid-navigation.
			chromedp.WaitVisible(chromedp.CSS(`#q[value="initech"]`)),
			chromedp.Click(chromedp.CSS(`a[href="/console/tenants/`+tn.ID+`"]`)),
			chromedp.Click(chromedp.CSS("#pause")),
			chromedp.Click(chromedp.CSS("#confirm")),
			chromedp.WaitVisible(chromedp.CSS(".notice")),
		); err != nil {
			fail(t, tab, "pause", err)
		}
		if got := text(t, tab, "#tenant-status"); got != "paused" {
			fail(t, tab, "status", errors.New("shown as "+got))
		}
		if _, err := h.sessions.Get(ctx, ses.ID); !errors.Is(err, sessions.ErrNotFound) {
			t.Fatalf("session after pause: %v", err)
		}
		rows, _, err := h.db.AuditEvents(storeCtx(tn.ID), "tenant.updated", store.Page{})
		if err != nil || len(rows) != 1 || rows[0].Actor.Type != "operator" || !strings.HasPrefix(rows[0].Actor.ID, "opr_") {
			t.Fatalf("tenant audit: %+v %v", rows, err)
		}

		if err := browsertest.Do(tab,
			chromedp.SetValue(chromedp.CSS("#intent"), "dsync"),
			chromedp.Submit(chromedp.CSS("#intent")),
			chromedp.WaitVisible(chromedp.CSS("#portal-link")),
		); err != nil {
			fail(t, tab, "portal link", err)
		}
		link, err := chromedp.Run(tab, chromedp.Value(chromedp.CSS("#portal-link")))
		if err != nil || len(h.links) != 1 || link != h.links[0] || !strings.Contains(link, "intent=dsync") {
			t.Fatalf("portal link %q (handed out %v): %v", link, h.links, err)
		}
		// The copy button is shown by the shared app.js (no inline script).
		if hidden, err := chromedp.Run(tab, chromedp.Poll[bool](`!document.querySelector("button[data-copy]").hidden`)); err != nil || !hidden {
			fail(t, tab, "copy button", errors.Join(err, errors.New("still hidden")))
		}
		t.Logf("screenshot: %s", browsertest.Screenshot(t, tab, shots, "portal_link.png"))
	})
}

// TestHTTPSSignInInChromium: on an https issuer a real Chromium keeps the
// console's __Host- prefixed cookies (it drops one that is not Secure, has
// a Domain or a Path other than /: the sign-in form's CSRF cookie would
// never come back and no operator could sign in). The operator signs in
// with password and code, sees the tenants, and signs out; scripts see no
// cookie.
func TestHTTPSSignInInChromium(t *testing.T) {
	h := startOn(t, "", true)
	dev, _, err := console.SeedDevOperator(context.Background(), h.db)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(dev.TOTPSecret, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	tab := browsertest.NewTab(t, browsertest.New(t, browsertest.IgnoreCertificateErrors))
	if err := browsertest.Do(tab,
		chromedp.Navigate(h.url+"/console/signin"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), dev.Email),
		chromedp.SendKeys(chromedp.CSS("#password"), dev.Password),
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.Evaluate[chromedp.Void](`window.beforeSubmit = true`),
		chromedp.Submit(chromedp.CSS("#code")),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	waitFor(t, tab, `!window.beforeSubmit && document.readyState === "complete"`)
	if h1, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("h1"))); err != nil || h1 != "Tenants" {
		body, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("after sign-in h1 = %q (%v); page:\n%s", h1, err, body)
	}
	if js, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.cookie`)); js != "" {
		t.Errorf("scripts see cookies: %q", js)
	}
	if err := browsertest.Do(tab,
		chromedp.Click(chromedp.CSS(`header form button`)),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.Navigate(h.url+"/console/tenants"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
	); err != nil {
		t.Fatalf("sign out, then the tenants page: %v", err)
	}
}
