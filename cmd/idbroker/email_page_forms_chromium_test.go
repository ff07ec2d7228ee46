package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/internal/browsertest"
)

// TestEmailPageAddressFormsInChromium: on the broker's "enter your work
// email" page, in a real browser, an address as people type it (a
// non-ASCII local part, an internationalised domain, capitals, spaces
// around it) is taken by the Continue button, routed by its domain, and
// signs the person in. The browser's own checks must not stop it first:
// an input of type email refuses a local part that is not ASCII.
func TestEmailPageAddressFormsInChromium(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	unicode := "bücher-" + randomHex(t, 3) + ".example"
	var dom struct{ Domain string }
	if code := u.b.do("POST", "/api/v1/tenants/"+u.tenantID+"/domains", e2eBootstrapKey,
		map[string]any{"domain": unicode, "verified": true}, &dom); code != http.StatusCreated {
		t.Fatalf("add domain: %d", code)
	}
	op := newVendorOP(t, "/oauth2/default")
	u.oidcConnection(op, nil)
	app, landed := landingApp(t)
	var a struct {
		ClientID string `json:"client_id"`
	}
	if code := u.b.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{"name": "Browser app",
		"redirect_uris": []string{app.URL + "/cb"}}, &a); code != http.StatusCreated {
		t.Fatalf("create application: %d", code)
	}
	browser := browsertest.New(t)
	for _, typed := range []string{
		"Élodie@" + strings.ToUpper(unicode),
		"  eve@" + dom.Domain + "  ",
		"josé@" + unicode,
	} {
		t.Run(typed, func(t *testing.T) {
			op.set(func(op *vendorOP) {
				op.claims = map[string]any{"sub": "00u-" + randomHex(t, 4), "email": strings.TrimSpace(typed), "email_verified": true}
			})
			q := url.Values{"client_id": {a.ClientID}, "redirect_uri": {app.URL + "/cb"}, "response_type": {"code"},
				"scope": {"openid email"}, "state": {"st8"}}
			ctx := browsertest.NewTab(t, browser)
			if err := browsertest.Do(ctx,
				chromedp.Navigate(u.b.base+"/authorize?"+q.Encode()),
				chromedp.WaitVisible(chromedp.ID("email")),
				chromedp.SendKeys(chromedp.ID("email"), typed),
				chromedp.Click(`button[type="submit"]`),
			); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-landed:
				if code == "" {
					t.Fatal("the application was reached without a code")
				}
			case <-time.After(10 * time.Second):
				at, _ := chromedp.Run(ctx, chromedp.Location())
				msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("email") ? document.getElementById("email").validationMessage : ""`))
				t.Fatalf("the sign-in never reached the application; the browser is at %s (the field says %q)", at, msg)
			}
		})
	}
}

// TestEmailPagePastedAddressInChromium: what people paste or type into
// the work-email page in a real browser, as mail clients copy an address
// ("Alice Lee <alice@…>"), as a mailto: link, or in full-width forms from
// an input method, routes by the address inside, and the IdP (over the
// real OIDC connector) is sent that bare address as login_hint, not the
// text typed, which it would show in its own sign-in box.
func TestEmailPagePastedAddressInChromium(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	op := newVendorOP(t, "/oauth2/default")
	u.oidcConnection(op, nil)
	app, landed := landingApp(t)
	var a struct {
		ClientID string `json:"client_id"`
	}
	if code := u.b.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{"name": "Browser app",
		"redirect_uris": []string{app.URL + "/cb"}}, &a); code != http.StatusCreated {
		t.Fatalf("create application: %d", code)
	}
	fullWidth := func(s string) string {
		var b strings.Builder
		for _, r := range s {
			if r > ' ' && r < 0x7f {
				r += 0xFEE0
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	browser := browsertest.New(t)
	for _, tc := range []struct{ typed, want string }{
		{"Alice Lee <Alice.Lee@" + strings.ToUpper(u.domain) + ">", "alice.lee@" + u.domain},
		{"mailto:bob@" + u.domain, "bob@" + u.domain},
		{fullWidth("cat@" + u.domain), "cat@" + u.domain},
	} {
		t.Run(tc.want, func(t *testing.T) {
			var asked url.Values
			op.set(func(op *vendorOP) {
				op.claims = map[string]any{"sub": "00u-" + randomHex(t, 4), "email": tc.want, "email_verified": true}
			})
			q := url.Values{"client_id": {a.ClientID}, "redirect_uri": {app.URL + "/cb"}, "response_type": {"code"},
				"scope": {"openid email"}, "state": {"st8"}}
			ctx := browsertest.NewTab(t, browser)
			if err := browsertest.Do(ctx,
				chromedp.Navigate(u.b.base+"/authorize?"+q.Encode()),
				chromedp.WaitVisible(chromedp.ID("email")),
				chromedp.SendKeys(chromedp.ID("email"), tc.typed),
				chromedp.Click(`button[type="submit"]`),
			); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-landed:
				if code == "" {
					t.Fatal("the application was reached without a code")
				}
			case <-time.After(10 * time.Second):
				at, _ := chromedp.Run(ctx, chromedp.Location())
				t.Fatalf("the sign-in never reached the application; the browser is at %s", at)
			}
			op.set(func(op *vendorOP) { asked = op.lastAuthorize })
			if got := asked.Get("login_hint"); got != tc.want {
				t.Fatalf("typed %q: the IdP was sent login_hint %q, want %q", tc.typed, got, tc.want)
			}
		})
	}
}
