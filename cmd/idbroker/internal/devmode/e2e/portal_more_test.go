package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/store"
)

// TestPortalOIDCDirectoryAndDomainInBrowser shares one browser for the
// rest of the portal: a generic OIDC connection against an OpenID
// Provider the test runs, directory sync with its token shown once and a
// real SCIM push, and a domain verified against a loopback DNS server.
func TestPortalOIDCDirectoryAndDomainInBrowser(t *testing.T) {
	pe := startPortal(t)
	// A tenant of its own, so its domain is not the dev tenant's.
	tn, err := pe.st.CreateTenant(context.Background(), store.Tenant{Name: "Globex"})
	if err != nil {
		t.Fatal(err)
	}
	tctx := store.WithTenant(context.Background(), tn.ID)

	t.Run("generic OIDC", func(t *testing.T) {
		if _, err := pe.st.AddDomain(tctx, store.Domain{Domain: "globex.example", Verified: true, VerificationToken: "x"}); err != nil {
			t.Fatal(err)
		}
		op := startOP(t, "globex-client", "globex-secret", "carol@globex.example")
		// A browser per part: browsertest bounds a browser's whole life.
		browser := browsertest.New(t)
		ctx := browsertest.NewTab(t, browser)
		run(t, ctx, "open the link and choose OIDC",
			chromedp.Navigate(pe.link(t, tn.ID, store.IntentSSO)),
			chromedp.Navigate(pe.issuer+"/portal/sso/new"),
			chromedp.Click(chromedp.CSS(`button[value="oidc"]`)),
			chromedp.WaitVisible(chromedp.ID("redirect-uri")),
		)
		base := strings.TrimSuffix(location(t, ctx), "/setup")
		connID := base[strings.LastIndex(base, "/")+1:]
		if got, want := value(t, ctx, "#redirect-uri"), pe.issuer+"/sso/oidc/"+connID+"/callback"; got != want {
			t.Errorf("redirect URI %q, want %q", got, want)
		}
		run(t, ctx, "a missing secret is named",
			chromedp.Navigate(base+"/idp"),
			chromedp.SetValue(chromedp.ID("issuer"), op.srv.URL),
			chromedp.SetValue(chromedp.ID("client_id"), "globex-client"),
			chromedp.Submit(chromedp.ID("issuer")),
			chromedp.WaitVisible(chromedp.ID("client_secret-error")),
		)
		run(t, ctx, "enter the client",
			chromedp.SetValue(chromedp.ID("client_secret"), "globex-secret"),
			chromedp.Submit(chromedp.ID("issuer")),
			chromedp.WaitVisible(chromedp.ID("map-email")),
			chromedp.Navigate(base+"/test"),
			chromedp.WaitVisible(chromedp.ID("test-connection")),
		)
		run(t, ctx, "test login",
			chromedp.Navigate(pe.issuer+attr(t, ctx, "#test-connection", "href")),
			chromedp.WaitVisible(chromedp.ID("test-outcome")),
		)
		if got := text(t, ctx, "#test-outcome"); !strings.Contains(got, "succeeded") {
			fail(t, ctx, "OIDC test outcome %q", got)
		}
		if got := text(t, ctx, "#profile"); !strings.Contains(got, "carol@globex.example") || !strings.Contains(got, "Finance") {
			t.Errorf("profile %q", got)
		}
		run(t, ctx, "activate", chromedp.Navigate(base+"/test"), chromedp.Click(chromedp.ID("activate")), chromedp.WaitVisible(chromedp.ID("flash")))
		if conn, _ := pe.st.Connection(tctx, connID); conn.Status != store.ConnectionActive {
			t.Fatalf("status %s after Activate", conn.Status)
		}
	})

	t.Run("directory sync", func(t *testing.T) {
		// A browser per part: browsertest bounds a browser's whole life.
		browser := browsertest.New(t)
		ctx := browsertest.NewTab(t, browser)
		run(t, ctx, "create a directory",
			chromedp.Navigate(pe.link(t, tn.ID, store.IntentDSync)),
			chromedp.WaitVisible(chromedp.ID("dir-name")),
			chromedp.SetValue(chromedp.ID("dir-name"), "Okta"),
			chromedp.Click(chromedp.ID("create-directory")),
			chromedp.WaitVisible(chromedp.ID("scim-token")),
		)
		token := value(t, ctx, "#scim-token")
		baseURL := value(t, ctx, "#scim-base-url")
		if !strings.HasPrefix(token, "idb_scim_") || !strings.Contains(baseURL, "/scim/v2/dir_") {
			t.Fatalf("token %q, base URL %q", token, baseURL)
		}
		if got := text(t, ctx, ".secret"); !strings.Contains(got, "you will not see it again") {
			t.Errorf("token notice %q", got)
		}
		shot(t, ctx, "portal-dsync-token.png")
		// The token is shown once: the directory's page does not have it.
		run(t, ctx, "reload", chromedp.Navigate(strings.Replace(baseURL, "/scim/v2/", "/portal/dsync/", 1)), chromedp.WaitVisible(chromedp.ID("user-count")))
		if html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))); strings.Contains(html, token) {
			t.Fatal("the token is shown again")
		}
		if got := text(t, ctx, "#user-count"); got != "0" {
			t.Errorf("user count %q before any push", got)
		}
		// Okta pushes a user with the token.
		body, _ := json.Marshal(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "dan@globex.example",
			"name": map[string]any{"givenName": "Dan", "familyName": "Doe"}, "emails": []map[string]any{{"value": "dan@globex.example", "primary": true}}, "active": true})
		req, _ := http.NewRequest("POST", baseURL+"/Users", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("SCIM push: %d", resp.StatusCode)
		}
		// Then a push the server refuses: the admin sees what Okta was told.
		if got := text(t, ctx, "#no-scim-errors"); !strings.Contains(got, "No errors") {
			t.Errorf("errors before any failure: %q", got)
		}
		req, _ = http.NewRequest("POST", baseURL+"/Users", strings.NewReader(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"name":{"givenName":"Eve"}}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var refusal struct{ Status, ScimType, Detail string }
		json.NewDecoder(resp.Body).Decode(&refusal)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || refusal.Detail == "" {
			t.Fatalf("bad SCIM push: %d %+v", resp.StatusCode, refusal)
		}
		run(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("user-count")), chromedp.WaitVisible(chromedp.ID("scim-errors")))
		if got := text(t, ctx, "#user-count"); got != "1" {
			t.Errorf("user count %q after a push, want 1", got)
		}
		if got := text(t, ctx, "#scim-errors tbody"); !strings.Contains(got, refusal.Detail) || !strings.Contains(got, "400") ||
			!strings.Contains(got, refusal.ScimType) || !strings.Contains(got, "POST /scim/v2/") {
			fail(t, ctx, "errors table %q, want the refusal %+v", got, refusal)
		}
		shot(t, ctx, "portal-dsync-activity.png")
	})

	t.Run("domain verification", func(t *testing.T) {
		// A browser per part: browsertest bounds a browser's whole life.
		browser := browsertest.New(t)
		ctx := browsertest.NewTab(t, browser)
		run(t, ctx, "add a domain",
			chromedp.Navigate(pe.link(t, tn.ID, store.IntentDomainVerification)),
			chromedp.WaitVisible(chromedp.ID("domain")),
			chromedp.SetValue(chromedp.ID("domain"), "Globex-Sales.example"),
			chromedp.Click(chromedp.ID("add-domain")),
			chromedp.WaitVisible(chromedp.CSS(`#domain-globex-sales\.example .verify`)),
		)
		d, err := pe.st.Domain(tctx, "globex-sales.example")
		if err != nil {
			t.Fatal(err)
		}
		name := value(t, ctx, "#txt-name-"+d.ID)
		val := value(t, ctx, "#txt-value-"+d.ID)
		run(t, ctx, "verify before publishing", chromedp.Click(chromedp.CSS(`#domain-globex-sales\.example .verify`)), chromedp.WaitVisible(chromedp.CSS(".alert-error")))
		if got := text(t, ctx, ".alert-error"); !strings.Contains(got, "No TXT record found at "+name) {
			t.Errorf("failure %q", got)
		}
		pe.dns.SetTXT(name, val)
		run(t, ctx, "verify", chromedp.Click(chromedp.CSS(`#domain-globex-sales\.example .verify`)), chromedp.WaitVisible(chromedp.CSS(".alert-success")))
		if got := text(t, ctx, `#domain-globex-sales\.example .domain-status`); !strings.HasPrefix(got, "Verified") {
			t.Errorf("status %q", got)
		}
		shot(t, ctx, "portal-domains.png")

		// The dev tenant cannot claim what Globex verified.
		dev := browsertest.NewTab(t, browser)
		run(t, dev, "claim it from another tenant",
			chromedp.Navigate(pe.link(t, pe.dev.TenantID, store.IntentDomainVerification)),
			chromedp.WaitVisible(chromedp.ID("domain")),
			chromedp.SetValue(chromedp.ID("domain"), "globex-sales.example"),
			chromedp.Click(chromedp.ID("add-domain")),
			chromedp.WaitVisible(chromedp.CSS(`#domain-globex-sales\.example .verify`)),
		)
		// Even with its own record published beside Globex's.
		devDomain, err := pe.st.Domain(store.WithTenant(context.Background(), pe.dev.TenantID), "globex-sales.example")
		if err != nil {
			t.Fatal(err)
		}
		pe.dns.SetTXT(name, val, value(t, dev, "#txt-value-"+devDomain.ID))
		run(t, dev, "verify from another tenant",
			chromedp.Click(chromedp.CSS(`#domain-globex-sales\.example .verify`)),
			chromedp.WaitVisible(chromedp.CSS(".alert-error")),
		)
		if got := text(t, dev, ".alert-error"); !strings.Contains(got, "already verified by another organisation") {
			t.Errorf("claim by another tenant: %q", got)
		}
	})

	t.Run("logs", func(t *testing.T) {
		// A browser per part: browsertest bounds a browser's whole life.
		browser := browsertest.New(t)
		ctx := browsertest.NewTab(t, browser)
		run(t, ctx, "audit log",
			chromedp.Navigate(pe.link(t, tn.ID, store.IntentAuditLogs)),
			chromedp.Navigate(pe.issuer+"/portal/logs?tab=audit"),
			chromedp.WaitVisible(chromedp.ID("log")),
		)
		if got := text(t, ctx, "#log"); !strings.Contains(got, "domain.verified") || !strings.Contains(got, "directory.created") {
			t.Errorf("audit log %q", got)
		}
		run(t, ctx, "filter", chromedp.SetValue(chromedp.ID("f-action"), "domain.verified"), chromedp.Submit(chromedp.ID("f-action")), chromedp.WaitVisible(chromedp.ID("log")))
		if got := text(t, ctx, "#log"); strings.Contains(got, "directory.created") || !strings.Contains(got, "domain.verified") {
			t.Errorf("filtered audit log %q", got)
		}
		shot(t, ctx, "portal-logs.png")
	})
}
