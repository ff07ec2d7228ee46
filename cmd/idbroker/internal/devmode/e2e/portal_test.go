package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/store"
)

// TestPortalSAMLWizardInBrowser is a tenant admin's whole SSO setup, in a
// real browser, against the dev IdP: open the vendor's link, walk the
// generic-SAML wizard, test the connection and see the profile, break the
// certificate and see the precise failure, mend it, activate, and then
// sign in to the demo app through the new connection.
func TestPortalSAMLWizardInBrowser(t *testing.T) {
	browser := browsertest.New(t)
	pe := startPortal(t)
	ctx := browsertest.NewTab(t, browser)
	tctx := store.WithTenant(context.Background(), pe.dev.TenantID)

	// The seeded dev connection steps aside, so that the demo app's
	// sign-in can only go through the one the admin sets up.
	off := store.ConnectionInactive
	if _, err := pe.reg.UpdateConnection(tctx, pe.dev.ConnectionID, connections.Update{Status: &off}, nil); err != nil {
		t.Fatal(err)
	}

	run(t, ctx, "open the link",
		chromedp.Navigate(pe.link(t, pe.dev.TenantID, store.IntentSSO)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/portal/sso/new"]`)),
	)
	if got := text(t, ctx, ".brand-name"); got != "Acme HR" {
		t.Errorf("brand %q, want the vendor's product name", got)
	}
	shot(t, ctx, "portal-sso-start.png")
	run(t, ctx, "choose generic SAML",
		chromedp.Click(chromedp.CSS(`a.btn[href="/portal/sso/new"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value="saml"]`)),
	)
	shot(t, ctx, "portal-sso-choose.png")
	run(t, ctx, "create the connection",
		chromedp.Click(chromedp.CSS(`button[value="saml"]`)),
		chromedp.WaitVisible(chromedp.ID("acs-url")),
	)
	base := strings.TrimSuffix(location(t, ctx), "/setup")
	connID := base[strings.LastIndex(base, "/")+1:]
	if !strings.HasPrefix(connID, "conn_") {
		t.Fatalf("wizard at %s", base)
	}
	if got, want := value(t, ctx, "#acs-url"), pe.issuer+"/sso/saml/"+connID+"/acs"; got != want {
		t.Errorf("ACS URL %q, want %q", got, want)
	}
	if got, want := value(t, ctx, "#sp-entity-id"), pe.issuer+"/sso/saml/"+connID; got != want {
		t.Errorf("SP entity ID %q, want %q", got, want)
	}
	if got := text(t, ctx, "#conn-state"); got != "Draft" {
		t.Errorf("state %q, want Draft", got)
	}
	shot(t, ctx, "portal-sso-setup.png")

	// Step 2: an expired certificate is refused in plain words first.
	expired := selfSignedPEM(t, "Old IdP", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC))
	run(t, ctx, "enter an expired certificate",
		chromedp.Navigate(base+"/idp"),
		chromedp.SetValue(chromedp.ID("entity_id"), pe.issuer+"/dev/idp/metadata"),
		chromedp.SetValue(chromedp.ID("sso_url"), pe.issuer+"/dev/idp/sso"),
		chromedp.SetValue(chromedp.ID("certificate"), expired),
		chromedp.Submit(chromedp.ID("certificate")),
		chromedp.WaitVisible(chromedp.ID("certificate-error")),
	)
	if got := text(t, ctx, "#certificate-error"); !strings.Contains(got, "This certificate expired on 3 May 2026") {
		t.Errorf("certificate error %q", got)
	}
	shot(t, ctx, "portal-sso-validation.png")

	// The metadata URL, as the wizard recommends.
	run(t, ctx, "give the metadata URL",
		chromedp.SetValue(chromedp.ID("metadata_url"), pe.issuer+"/dev/idp/metadata"),
		chromedp.Submit(chromedp.ID("metadata_url")),
		chromedp.WaitVisible(chromedp.ID("map-email")),
	)
	shot(t, ctx, "portal-sso-attributes.png")
	run(t, ctx, "keep the default mapping",
		chromedp.Submit(chromedp.ID("map-email")),
		chromedp.WaitVisible(chromedp.ID("test-connection")),
	)

	testLogin := func(t *testing.T) {
		t.Helper()
		href := pe.issuer + attr(t, ctx, "#test-connection", "href")
		if attr(t, ctx, "#test-connection", "target") != "_blank" {
			t.Error("Test connection does not open a new tab")
		}
		run(t, ctx, "test login",
			chromedp.Navigate(href),
			chromedp.WaitVisible(chromedp.CSS(`button[name="user"][value="alice"]`)),
			chromedp.Click(chromedp.CSS(`button[name="user"][value="alice"]`)),
			chromedp.WaitVisible(chromedp.ID("test-outcome")),
		)
	}
	testLogin(t)
	if got := text(t, ctx, "#test-outcome"); !strings.Contains(got, "succeeded") {
		fail(t, ctx, "test outcome %q", got)
	}
	if got := text(t, ctx, "#profile"); !strings.Contains(got, "alice@example.com") || !strings.Contains(got, "Engineering") || !strings.Contains(got, "Anderson") {
		t.Errorf("profile %q", got)
	}
	if got := text(t, ctx, "#raw"); !strings.Contains(got, "groups") {
		t.Errorf("raw attributes %q", got)
	}
	shot(t, ctx, "portal-sso-test-ok.png")
	// A test login reaches no application: no broker session exists.
	if n := countSessions(t, pe, tctx); n != 0 {
		t.Errorf("a test login opened %d sessions", n)
	}

	// The mapping step now previews what the IdP sent.
	run(t, ctx, "mapping preview", chromedp.Navigate(base+"/attributes"), chromedp.WaitVisible(chromedp.ID("map-email")))
	if got := text(t, ctx, "table"); !strings.Contains(got, "alice@example.com") {
		t.Errorf("mapping preview %q", got)
	}

	// Break the certificate: a key the IdP does not sign with.
	run(t, ctx, "replace the certificate",
		chromedp.Navigate(base+"/idp"),
		chromedp.SetValue(chromedp.ID("entity_id"), pe.issuer+"/dev/idp/metadata"),
		chromedp.SetValue(chromedp.ID("sso_url"), pe.issuer+"/dev/idp/sso"),
		chromedp.SetValue(chromedp.ID("certificate"), selfSignedPEM(t, "Wrong IdP", time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour))),
		chromedp.Submit(chromedp.ID("certificate")),
		chromedp.WaitVisible(chromedp.ID("map-email")),
		chromedp.Navigate(base+"/test"),
		chromedp.WaitVisible(chromedp.ID("test-connection")),
	)
	if got := text(t, ctx, "#conn-state"); got != "Draft" {
		t.Errorf("state after a change %q, want Draft (the test is stale)", got)
	}
	testLogin(t)
	if got := text(t, ctx, "#test-outcome"); !strings.Contains(got, "failed: Signature") {
		fail(t, ctx, "broken certificate outcome %q", got)
	}
	if got := text(t, ctx, "#idp-sent"); !strings.Contains(got, "Assertion") {
		t.Errorf("what the IdP sent: %q", got)
	}
	shot(t, ctx, "portal-sso-test-failed.png")

	// Activating needs a passing test.
	run(t, ctx, "activate untested", chromedp.Navigate(base+"/test"), chromedp.Click(chromedp.ID("activate")), chromedp.WaitVisible(chromedp.ID("form-error")))
	if conn, _ := pe.st.Connection(tctx, connID); conn.Status != store.ConnectionDraft {
		t.Fatalf("activated without a passing test: %s", conn.Status)
	}

	// Mend, test, activate.
	run(t, ctx, "restore the metadata URL",
		chromedp.Navigate(base+"/idp"),
		chromedp.SetValue(chromedp.ID("metadata_url"), pe.issuer+"/dev/idp/metadata"),
		chromedp.Submit(chromedp.ID("metadata_url")),
		chromedp.WaitVisible(chromedp.ID("map-email")),
		chromedp.Navigate(base+"/test"),
		chromedp.WaitVisible(chromedp.ID("test-connection")),
	)
	testLogin(t)
	if got := text(t, ctx, "#test-outcome"); !strings.Contains(got, "succeeded") {
		fail(t, ctx, "test outcome after mending %q", got)
	}
	run(t, ctx, "activate",
		chromedp.Navigate(base+"/test"),
		chromedp.WaitVisible(chromedp.ID("activate")),
	)
	if got := text(t, ctx, "#conn-state"); got != "Tested" {
		t.Errorf("state %q, want Tested", got)
	}
	run(t, ctx, "activate", chromedp.Click(chromedp.ID("activate")), chromedp.WaitVisible(chromedp.ID("flash")))
	if got := text(t, ctx, "#conn-state"); got != "Active" {
		t.Errorf("state %q, want Active", got)
	}
	shot(t, ctx, "portal-sso-active.png")

	// A real sign-in through the demo app now uses the new connection.
	app := browsertest.NewTab(t, browser)
	run(t, app, "sign in to the demo app",
		chromedp.Navigate(pe.issuer+"/dev/app"),
		chromedp.Click(chromedp.CSS(`a[href="/dev/app/login"]`)),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "alice@example.com"),
		chromedp.Submit(chromedp.ID("email")),
		chromedp.WaitVisible(chromedp.CSS(`button[name="user"][value="alice"]`)),
		chromedp.Click(chromedp.CSS(`button[name="user"][value="alice"]`)),
		chromedp.WaitVisible(chromedp.CSS("pre")),
	)
	var claims map[string]any
	if err := json.Unmarshal([]byte(text(t, app, "pre")), &claims); err != nil {
		t.Fatal(err)
	}
	if claims["connection_id"] != connID || claims["email"] != "alice@example.com" {
		t.Fatalf("claims %v, want alice through %s", claims, connID)
	}
}

// countSessions counts the tenant's users: a test login creates none.
func countSessions(t *testing.T, pe *portalEnv, ctx context.Context) int {
	t.Helper()
	_, n, err := pe.st.FindUsers(ctx, store.UserQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
