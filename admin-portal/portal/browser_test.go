package portal

import (
	"strings"
	"testing"

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
