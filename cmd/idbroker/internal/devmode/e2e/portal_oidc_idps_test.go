package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/store"
)

// TestPortalOIDCWizardsPerIdPInBrowser walks the OpenID Connect wizards
// of Okta and Entra ID as their admins do, against an OpenID Provider
// the test runs: the steps in that console's words, the redirect URI to
// paste with its copy button, the issuer in the form the console shows
// it, then a test login end to end.
//
// Okta's custom authorization server is given with a trailing slash
// typed; Entra's id_token carries no email claim, only
// preferred_username, as for a user without a mailbox. The portal had
// one generic OIDC choice that pinned the generic attribute preset,
// which does not read preferred_username: that test login failed for
// want of an email, where the same connection made through the
// operator API (preset from the issuer) signed the user in.
func TestPortalOIDCWizardsPerIdPInBrowser(t *testing.T) {
	pe := startPortal(t)
	for _, tc := range []struct {
		key, name string
		path      string                  // the issuer's path on the OP
		typed     func(iss string) string // what the admin pastes as the issuer
		claims    map[string]any          // beside the protocol's
		wording   []string                // on the setup step, in the console's words
		hint      string                  // on step 2, where the issuer is
		preset    string
		domain    string // the tenant's, the email's
	}{
		{
			key: "okta-oidc", name: "Okta", path: "/oauth2/default", preset: "okta", domain: "initech.example",
			typed:   func(iss string) string { return iss + "/" },
			claims:  map[string]any{"email": "carol@initech.example", "email_verified": true, "given_name": "Carol", "groups": []string{"Everyone", "Finance"}},
			wording: []string{"Okta Admin Console", "Create App Integration", "OIDC - OpenID Connect", "Web Application", "Sign-in redirect URIs", "Authorization Code", "Groups claim filter", "CLIENT SECRETS"},
			hint:    "Security › API",
		},
		{
			key: "entra-oidc", name: "Microsoft Entra ID", preset: "entra", domain: "contoso.example",
			typed:   func(iss string) string { return iss + "/.well-known/openid-configuration" },
			claims:  map[string]any{"preferred_username": "carol@contoso.example", "name": "Carol Clark", "groups": []string{"Finance"}},
			wording: []string{"Microsoft Entra admin center", "Entra ID › App registrations", "New registration", "Supported account types", "Redirect URI", "Web", "Certificates & secrets", "New client secret", "Secret ID", "Application (client) ID", "Directory (tenant) ID"},
			hint:    "Directory (tenant) ID",
		},
	} {
		t.Run(tc.key, func(t *testing.T) {
			tn, err := pe.st.CreateTenant(context.Background(), store.Tenant{Name: tc.name + " OIDC customer"})
			if err != nil {
				t.Fatal(err)
			}
			tctx := store.WithTenant(context.Background(), tn.ID)
			if _, err := pe.st.AddDomain(tctx, store.Domain{Domain: tc.domain, Verified: true, VerificationToken: "x"}); err != nil {
				t.Fatal(err)
			}
			op := startOPWith(t, tc.path, "initech-client", "initech-secret", tc.claims)
			browser := browsertest.New(t)
			ctx := browsertest.NewTab(t, browser)
			t.Cleanup(func() {
				if t.Failed() {
					os.MkdirAll(failures, 0o755)
					t.Logf("screenshot %s", browsertest.Screenshot(t, ctx, failures, filepath.Base(t.Name())+".png"))
				}
			})
			run(t, ctx, "choose "+tc.name+" (OpenID Connect)",
				chromedp.Navigate(pe.link(t, tn.ID, store.IntentSSO)),
				chromedp.Navigate(pe.issuer+"/portal/sso/new"),
				chromedp.Click(chromedp.CSS(`button[value="`+tc.key+`"]`)),
				chromedp.WaitVisible(chromedp.ID("redirect-uri")),
			)
			base := strings.TrimSuffix(location(t, ctx), "/setup")
			connID := base[strings.LastIndex(base, "/")+1:]
			page := text(t, ctx, "main")
			if got := text(t, ctx, "#setup-title"); !strings.Contains(got, tc.name) {
				t.Errorf("step title %q, want it to name %s", got, tc.name)
			}
			for _, w := range tc.wording {
				if !strings.Contains(page, w) {
					t.Errorf("step 1 does not say %q", w)
				}
			}
			if got, want := value(t, ctx, "#redirect-uri"), pe.issuer+"/sso/oidc/"+connID+"/callback"; got != want {
				t.Errorf("redirect URI %q, want %q", got, want)
			}
			if got := attr(t, ctx, `button[data-copy="redirect-uri"]`, "aria-label"); !strings.HasPrefix(got, "Copy ") {
				t.Errorf("copy button of the redirect URI: %q", got)
			}

			run(t, ctx, "next step",
				chromedp.Click(chromedp.CSS(`a.btn[href$="/idp"]`)),
				chromedp.WaitVisible(chromedp.ID("issuer")),
			)
			if got := text(t, ctx, "#idp-title"); got != "2. Connect "+tc.name {
				t.Errorf("step 2 title %q", got)
			}
			if got := text(t, ctx, "main"); !strings.Contains(got, tc.hint) {
				t.Errorf("step 2 does not say where the issuer is (%q)", tc.hint)
			}
			run(t, ctx, "enter the client",
				chromedp.SetValue(chromedp.ID("issuer"), tc.typed(op.issuer)),
				chromedp.SetValue(chromedp.ID("client_id"), "initech-client"),
				chromedp.SetValue(chromedp.ID("client_secret"), "initech-secret"),
				chromedp.Submit(chromedp.ID("issuer")),
				chromedp.WaitVisible(chromedp.ID("map-email")),
			)
			conn, err := pe.st.Connection(tctx, connID)
			if err != nil {
				t.Fatal(err)
			}
			if cfg, _ := oidc.DecodeConfig(conn.Config); cfg.AttributeMapping == nil || cfg.AttributeMapping.Preset != tc.preset {
				t.Errorf("mapping %+v, want the %s preset", cfg.AttributeMapping, tc.preset)
			}
			run(t, ctx, "step 4", chromedp.Navigate(base+"/test"), chromedp.WaitVisible(chromedp.ID("test-connection")))
			run(t, ctx, "test login",
				chromedp.Navigate(pe.issuer+attr(t, ctx, "#test-connection", "href")),
				chromedp.WaitVisible(chromedp.ID("test-outcome")),
			)
			if got := text(t, ctx, "#test-outcome"); !strings.Contains(got, "succeeded") {
				fail(t, ctx, "test outcome %q", got)
			}
			if got := text(t, ctx, "#profile"); !strings.Contains(got, "carol@"+tc.domain) || !strings.Contains(got, "Finance") {
				t.Errorf("profile %q", got)
			}
			// Back to step 2: what was entered is there.
			run(t, ctx, "back to step 2", chromedp.Navigate(base+"/idp"), chromedp.WaitVisible(chromedp.ID("issuer")))
			if got := value(t, ctx, "#client_id"); got != "initech-client" {
				t.Errorf("client ID on return %q", got)
			}
			if got := value(t, ctx, "#issuer"); strings.TrimSuffix(got, "/") != op.issuer {
				t.Errorf("issuer on return %q, want %s", got, op.issuer)
			}
		})
	}
}
