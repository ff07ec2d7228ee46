package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/store"
)

// TestPortalTestLoginFailuresSayWhatToDoInBrowser: a test login that the
// real SAML connector refuses for what the IdP sent tells the admin, on
// the result page, what to change. An email in a domain the tenant has
// not verified names that domain and says none is verified yet (it read
// `expected one of the tenant's verified domains []`); an email attribute
// mapped to a name the IdP does not send says no email came (it read
// `no usable email in the response (got "")`).
func TestPortalTestLoginFailuresSayWhatToDoInBrowser(t *testing.T) {
	pe := startPortal(t)
	tn, err := pe.st.CreateTenant(context.Background(), store.Tenant{Name: "Initech"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.NewTab(t, browsertest.New(t))
	run(t, ctx, "open the link and create a SAML connection",
		chromedp.Navigate(pe.link(t, tn.ID, store.IntentSSO)),
		chromedp.Navigate(pe.issuer+"/portal/sso/new"),
		chromedp.Click(chromedp.CSS(`button[value="saml"]`)),
		chromedp.WaitVisible(chromedp.ID("acs-url")),
	)
	base := strings.TrimSuffix(location(t, ctx), "/setup")
	run(t, ctx, "give the metadata URL",
		chromedp.Navigate(base+"/idp"),
		chromedp.SetValue(chromedp.ID("metadata_url"), pe.issuer+"/dev/idp/metadata"),
		chromedp.Submit(chromedp.ID("metadata_url")),
		chromedp.WaitVisible(chromedp.ID("map-email")),
	)
	// A test login asks the IdP to authenticate afresh: the dev IdP shows
	// its login page each time.
	testLogin := func(t *testing.T) (outcome, hint string) {
		t.Helper()
		run(t, ctx, "to the test step", chromedp.Navigate(base+"/test"), chromedp.WaitVisible(chromedp.ID("test-connection")))
		run(t, ctx, "test login",
			chromedp.Navigate(pe.issuer+attr(t, ctx, "#test-connection", "href")),
			chromedp.WaitVisible(chromedp.CSS(`button[name="user"][value="alice"]`)),
			chromedp.Click(chromedp.CSS(`button[name="user"][value="alice"]`)),
			chromedp.WaitVisible(chromedp.ID("test-outcome")),
		)
		return text(t, ctx, "#test-outcome"), text(t, ctx, "#fix-title + p")
	}

	outcome, hint := testLogin(t)
	if !strings.Contains(outcome, "failed: Email domain") || !strings.Contains(outcome, `"example.com"`) || !strings.Contains(outcome, "none is verified yet") || strings.Contains(outcome, "[]") {
		fail(t, ctx, "unverified domain: outcome %q", outcome)
	}
	if !strings.Contains(hint, "Domains tab") {
		t.Errorf("unverified domain: hint %q", hint)
	}

	run(t, ctx, "map the email to an attribute the IdP does not send",
		chromedp.Navigate(base+"/attributes"),
		chromedp.WaitVisible(chromedp.ID("map-email")),
		chromedp.SetValue(chromedp.ID("map-email"), "workEmail"),
		chromedp.Submit(chromedp.ID("map-email")),
		chromedp.WaitVisible(chromedp.ID("test-connection")),
	)
	outcome, hint = testLogin(t)
	if !strings.Contains(outcome, "failed: Profile") || !strings.Contains(outcome, "No email in the response") || strings.Contains(outcome, `got ""`) {
		fail(t, ctx, "no email: outcome %q", outcome)
	}
	if !strings.Contains(hint, "email") {
		t.Errorf("no email: hint %q", hint)
	}
}
