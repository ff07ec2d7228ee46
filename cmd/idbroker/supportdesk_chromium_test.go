package main

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/crewjam/saml"

	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/internal/browsertest"
)

var referenceRE = regexp.MustCompile(`Reference: <code>([^<]+)</code>`)

// TestSupportDeskOnTheBinary walks the support desk on the real binary: a
// SAML sign-in refused for its audience shows the end user a reference;
// the --dev operator pastes it into the console's Support page in
// Chromium and sees the tenant, the connection and the reason. After the
// user signs in, their email finds them with the sign-in, and the
// tenant's domain finds the tenant.
func TestSupportDeskOnTheBinary(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	email := "alice@" + u.domain
	v := newVendorIdP(t)
	v.set(func(v *vendorIdP) {
		v.nameID = "alice"
		v.attrs = []saml.Attribute{strAttr("email", email)}
		v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
			a.Conditions.AudienceRestrictions[0].Audience.Value = "https://other-sp.example"
		}
	})
	conn := u.samlConnection(v, nil)
	res := u.signIn(conn, nil)
	m := referenceRE.FindStringSubmatch(res.page)
	if res.code != "" || m == nil {
		t.Fatalf("refused sign-in: code %q status %d, no reference:\n%s", res.code, res.status, res.page)
	}
	ref := m[1]
	v.set(func(v *vendorIdP) { v.mutate = nil })
	if res := u.signIn(conn, nil); res.code == "" {
		t.Fatalf("sign-in: %d\n%s", res.status, res.page)
	}

	c, _ := consoleSession(t, u.b)
	base, _ := url.Parse(u.b.base + "/console")
	tab := browsertest.NewTab(t, browsertest.New(t))
	for _, ck := range c.Jar.Cookies(base) {
		if ck.Name == console.SessionCookie {
			if _, err := chromedp.Call(tab, network.SetCookie, network.SetCookieParams{Name: ck.Name, Value: ck.Value, URL: base.String()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	shots := t.TempDir()
	look := func(q, sel string, want ...string) {
		t.Helper()
		err := browsertest.Do(tab,
			chromedp.Navigate(u.b.base+"/console/support"),
			chromedp.SendKeys(chromedp.CSS("#q"), q+"\r"),
			// Only the answer has the query in the value attribute.
			chromedp.WaitVisible(chromedp.CSS(`#q[value="`+q+`"]`)))
		got := ""
		if err == nil {
			got, err = chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
		}
		if err != nil || !hasAll(got, want...) {
			t.Fatalf("%s: %q %v (screenshot %s)", q, got, err, browsertest.Screenshot(t, tab, shots, "support.png"))
		}
	}
	look(ref, "#failure", "Corp", u.tenantID, conn, "audience_mismatch", "other-sp.example")
	// The refused answer named no user the broker trusted: the failure is
	// the tenant's, linked from the user, not listed under the email.
	look(email, "section.user", "Corp", "active", "succeeded", "failed sign-ins")
	look(u.domain, "#domain-tenant", "Corp", u.tenantID)
}

func hasAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
