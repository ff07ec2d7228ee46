package e2e

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/store"
)

// TestPortalSAMLWizardsPerIdPInBrowser walks the SSO wizard of each named
// SAML IdP in a real browser: the steps say what that IdP's screens say,
// the values to paste are the connection's own, and the connection is
// saved with the dev IdP's metadata the way that IdP hands it out (a URL
// for Okta and Entra, a downloaded file for Google, fields typed in for
// AD FS). Each IdP gets a fresh browser and its own tenant, so one failure
// cannot spill into the next; a failing part leaves a screenshot.
func TestPortalSAMLWizardsPerIdPInBrowser(t *testing.T) {
	pe := startPortal(t)
	metadata := httpGet(t, pe.issuer+"/dev/idp/metadata")
	idpEntityID := pe.issuer + "/dev/idp/metadata"

	type copied struct{ id, want string } // want: a suffix after /sso/saml/{conn}
	for _, tc := range []struct {
		key, name string
		wording   []string          // on the setup step, in the IdP's words
		hint      string            // where step 2 says the IdP publishes its metadata
		values    []copied          // the copy fields, in order
		attrs     map[string]string // attribute copy fields: id → the name or value to type into the IdP
		preset    string
		give      func(t *testing.T, ctx context.Context, base string)
		phone     bool // take the phone-width screenshot here
	}{
		{
			key: "okta", name: "Okta", preset: "okta",
			wording: []string{"Okta Admin Console", "Create App Integration", "Single sign-on URL", "Audience URI (SP Entity ID)", "Attribute Statements", "View IdP metadata"},
			hint:    "SAML Signing Certificates",
			values:  []copied{{"acs-url", "/acs"}, {"sp-entity-id", ""}},
			attrs: map[string]string{"attr-email": "email", "attr-email-value": "user.email", "attr-firstName": "firstName", "attr-firstName-value": "user.firstName",
				"attr-lastName": "lastName", "attr-lastName-value": "user.lastName", "attr-groups": "groups", "attr-groups-value": ".*"},
			give:  byURL(idpEntityID),
			phone: true,
		},
		{
			key: "entra", name: "Microsoft Entra ID", preset: "entra",
			wording: []string{"Microsoft Entra admin center", "Entra ID › Enterprise apps", "Identifier (Entity ID)", "Reply URL (Assertion Consumer Service URL)", "Attributes & Claims", "App Federation Metadata Url"},
			hint:    "App Federation Metadata Url",
			values:  []copied{{"sp-entity-id", ""}, {"acs-url", "/acs"}},
			give:    byURL(idpEntityID),
		},
		{
			key: "google", name: "Google Workspace", preset: "google",
			wording: []string{"Google Admin console", "Add custom SAML app", "Google Identity Provider details", "ACS URL", "Entity ID", "Primary email"},
			hint:    "Download Metadata",
			values:  []copied{{"acs-url", "/acs"}, {"sp-entity-id", ""}},
			attrs:   map[string]string{"attr-email": "email", "attr-firstName": "firstName", "attr-lastName": "lastName", "attr-groups": "groups"},
			give: func(t *testing.T, ctx context.Context, base string) {
				path := filepath.Join(t.TempDir(), "GoogleIDPMetadata.xml")
				if err := os.WriteFile(path, []byte(metadata), 0o600); err != nil {
					t.Fatal(err)
				}
				run(t, ctx, "upload the metadata file",
					chromedp.SetUploadFiles(chromedp.ID("metadata_file"), []string{path}),
					chromedp.Submit(chromedp.ID("metadata_file")),
					chromedp.WaitVisible(chromedp.ID("map-email")),
				)
			},
		},
		{
			key: "adfs", name: "AD FS", preset: "adfs",
			wording: []string{"AD FS Management", "Relying Party Trusts", "Add Relying Party Trust", "Federation metadata address", "Edit Claim Issuance Policy", "FederationMetadata.xml"},
			hint:    "/FederationMetadata/2007-06/FederationMetadata.xml",
			values:  []copied{{"sp-metadata-url", "/metadata"}, {"sp-entity-id", ""}, {"acs-url", "/acs"}},
			// By hand, with the token-signing certificate as AD FS's
			// Certificate Export Wizard saves it by default: a DER
			// (binary) .cer file, which cannot be pasted.
			give: func(t *testing.T, ctx context.Context, base string) {
				block, _ := pem.Decode([]byte(certificateOf(t, metadata)))
				path := filepath.Join(t.TempDir(), "token-signing.cer")
				if err := os.WriteFile(path, block.Bytes, 0o600); err != nil {
					t.Fatal(err)
				}
				run(t, ctx, "enter the details by hand",
					chromedp.SetValue(chromedp.ID("entity_id"), idpEntityID),
					chromedp.SetValue(chromedp.ID("sso_url"), pe.issuer+"/dev/idp/sso"),
					chromedp.SetUploadFiles(chromedp.ID("certificate_file"), []string{path}),
					chromedp.Submit(chromedp.ID("certificate")),
					chromedp.WaitVisible(chromedp.ID("map-email")),
				)
			},
		},
	} {
		t.Run(tc.key, func(t *testing.T) {
			tn, err := pe.st.CreateTenant(context.Background(), store.Tenant{Name: tc.name + " customer"})
			if err != nil {
				t.Fatal(err)
			}
			tctx := store.WithTenant(context.Background(), tn.ID)
			browser := browsertest.New(t)
			ctx := browsertest.NewTab(t, browser)
			t.Cleanup(func() {
				if t.Failed() {
					os.MkdirAll(failures, 0o755)
					t.Logf("screenshot %s", browsertest.Screenshot(t, ctx, failures, filepath.Base(t.Name())+".png"))
				}
			})

			run(t, ctx, "choose "+tc.name,
				chromedp.Navigate(pe.link(t, tn.ID, store.IntentSSO)),
				chromedp.Navigate(pe.issuer+"/portal/sso/new"),
				chromedp.Click(chromedp.CSS(`button[value="`+tc.key+`"]`)),
				chromedp.WaitVisible(chromedp.ID(tc.values[0].id)),
			)
			base := strings.TrimSuffix(location(t, ctx), "/setup")
			connID := base[strings.LastIndex(base, "/")+1:]
			if !strings.HasPrefix(connID, "conn_") {
				fail(t, ctx, "the wizard is at %s", base)
			}

			// Step 1: the IdP's words, and our values with copy buttons.
			page := text(t, ctx, "main")
			if got := text(t, ctx, "#setup-title"); !strings.Contains(got, tc.name) {
				t.Errorf("step title %q, want it to name %s", got, tc.name)
			}
			for _, w := range tc.wording {
				if !strings.Contains(page, w) {
					t.Errorf("step 1 does not say %q", w)
				}
			}
			for _, v := range tc.values {
				want := pe.issuer + "/sso/saml/" + connID + v.want
				if got := value(t, ctx, "#"+v.id); got != want {
					t.Errorf("%s = %q, want %q", v.id, got, want)
				}
				if got := attr(t, ctx, `button[data-copy="`+v.id+`"]`, "aria-label"); !strings.HasPrefix(got, "Copy ") {
					t.Errorf("copy button of %s: %q", v.id, got)
				}
			}
			// The attribute names to type into the IdP are copied too: one
			// typed "firstname" is an attribute never read.
			for id, want := range tc.attrs {
				if got := value(t, ctx, "#"+id); got != want {
					t.Errorf("%s = %q, want %q", id, got, want)
				}
				if got := attr(t, ctx, `button[data-copy="`+id+`"]`, "aria-label"); !strings.HasPrefix(got, "Copy ") {
					t.Errorf("copy button of %s: %q", id, got)
				}
			}
			if got := attr(t, ctx, `a[href$="/metadata.xml"]`, "href"); got != base+"/metadata.xml" && got != strings.TrimPrefix(base, pe.issuer)+"/metadata.xml" {
				t.Errorf("SP metadata download %q", got)
			}
			// What the IdP is told is what it will find in our metadata.
			spMeta := httpGet(t, pe.issuer+"/sso/saml/"+connID+"/metadata")
			if !strings.Contains(spMeta, `entityID="`+pe.issuer+"/sso/saml/"+connID+`"`) || !strings.Contains(spMeta, pe.issuer+"/sso/saml/"+connID+"/acs") {
				t.Errorf("SP metadata does not carry the values shown:\n%s", spMeta)
			}
			if tc.phone {
				phoneWidth(t, ctx)
			}

			// Step 2: where this IdP keeps its metadata, then give it.
			run(t, ctx, "next step",
				chromedp.Click(chromedp.CSS(`a.btn[href$="/idp"]`)),
				chromedp.WaitVisible(chromedp.ID("metadata_url")),
			)
			if got := text(t, ctx, "#idp-title"); got != "2. Connect "+tc.name {
				t.Errorf("step 2 title %q", got)
			}
			if page := text(t, ctx, "main"); !strings.Contains(page, tc.hint) {
				t.Errorf("step 2 does not say where %s keeps its metadata (%q)", tc.name, tc.hint)
			}
			tc.give(t, ctx, base)

			// Saved: complete, still a draft, and remembered as this IdP.
			conn, err := pe.st.Connection(tctx, connID)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := saml.DecodeConfig(conn.Config)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.IdPEntityID != idpEntityID || len(cfg.IdPCertificates) == 0 || cfg.IdPSSOURL != pe.issuer+"/dev/idp/sso" {
				t.Errorf("saved IdP: entity %q, SSO URL %q, %d certificates", cfg.IdPEntityID, cfg.IdPSSOURL, len(cfg.IdPCertificates))
			}
			if cfg.AttributeMapping == nil || cfg.AttributeMapping.Preset != tc.preset {
				t.Errorf("mapping %+v, want the %s preset", cfg.AttributeMapping, tc.preset)
			}
			if conn.Status != store.ConnectionDraft {
				t.Errorf("status %s, want draft until a test passes", conn.Status)
			}
			run(t, ctx, "the saved IdP", chromedp.Navigate(base+"/idp"), chromedp.WaitVisible(chromedp.CSS("dl.facts")))
			if got := text(t, ctx, "dl.facts"); !strings.Contains(got, idpEntityID) {
				t.Errorf("saved details %q", got)
			}
			if got := text(t, ctx, "#conn-state"); got != "Draft" {
				t.Errorf("state %q, want Draft", got)
			}
		})
	}
}

// byURL gives the wizard a metadata URL.
func byURL(u string) func(t *testing.T, ctx context.Context, base string) {
	return func(t *testing.T, ctx context.Context, base string) {
		run(t, ctx, "give the metadata URL",
			chromedp.SetValue(chromedp.ID("metadata_url"), u),
			chromedp.Submit(chromedp.ID("metadata_url")),
			chromedp.WaitVisible(chromedp.ID("map-email")),
		)
	}
}

// phoneWidth shows the page as a 390×844 phone does and checks that it
// is readable there: nothing wider than the screen (no sideways
// scrolling), the copy fields and their buttons inside it. It saves the
// README's phone screenshot, then returns to the laptop width.
func phoneWidth(t *testing.T, ctx context.Context) {
	t.Helper()
	run(t, ctx, "phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const w = document.documentElement.clientWidth;
		if (document.documentElement.scrollWidth > w) return "the page scrolls sideways: " + document.documentElement.scrollWidth + "px in " + w + "px";
		for (const el of document.querySelectorAll("main input, main .btn, main button, main h1, main h2, main p, main li")) {
			const r = el.getBoundingClientRect();
			if (r.width > 0 && (r.left < 0 || r.right > w + 0.5)) return (el.id || el.tagName) + " spans " + r.left + "–" + r.right + "px of " + w + "px";
		}
		const fs = parseFloat(getComputedStyle(document.querySelector("main p")).fontSize);
		if (fs < 14) return "body text is " + fs + "px";
		return "";
	})()`))
	if err != nil || ok != "" {
		fail(t, ctx, "not readable at phone width: %s %v", ok, err)
	}
	shot(t, ctx, "portal-sso-setup-phone.png")
	run(t, ctx, "laptop width", chromedp.EmulateViewport(1280, 900))
}

// httpGet returns the body of a GET that must answer 200.
func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	return string(b)
}

var x509Cert = regexp.MustCompile(`<(?:ds:)?X509Certificate[^>]*>\s*([A-Za-z0-9+/=\s]+?)\s*</(?:ds:)?X509Certificate>`)

// certificateOf is the signing certificate in IdP metadata, as PEM: what
// an AD FS admin copies from the token-signing certificate.
func certificateOf(t *testing.T, metadata string) string {
	t.Helper()
	m := x509Cert.FindStringSubmatch(metadata)
	if m == nil {
		t.Fatalf("no certificate in the dev IdP's metadata:\n%s", metadata)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(m[1]), ""))
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
