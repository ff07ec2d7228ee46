package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/store"
)

// TestPortalSecondAdminPicksUpInBrowser: one admin starts the Okta
// wizard and leaves after step 2; a colleague opens a new link of their
// own, in another browser, and finds the connection where it was left:
// listed as a draft, "Continue setup" going on to step 4 (step 2 is
// done), step 2 showing the metadata URL given, step 1 the same values
// to copy. "Done" then leads to the link's return URL.
func TestPortalSecondAdminPicksUpInBrowser(t *testing.T) {
	pe := startPortal(t)
	tn, err := pe.st.CreateTenant(context.Background(), store.Tenant{Name: "Hooli"})
	if err != nil {
		t.Fatal(err)
	}
	metadataURL := pe.issuer + "/dev/idp/metadata"

	first := browsertest.NewTab(t, browsertest.New(t))
	run(t, first, "the first admin chooses Okta",
		chromedp.Navigate(pe.link(t, tn.ID, store.IntentSSO)),
		chromedp.Navigate(pe.issuer+"/portal/sso/new"),
		chromedp.Click(chromedp.CSS(`button[value="okta"]`)),
		chromedp.WaitVisible(chromedp.ID("acs-url")),
	)
	base := strings.TrimSuffix(location(t, first), "/setup")
	acs := value(t, first, "#acs-url")
	run(t, first, "and gives the metadata URL",
		chromedp.Navigate(base+"/idp"),
		chromedp.WaitVisible(chromedp.ID("metadata_url")),
		chromedp.SetValue(chromedp.ID("metadata_url"), metadataURL),
		chromedp.Submit(chromedp.ID("metadata_url")),
		chromedp.WaitVisible(chromedp.ID("map-email")),
	)

	second := browsertest.NewTab(t, browsertest.New(t))
	run(t, second, "a colleague opens a link of their own",
		chromedp.Navigate(pe.link(t, tn.ID, store.IntentSSO)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="`+strings.TrimPrefix(base, pe.issuer)+`"]`)),
	)
	if row := text(t, second, "tbody tr"); !strings.Contains(row, "Okta") || !strings.Contains(row, "Draft") || !strings.Contains(row, "Continue setup") {
		t.Errorf("the connection's row says %q", row)
	}
	run(t, second, "continue setup",
		chromedp.Click(chromedp.CSS(`tbody tr td:last-child a`)),
		chromedp.WaitVisible(chromedp.ID("test-connection")),
	)
	if got := location(t, second); got != base+"/test" {
		t.Errorf("Continue setup went to %s, want step 4", got)
	}
	run(t, second, "step 2", chromedp.Navigate(base+"/idp"), chromedp.WaitVisible(chromedp.ID("metadata_url")))
	if got := value(t, second, "#metadata_url"); got != metadataURL {
		t.Errorf("step 2 shows the metadata URL %q, want %q", got, metadataURL)
	}
	run(t, second, "step 1", chromedp.Navigate(base+"/setup"), chromedp.WaitVisible(chromedp.ID("acs-url")))
	if got := value(t, second, "#acs-url"); got != acs {
		t.Errorf("step 1 shows the ACS URL %q, the first admin saw %q", got, acs)
	}
	run(t, second, "done",
		chromedp.Click(chromedp.CSS(`a.btn[href="`+pe.issuer+`/dev/app"]`)),
		chromedp.WaitNotPresent(chromedp.ID("acs-url")),
	)
	if got := location(t, second); !strings.HasPrefix(got, pe.issuer+"/dev/app") {
		t.Errorf("Done led to %s, want the return URL", got)
	}
}
