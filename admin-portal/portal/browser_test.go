package portal

import (
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/store"
)

// TestHTTPSSessionInChromium: on an https issuer a real Chromium keeps the
// portal's __Host- prefixed cookies (it drops one that is not Secure,
// has a Domain or a Path other than /, which would leave every admin
// signed out at the first page): the link opens a session, a change
// leaves its flash, and sign-out ends the session. Scripts see none of
// the cookies.
func TestHTTPSSessionInChromium(t *testing.T) {
	h := newHarnessOn(t, true)
	ctx := h.tenant("Acme", "acme.example")
	tab := browsertest.NewTab(t, browsertest.New(t, browsertest.IgnoreCertificateErrors))
	text := func(what string) string {
		t.Helper()
		s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("main")))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	if err := browsertest.Do(tab, chromedp.Navigate(h.link(ctx, store.IntentDomainVerification)), chromedp.WaitVisible(chromedp.ID("domain"))); err != nil {
		t.Fatalf("open link: %v (page: %q)", err, text("open link"))
	}
	if js, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.cookie`)); js != "" {
		t.Errorf("scripts see cookies: %q", js)
	}
	if err := browsertest.Do(tab,
		chromedp.SendKeys(chromedp.ID("domain"), "eu.acme.example"),
		chromedp.Click(chromedp.ID("add-domain")),
		chromedp.WaitVisible(chromedp.ID("flash")),
	); err != nil {
		t.Fatalf("add domain: %v (page: %q)", err, text("add domain"))
	}
	if got := text("after adding"); !strings.Contains(got, "Domain added") || !strings.Contains(got, "eu.acme.example") {
		t.Fatalf("after adding a domain the page says:\n%s", got)
	}
	if err := browsertest.Do(tab,
		chromedp.Click(chromedp.CSS(`form[action="/portal/signout"] button`)),
		// The page it leaves has a main too: wait for that one to go.
		chromedp.WaitNotPresent(chromedp.CSS(`form[action="/portal/signout"]`)),
		chromedp.WaitVisible(chromedp.CSS("main")),
	); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	if got := text("signed out"); !strings.Contains(got, "Your setup session has ended") {
		t.Fatalf("sign-out page says:\n%s", got)
	}
	if err := browsertest.Do(tab, chromedp.Navigate(h.url+"/portal/domains"), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
		t.Fatal(err)
	}
	if got := text("after sign-out"); !strings.Contains(got, "Your setup session has ended") {
		t.Fatalf("the domains page after sign-out says:\n%s", got)
	}
}

// TestCopyButtonsOnlyWithScriptInChromium: the wizard's Copy buttons work
// through the portal's script, so a browser that runs none does not show
// them (it showed buttons that did nothing); the values stay in their
// fields, to select and copy by hand. With the script they show.
func TestCopyButtonsOnlyWithScriptInChromium(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	browser := browsertest.New(t)
	for _, tc := range []struct {
		name    string
		scripts bool
	}{{"without script", false}, {"with script", true}} {
		t.Run(tc.name, func(t *testing.T) {
			tab := browsertest.NewTab(t, browser)
			if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !tc.scripts}); err != nil {
				t.Fatal(err)
			}
			if err := browsertest.Do(tab,
				chromedp.Navigate(h.link(ctx, store.IntentSSO)),
				chromedp.Navigate(h.url+"/portal/sso/new"),
				chromedp.Click(chromedp.CSS(`button[value="okta"]`)),
				chromedp.WaitVisible(chromedp.ID("acs-url")),
			); err != nil {
				t.Fatalf("open the wizard: %v", err)
			}
			// Read through the protocol: a page without script still answers
			// the driver's own evaluations.
			shown, err := chromedp.Run(tab, chromedp.Evaluate[[]bool](`[...document.querySelectorAll("button[data-copy]")].map(b => b.offsetParent !== null)`))
			if err != nil || len(shown) == 0 {
				t.Fatalf("copy buttons: %v %v", shown, err)
			}
			for i, s := range shown {
				if s != tc.scripts {
					t.Errorf("copy button %d displayed = %v", i, s)
				}
			}
			if v, err := chromedp.Run(tab, chromedp.Value(chromedp.ID("acs-url"))); err != nil || !strings.HasSuffix(v, "/acs") {
				t.Errorf("ACS URL field = %q, %v", v, err)
			}
		})
	}
}

// TestAdvancedSettingsInChromium: in a real Chromium the advanced
// settings of a SAML connection are folded away on its test page; the
// admin unfolds them, asks for encrypted assertions and a larger clock
// difference, saves, and sees it take effect: the page says to import
// the SP metadata again, and the metadata the IdP reads carries the
// encryption key. The section passes axe-core's WCAG 2.1 A and AA rules
// unfolded and in error, as the portal's other pages do.
func TestAdvancedSettingsInChromium(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	conn := samlDraft(t, h, ctx, "Acme AD FS")
	tab := browsertest.NewTab(t, browsertest.New(t))
	audit := func(name string) {
		t.Helper()
		violations, err := browsertest.Axe(tab)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, v := range violations {
			t.Errorf("%s: %s", name, v)
		}
	}
	visible := func(sel string) bool {
		t.Helper()
		shown, err := chromedp.Run(tab, chromedp.Evaluate[bool](`(e => !!e && e.checkVisibility())(document.querySelector(`+"`"+sel+"`"+`))`))
		if err != nil {
			t.Fatal(err)
		}
		return shown
	}
	if err := browsertest.Do(tab,
		chromedp.Navigate(h.link(ctx, store.IntentSSO)),
		chromedp.Navigate(h.url+"/portal/sso/"+conn.ID+"/test"),
		chromedp.WaitVisible(chromedp.ID("advanced-title")),
	); err != nil {
		t.Fatalf("open the test page: %v", err)
	}
	if visible("#adv-encrypt") {
		t.Fatal("the advanced settings are unfolded on arrival")
	}
	if err := browsertest.Do(tab,
		chromedp.Click(chromedp.CSS("#advanced-settings > summary")),
		chromedp.WaitVisible(chromedp.ID("adv-encrypt")),
	); err != nil {
		t.Fatalf("unfold: %v", err)
	}
	audit("advanced settings unfolded")

	// A value past the largest allowance, sent past the browser's own
	// check of the field's range: refused beside the field, unfolded.
	if err := browsertest.Do(tab,
		chromedp.SetValue(chromedp.ID("adv-clock-skew"), "500"),
		chromedp.Submit(chromedp.ID("adv-clock-skew")),
		chromedp.WaitVisible(chromedp.ID("adv-clock-skew-error")),
	); err != nil {
		t.Fatalf("a clock difference too large: %v", err)
	}
	audit("advanced settings in error")

	if err := browsertest.Do(tab,
		chromedp.SetValue(chromedp.ID("adv-clock-skew"), "120"),
		chromedp.Click(chromedp.ID("adv-encrypt")),
		chromedp.Click(chromedp.ID("save-advanced")),
		chromedp.WaitVisible(chromedp.ID("flash")),
		chromedp.WaitVisible(chromedp.ID("advanced-metadata")),
	); err != nil {
		t.Fatalf("save: %v", err)
	}
	got, err := chromedp.Run(tab, chromedp.Evaluate[map[string]any](`({skew: document.getElementById("adv-clock-skew").value, encrypt: document.getElementById("adv-encrypt").checked,
  flash: document.getElementById("flash").textContent, open: document.getElementById("advanced-settings").open})`))
	if err != nil {
		t.Fatal(err)
	}
	if got["skew"] != "120" || got["encrypt"] != true || got["open"] != true || !strings.Contains(got["flash"].(string), "Our SP metadata changed") {
		t.Fatalf("after saving the page shows %v", got)
	}
	audit("advanced settings saved, metadata to import again")

	// The metadata the IdP imports (its URL on the page) now offers the
	// encryption key.
	mdURL, err := chromedp.Run(tab, chromedp.Value(chromedp.ID("sp-metadata-url")))
	if err != nil {
		t.Fatal(err)
	}
	// Fetched as the browser would (the URL answers with a download).
	md, err := chromedp.Run(tab, chromedp.Evaluate[string](`fetch(`+strconv.Quote(mdURL)+`).then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md, `use="encryption"`) {
		t.Errorf("the SP metadata at %s has no encryption key:\n%s", mdURL, md)
	}
}
