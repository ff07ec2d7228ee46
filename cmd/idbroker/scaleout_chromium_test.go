package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/internal/browsertest"
)

// TestScaleOutInChromium: a real browser through three nodes behind a
// round-robin balancer, each request of it on the next node: a user signs
// in to an application from the broker's email page through an OIDC IdP,
// and a tenant's IT admin opens a portal link, tests the connection and
// signs out.
func TestScaleOutInChromium(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, map[string]string{envAllowPrivateNetworks: "true"})
	u := &upstream{t: t, b: c.lb, domain: "corp-" + randomHex(t, 4) + ".example"}
	var tn struct{ ID string }
	if code := c.lb.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Corp",
		"domains": []map[string]any{{"domain": u.domain, "verified": true}}}, &tn); code != http.StatusCreated {
		t.Fatalf("create tenant: %d", code)
	}
	u.tenantID = tn.ID
	op := newVendorOP(t, "/")
	op.set(func(op *vendorOP) {
		op.claims = map[string]any{"sub": "00u-eve", "email": "eve@" + u.domain, "email_verified": true}
	})
	connID := u.oidcConnection(op, nil)

	app, landed := landingApp(t)
	var a struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code := c.lb.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{"name": "Browser app",
		"redirect_uris": []string{app.URL + "/cb"}}, &a); code != http.StatusCreated {
		t.Fatalf("create application: %d", code)
	}
	ctx := browsertest.NewTab(t, browsertest.New(t))

	q := url.Values{"client_id": {a.ClientID}, "redirect_uri": {app.URL + "/cb"}, "response_type": {"code"},
		"scope": {"openid email"}, "state": {"st8"}}
	if err := browsertest.Do(ctx,
		chromedp.Navigate(c.lb.base+"/authorize?"+q.Encode()),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "eve@"+u.domain),
		chromedp.Submit(chromedp.ID("email")),
	); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-landed:
		rp := &rpClient{t: t, node: c.lb, clientID: a.ClientID, secret: a.ClientSecret}
		var tk tokens
		if status, raw := rp.post(c.lb, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {app.URL + "/cb"}}, &tk); status != http.StatusOK {
			t.Fatalf("code exchange = %d %s", status, raw)
		}
		if claim(t, tk.IDToken, "email") != "eve@"+u.domain {
			t.Errorf("id_token email = %q", claim(t, tk.IDToken, "email"))
		}
	case <-time.After(30 * time.Second):
		at, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("the sign-in never reached the application; the browser is at %s", at)
	}

	var link struct{ URL string }
	if code := c.lb.do("POST", "/api/v1/portal_links", e2eBootstrapKey, map[string]any{"tenant_id": tn.ID, "intent": "sso"}, &link); code != http.StatusCreated {
		t.Fatalf("POST portal_links = %d", code)
	}
	if err := browsertest.Do(ctx,
		chromedp.Navigate(link.URL),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/portal/signout"] button`)),
		// The page opens the test sign-in in a tab of its own; the same
		// request, made in this one, ends on its result.
		chromedp.Navigate(c.lb.base+"/portal/sso/"+connID+"/test/start"),
		chromedp.WaitVisible(chromedp.ID("test-outcome")),
	); err != nil {
		at, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("portal test sign-in in the browser: %v (at %s)", err, at)
	}
	outcome, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("test-outcome")))
	if err != nil {
		t.Fatal(err)
	}
	if err := browsertest.Do(ctx, chromedp.Click(chromedp.CSS(`form[action="/portal/signout"] button`))); err != nil {
		t.Fatal(err)
	}
	signedOut := waitText(t, ctx, "h1", "signed out")
	if !strings.Contains(outcome, "Test sign-in succeeded") {
		t.Errorf("portal test sign-in: %q", outcome)
	}
	if !strings.Contains(signedOut, "signed out") {
		t.Errorf("portal sign-out: %q", signedOut)
	}
	// Signed out on one node, the browser is signed out on all.
	for i, n := range c.nodes {
		if err := browsertest.Do(ctx, chromedp.Navigate(n.base+"/portal/sso")); err != nil {
			t.Fatal(err)
		}
		if title := waitText(t, ctx, "h1", "ended"); !strings.Contains(title, "ended") {
			t.Errorf("node %d after the sign-out: %q", i, title)
		}
	}
}

// waitText waits until the first element sel holds want (20 s at most)
// and returns its text then, or the last text seen.
func waitText(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	var got string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			got = s
			if strings.Contains(s, want) {
				break
			}
		}
	}
	return got
}
