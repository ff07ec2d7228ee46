package portal

import (
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
