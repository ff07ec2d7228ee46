package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/store"
)

// TestEveryPageMeetsWCAG21AAInBrowser walks every HTML page the broker
// serves to people — the work-email page and the sign-in error pages, the
// self-serve portal of each intent, the operator console — in a real
// Chromium, in each state that changes the markup (empty, in error, with
// data), and on each runs axe-core's WCAG 2.1 A and AA rules (vendored, no
// network) and the checks axe cannot make on its own (see auditPage). A
// violation fails the test with the rule, the element and the fix axe
// suggests.
func TestEveryPageMeetsWCAG21AAInBrowser(t *testing.T) {
	fr := startFirstRun(t)
	ctx := context.Background()
	tenant := store.WithTenant(ctx, fr.dev.TenantID)
	if _, err := fr.st.CreateWebhook(ctx, store.Webhook{URL: "https://hooks.example/idbroker", Events: []string{"user.created"}, Secret: "whsec_a11y"}); err != nil {
		t.Fatal(err)
	}

	t.Run("sign-in pages", func(t *testing.T) {
		tab := browsertest.NewTab(t, browsertest.New(t))
		run(t, tab, "open the work-email page",
			chromedp.Navigate(fr.issuer+"/dev/app/login"),
			chromedp.WaitVisible(chromedp.ID("email")))
		auditPage(t, tab, "work email")
		run(t, tab, "no address",
			chromedp.SendKeys(chromedp.ID("email"), "not an address"),
			chromedp.Submit(chromedp.ID("email")),
			chromedp.WaitVisible(chromedp.CSS("[role=alert]")))
		auditPage(t, tab, "work email, in error")
		errorField(t, tab, "#email")
		run(t, tab, "an address no tenant has",
			chromedp.SetValue(chromedp.ID("email"), "someone@nowhere.example"),
			chromedp.Submit(chromedp.ID("email")),
			chromedp.WaitNotPresent(chromedp.ID("email")),
			chromedp.WaitVisible(chromedp.CSS("h1")))
		auditPage(t, tab, "no single sign-on (with a reference)")
		run(t, tab, "an unknown sign-in request",
			chromedp.Navigate(fr.issuer+"/login?id=nope"),
			chromedp.WaitVisible(chromedp.CSS("h1")))
		auditPage(t, tab, "sign-in error page")
		run(t, tab, "signed out",
			chromedp.Navigate(fr.issuer+"/logged_out"),
			chromedp.WaitVisible(chromedp.CSS("h1")))
		auditPage(t, tab, "signed out")
		// By keyboard alone: the field has focus on arrival, Enter sends it.
		run(t, tab, "sign in to the demo app",
			chromedp.Navigate(fr.issuer+"/dev/app/login"),
			chromedp.WaitVisible(chromedp.ID("email")),
			chromedp.KeyEvent("alice@example.com"),
			chromedp.KeyEvent("\r"),
			chromedp.WaitVisible(chromedp.CSS(`button[name="user"][value="alice"]`)),
			chromedp.Click(chromedp.CSS(`button[name="user"][value="alice"]`)),
			chromedp.WaitVisible(chromedp.CSS("#claims")))
		auditPage(t, tab, "demo app, signed in")
		run(t, tab, "the dev landing page", chromedp.Navigate(fr.issuer+"/"), chromedp.WaitVisible(chromedp.CSS("h1")))
		auditPage(t, tab, "dev landing page")
	})

	t.Run("portal", func(t *testing.T) {
		browser := browsertest.New(t)
		open := func(t *testing.T, intent string) context.Context {
			t.Helper()
			link, _, err := fr.portal.CreateLink(tenant, intent, fr.issuer+"/dev/app")
			if err != nil {
				t.Fatal(err)
			}
			// A chat program's preview of the link gets the page that
			// says what it is for (a browser opens it at once).
			preview := browsertest.NewTab(t, browser)
			if _, err := chromedp.Call(preview, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: "Slackbot-LinkExpanding 1.0"}); err != nil {
				t.Fatal(err)
			}
			run(t, preview, "preview the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("open-link")))
			auditPage(t, preview, intent+": link page")
			tab := browsertest.NewTab(t, browser)
			run(t, tab, "open the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("main h1")))
			auditPage(t, tab, intent+": first page")
			// The link is spent: a second opening says so.
			again := browsertest.NewTab(t, browser)
			run(t, again, "open the link again", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("main")))
			auditPage(t, again, intent+": spent link")
			return tab
		}
		visit := func(t *testing.T, tab context.Context, name, path string) {
			t.Helper()
			run(t, tab, "open "+path, chromedp.Navigate(fr.issuer+path), chromedp.WaitVisible(chromedp.CSS("main")))
			auditPage(t, tab, name)
		}

		t.Run("sso", func(t *testing.T) {
			tab := open(t, store.IntentSSO)
			visit(t, tab, "connections", "/portal/sso")
			visit(t, tab, "choose an IdP", "/portal/sso/new")
			run(t, tab, "choose Okta", chromedp.Click(chromedp.CSS(`button[value="okta"]`)), chromedp.WaitVisible(chromedp.ID("acs-url")))
			auditPage(t, tab, "okta: step 1")
			// Every step's heading is the connection's name: the title
			// says which step this is.
			if got, _ := chromedp.Run(tab, chromedp.Title()); !strings.HasPrefix(got, "Step 1 of 4: Create the app in Okta · ") {
				t.Errorf("step 1 is titled %q", got)
			}
			base := strings.TrimSuffix(location(t, tab), "/setup")
			visit(t, tab, "okta: step 2", strings.TrimPrefix(base, fr.issuer)+"/idp")
			run(t, tab, "give a metadata URL that is no URL",
				chromedp.SetValue(chromedp.CSS(`input[name="metadata_url"]`), "not a url"),
				chromedp.Submit(chromedp.CSS(`input[name="metadata_url"]`)),
				chromedp.WaitVisible(chromedp.CSS(`[aria-invalid="true"]`)))
			auditPage(t, tab, "okta: step 2, in error")
			run(t, tab, "give the dev IdP's metadata",
				chromedp.SetValue(chromedp.CSS(`input[name="metadata_url"]`), fr.issuer+"/dev/idp/metadata"),
				chromedp.Submit(chromedp.CSS(`input[name="metadata_url"]`)),
				chromedp.WaitVisible(chromedp.ID("map-email")))
			auditPage(t, tab, "okta: attributes")
			if got, _ := chromedp.Run(tab, chromedp.Title()); !strings.HasPrefix(got, "Step 3 of 4: Attributes · ") {
				t.Errorf("step 3 is titled %q", got)
			}
			run(t, tab, "keep the mapping", chromedp.Submit(chromedp.ID("map-email")), chromedp.WaitVisible(chromedp.ID("test-connection")))
			auditPage(t, tab, "okta: test")
			// The advanced settings, folded away on arrival, unfolded and
			// in error (a range the browser's own check would stop, sent
			// past it).
			run(t, tab, "unfold the advanced settings",
				chromedp.Click(chromedp.CSS("#advanced-settings > summary")),
				chromedp.WaitVisible(chromedp.ID("adv-encrypt")))
			auditPage(t, tab, "okta: advanced settings")
			run(t, tab, "a clock difference too large",
				chromedp.SetValue(chromedp.ID("adv-clock-skew"), "500"),
				chromedp.Submit(chromedp.ID("adv-clock-skew")),
				chromedp.WaitVisible(chromedp.ID("adv-clock-skew-error")))
			auditPage(t, tab, "okta: advanced settings, in error")
			errorField(t, tab, "#adv-clock-skew")
			run(t, tab, "test the connection",
				chromedp.Navigate(fr.issuer+attr(t, tab, "#test-connection", "href")),
				chromedp.WaitVisible(chromedp.CSS(`button[name="user"][value="alice"]`)))
			auditPage(t, tab, "dev IdP sign-in")
			run(t, tab, "sign in at the IdP",
				chromedp.Click(chromedp.CSS(`button[name="user"][value="alice"]`)),
				chromedp.WaitVisible(chromedp.ID("test-outcome")))
			auditPage(t, tab, "okta: test result")
			visit(t, tab, "okta: attributes with a preview", strings.TrimPrefix(base, fr.issuer)+"/attributes")
			run(t, tab, "activate",
				chromedp.Navigate(base+"/test"),
				chromedp.Click(chromedp.ID("activate")),
				chromedp.WaitVisible(chromedp.ID("flash")))
			auditPage(t, tab, "okta: active")
			visit(t, tab, "connections with one", "/portal/sso")
			visit(t, tab, "session ended", "/portal/expired")
		})
		t.Run("dsync", func(t *testing.T) {
			tab := open(t, store.IntentDSync)
			visit(t, tab, "directories", "/portal/dsync")
			run(t, tab, "add a directory", chromedp.SendKeys(chromedp.CSS(`form[action="/portal/dsync"] input[name="name"]`), "Okta directory"), chromedp.Click(chromedp.ID("create-directory")), chromedp.WaitVisible(chromedp.ID("scim-token")))
			auditPage(t, tab, "directory with its token")
		})
		t.Run("domains", func(t *testing.T) {
			tab := open(t, store.IntentDomainVerification)
			visit(t, tab, "domains", "/portal/domains")
			run(t, tab, "add a domain that is no domain",
				chromedp.SendKeys(chromedp.ID("domain"), "not a domain"),
				chromedp.Click(chromedp.ID("add-domain")),
				chromedp.WaitVisible(chromedp.CSS(`[aria-invalid="true"]`)))
			auditPage(t, tab, "domains, in error")
			errorField(t, tab, "#domain")
			run(t, tab, "add a domain",
				chromedp.SetValue(chromedp.ID("domain"), "eu.example.com"),
				chromedp.Click(chromedp.ID("add-domain")),
				chromedp.WaitVisible(chromedp.ID("flash")))
			auditPage(t, tab, "domains, one to verify")
			// Someone who asks for reduced motion gets none (WCAG 2.3.3's
			// intent; the transitions are the pages' only motion).
			for _, tc := range []struct {
				pref string
				want bool
			}{{"reduce", false}, {"no-preference", true}} {
				if _, err := chromedp.Call(tab, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: tc.pref}}}); err != nil {
					t.Fatal(err)
				}
				moves, err := chromedp.Run(tab, chromedp.Evaluate[bool](`[...document.querySelectorAll(".btn, .choice, button, a")].some(e => getComputedStyle(e).transitionDuration.split(",").some(d => parseFloat(d) > 0) || getComputedStyle(e).animationName !== "none")`))
				if err != nil {
					t.Fatal(err)
				}
				if moves != tc.want {
					t.Errorf("prefers-reduced-motion: %s: something moves = %v", tc.pref, moves)
				}
			}
		})
		t.Run("audit_logs", func(t *testing.T) {
			tab := open(t, store.IntentAuditLogs)
			visit(t, tab, "sign-in log", "/portal/logs")
			visit(t, tab, "sign-in log, a date in error", "/portal/logs?from=2026-02-30")
			errorField(t, tab, "#f-from")
			run(t, tab, "sign out", chromedp.Click(chromedp.CSS(`form[action="/portal/signout"] button`)),
				chromedp.WaitNotPresent(chromedp.CSS(`form[action="/portal/signout"]`)), chromedp.WaitVisible(chromedp.CSS("main")))
			auditPage(t, tab, "portal signed out")
		})
	})

	t.Run("console", func(t *testing.T) {
		browser := browsertest.New(t)
		tab := browsertest.NewTab(t, browser)
		run(t, tab, "open the sign-in page", chromedp.Navigate(fr.issuer+"/console"), chromedp.WaitVisible(chromedp.ID("code")))
		auditPage(t, tab, "sign in")
		run(t, tab, "a wrong code",
			chromedp.SendKeys(chromedp.ID("email"), fr.op.Email),
			chromedp.SendKeys(chromedp.ID("password"), fr.op.Password),
			chromedp.SendKeys(chromedp.ID("code"), "000000"),
			chromedp.Submit(chromedp.ID("code")),
			chromedp.WaitVisible(chromedp.CSS("[role=alert]")))
		// Focus is where the next thing to type is.
		if got, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.activeElement.id`)); got != "password" {
			t.Errorf("after a refused sign-in focus is on %q, want the password", got)
		}
		auditPage(t, tab, "sign in, in error")
		errorField(t, tab, "#code")

		code, err := totp.GenerateCode(fr.op.TOTPSecret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// By keyboard alone from the password field (the walk above left
		// the page): Tab reaches the code, Enter signs in.
		run(t, tab, "sign in",
			chromedp.Focus(chromedp.ID("password")),
			chromedp.KeyEvent(fr.op.Password),
			chromedp.KeyEvent("\t"),
			chromedp.KeyEvent(code),
			chromedp.KeyEvent("\r"),
			chromedp.WaitVisible(chromedp.CSS(`a[href="/console/tenants/`+fr.dev.TenantID+`"]`)))
		auditPage(t, tab, "tenants")
		for _, p := range []struct{ name, path string }{
			{"tenant", "/console/tenants/" + fr.dev.TenantID},
			{"confirm pause", "/console/tenants/" + fr.dev.TenantID + "/status?to=paused"},
			{"events", "/console/events"},
			{"audit", "/console/audit"},
			{"webhooks", "/console/webhooks"},
			{"logouts", "/console/logouts"},
			{"API", "/console/api"},
			{"support", "/console/support"},
			{"support: a reference", "/console/support?q=0123456789abcdef0123456789abcdef"},
			{"support: an email", "/console/support?q=someone%40example.com"},
			{"support: a domain", "/console/support?q=example.com"},
			{"support: too long", "/console/support?q=" + strings.Repeat("a", 400)},
			{"not found", "/console/tenants/ten_nope"},
		} {
			run(t, tab, "open "+p.path, chromedp.Navigate(fr.issuer+p.path), chromedp.WaitVisible(chromedp.CSS("main")))
			auditPage(t, tab, p.name)
		}
		run(t, tab, "open the webhook",
			chromedp.Navigate(fr.issuer+"/console/webhooks"),
			chromedp.Click(chromedp.CSS(`main a[href^="/console/webhooks/"]`)),
			chromedp.WaitVisible(chromedp.CSS("main h1")))
		auditPage(t, tab, "webhook")
		run(t, tab, "make a portal link",
			chromedp.Navigate(fr.issuer+"/console/tenants/"+fr.dev.TenantID),
			chromedp.SetValue(chromedp.ID("intent"), "dsync"),
			chromedp.Submit(chromedp.ID("intent")),
			chromedp.WaitVisible(chromedp.ID("portal-link")))
		auditPage(t, tab, "portal link")

		link, _, err := console.CreateOperator(ctx, fr.st, fr.issuer, "new-operator@vendor.example", "cli")
		if err != nil {
			t.Fatal(err)
		}
		enrol := browsertest.NewTab(t, browser)
		run(t, enrol, "open the enrolment link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("password")))
		auditPage(t, enrol, "enrol")
		run(t, enrol, "passwords that differ",
			chromedp.SendKeys(chromedp.ID("password"), "a long enough password 1"),
			chromedp.SendKeys(chromedp.ID("password2"), "a long enough password 2"),
			chromedp.SendKeys(chromedp.ID("code"), "000000"),
			chromedp.Submit(chromedp.ID("code")),
			chromedp.WaitVisible(chromedp.CSS("[role=alert]")))
		auditPage(t, enrol, "enrol, in error")
		errorField(t, enrol, "#password2")
		enrolOperator(t, enrol, "a long enough password 1")
		auditPage(t, enrol, "recovery codes")
	})

	// Pages that say they work without JavaScript do: the work email,
	// the portal's forms, console enrolment with its TOTP code.
	t.Run("without JavaScript", func(t *testing.T) {
		browser := browsertest.New(t)
		noScript := func() context.Context {
			tab := browsertest.NewTab(t, browser)
			if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
				t.Fatal(err)
			}
			return tab
		}
		tab := noScript()
		run(t, tab, "work email to the IdP",
			chromedp.Navigate(fr.issuer+"/dev/app/login"),
			chromedp.WaitVisible(chromedp.ID("email")),
			chromedp.SendKeys(chromedp.ID("email"), "alice@example.com"),
			chromedp.Submit(chromedp.ID("email")),
			chromedp.WaitVisible(chromedp.CSS(`button[name="user"][value="alice"]`)))

		link, _, err := fr.portal.CreateLink(tenant, store.IntentDomainVerification, "")
		if err != nil {
			t.Fatal(err)
		}
		tab = noScript()
		run(t, tab, "portal: add a domain",
			chromedp.Navigate(link),
			chromedp.WaitVisible(chromedp.ID("domain")),
			chromedp.SendKeys(chromedp.ID("domain"), "nojs.example.com"),
			chromedp.Click(chromedp.ID("add-domain")),
			chromedp.WaitVisible(chromedp.ID("flash")))
		// axe-core itself needs script (its timers do not run here); the
		// same pages with script were audited above.

		link, _, err = console.CreateOperator(ctx, fr.st, fr.issuer, "no-script@vendor.example", "cli")
		if err != nil {
			t.Fatal(err)
		}
		tab = noScript()
		run(t, tab, "open the enrolment link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("password")))
		enrolOperator(t, tab, "another long enough password")
	})
}

// enrolOperator completes the enrolment page in tab, typing the code of
// the key it shows, and waits for the recovery codes.
func enrolOperator(t *testing.T, tab context.Context, password string) {
	t.Helper()
	secret := text(t, tab, "#totp-secret")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	run(t, tab, "enrol",
		chromedp.SetValue(chromedp.ID("password"), password),
		chromedp.SetValue(chromedp.ID("password2"), password),
		chromedp.SetValue(chromedp.ID("code"), code),
		chromedp.Submit(chromedp.ID("code")),
		chromedp.WaitNotPresent(chromedp.ID("password2")),
		chromedp.WaitVisible(chromedp.CSS("main h1")))
	if got := text(t, tab, "main h1"); !strings.Contains(strings.ToLower(got), "recovery") {
		fail(t, tab, "after enrolling the page says %q", got)
	}
}

// auditPage runs axe-core's WCAG 2.1 A/AA rules on the page in tab, and
// what axe leaves to people: the page says its language and where it is
// (a title), and at 320 CSS px wide (a 1280 px window zoomed to 400 %,
// WCAG 1.4.10) it needs no horizontal scrolling.
func auditPage(t *testing.T, tab context.Context, name string) {
	t.Helper()
	violations, err := browsertest.Axe(tab)
	if err != nil {
		fail(t, tab, "%s: %v", name, err)
	}
	for _, v := range violations {
		t.Errorf("%s (%s): %s", name, location(t, tab), v)
	}
	page, err := chromedp.Run(tab, chromedp.Evaluate[map[string]string](`({lang: document.documentElement.lang, title: document.title})`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %q", name, page["title"])
	if page["lang"] == "" || strings.TrimSpace(page["title"]) == "" {
		t.Errorf("%s: lang %q, title %q", name, page["lang"], page["title"])
	}
	if _, err := chromedp.Call(tab, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 320, Height: 640, DeviceScaleFactor: 1}); err != nil {
		t.Fatal(err)
	}
	wide, err := chromedp.Run(tab, chromedp.Evaluate[string](`(function(){
  var d = document.documentElement;
  if (d.scrollWidth <= d.clientWidth) return "";
  var out = [];
  var scrolls = function (e) {
    for (var a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      if (/auto|scroll|hidden/.test(getComputedStyle(a).overflowX)) return true;
    }
    return false;
  };
  document.querySelectorAll("body *").forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (scrolls(e)) return;
    if (r.right > d.clientWidth + 1 && out.length < 5) out.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.split(" ").join(".") : "") + " to " + Math.round(r.right) + "px");
  });
  return d.scrollWidth + "px: " + out.join(", ");
})()`))
	if _, cerr := chromedp.Call(tab, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if wide != "" {
		t.Errorf("%s: scrolls sideways at 320 px wide: %s", name, wide)
	}
	keyboardWalk(t, tab, name)
}

// keyboardWalk tabs through the page from its top, as someone without a
// mouse does (WCAG 2.1.1, 2.1.2, 2.4.3, 2.4.7): every stop shows where
// focus is (an outline or a ring), and Tab leaves the page's last
// control, so nothing traps focus. On a page with a skip link, it is the
// first stop.
func keyboardWalk(t *testing.T, tab context.Context, name string) {
	t.Helper()
	// A page that puts focus in a field (autofocus, a field in error)
	// starts the walk there; one that does not starts at the skip link.
	fresh, err := chromedp.Run(tab, chromedp.Evaluate[bool](`!document.activeElement || document.activeElement === document.body`))
	if err != nil {
		t.Fatal(err)
	}
	type stop struct {
		Where   string `json:"where"`
		Visible bool   `json:"visible"`
		Again   bool   `json:"again"`
	}
	// Enough for the longest form; a long page (the API reference has
	// hundreds of links) is walked this far, which is as far as a trap
	// could hide in the frame and the page's first part.
	const max = 150
	for i := 0; i < max; i++ {
		if err := chromedp.Do(tab, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
		at, err := chromedp.Run(tab, chromedp.Evaluate[*stop](`(function(){
  var e = document.activeElement;
  if (!e || e === document.body || e === document.documentElement) return null;
  var seen = window.__a11ySeen || (window.__a11ySeen = new WeakSet());
  // Tab moves through a date field's parts with the field keeping focus:
  // the same element twice in a row is that, not a trap.
  var again = seen.has(e) && window.__a11yLast !== e;
  seen.add(e);
  window.__a11yLast = e;
  var cs = getComputedStyle(e);
  var ring = (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 2) || cs.boxShadow !== "none";
  return {where: e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.name ? "[name=" + e.name + "]" : "") + (e.getAttribute("href") ? "[href=" + e.getAttribute("href") + "]" : ""), visible: ring, again: again};
})()`))
		if err != nil {
			t.Fatal(err)
		}
		if at == nil {
			return // past the last control: focus left the page
		}
		if i == 0 && fresh && !strings.Contains(at.Where, "href=#main") {
			if ok, _ := chromedp.Run(tab, chromedp.Evaluate[bool](`!!document.querySelector("a.skip")`)); ok {
				t.Errorf("%s: the first Tab stops at %s, not the skip link", name, at.Where)
			}
		}
		if at.Again {
			t.Errorf("%s: Tab comes back to %s before leaving the page: focus is trapped", name, at.Where)
			return
		}
		if !at.Visible {
			t.Errorf("%s: focus on %s does not show", name, at.Where)
		}
	}
}

// errorField checks that the field sel, after a refused submission, says
// it is in error and names the message that says why (WCAG 3.3.1): a
// screen reader reads both when the field has focus.
func errorField(t *testing.T, tab context.Context, sel string) {
	t.Helper()
	got, err := chromedp.Run(tab, chromedp.Evaluate[string](fmt.Sprintf(`(function(){
  var f = document.querySelector(%q);
  if (!f) return "no field";
  if (f.getAttribute("aria-invalid") !== "true") return "aria-invalid is " + f.getAttribute("aria-invalid");
  var ids = (f.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
  var said = ids.map(function (id) { var e = document.getElementById(id); return e ? e.textContent.trim() : ""; }).join(" ");
  return said ? "" : "aria-describedby names no message";
})()`, sel)))
	if err != nil {
		t.Fatal(err)
	}
	if got != "" {
		t.Errorf("%s at %s: %s", sel, location(t, tab), got)
	}
}
