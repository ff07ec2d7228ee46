package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/internal/browsertest"
)

// TestEmailPageToAnExternalIdPInChromium: a user with no routing hint
// types their work email on the broker's page, and the browser must go on
// to their company's IdP, which lives on another origin. Chromium holds a
// form's submission to the page's CSP form-action through the redirects
// that answer it, so a form-action of 'self' stopped the sign-in at the
// broker's own door: the dev quick start never showed it, its IdP being
// the broker itself.
func TestEmailPageToAnExternalIdPInChromium(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	op := newVendorOP(t, "/oauth2/default")
	op.set(func(op *vendorOP) {
		op.claims = map[string]any{"sub": "00u-eve", "email": "eve@" + u.domain, "email_verified": true}
	})
	u.oidcConnection(op, nil)
	app, landed := landingApp(t)
	var a struct {
		ClientID string `json:"client_id"`
	}
	if code := u.b.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{"name": "Browser app",
		"redirect_uris": []string{app.URL + "/cb"}}, &a); code != http.StatusCreated {
		t.Fatalf("create application: %d", code)
	}
	q := url.Values{"client_id": {a.ClientID}, "redirect_uri": {app.URL + "/cb"}, "response_type": {"code"},
		"scope": {"openid email"}, "state": {"st8"}}
	ctx := browsertest.NewTab(t, browsertest.New(t))
	if err := browsertest.Do(ctx,
		chromedp.Navigate(u.b.base+"/authorize?"+q.Encode()),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "eve@"+u.domain),
		chromedp.Submit(chromedp.ID("email")),
	); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-landed:
		if code == "" {
			t.Fatal("the application was reached without a code")
		}
	case <-time.After(15 * time.Second):
		at, _ := chromedp.Run(ctx, chromedp.Location())
		var asked url.Values
		op.set(func(op *vendorOP) { asked = op.lastAuthorize })
		t.Fatalf("the sign-in never reached the application; the browser is at %s (the IdP was asked: %v)", at, asked != nil)
	}
}

// landingApp is an application whose redirect URI ({URL}/cb) a browser
// test signs in to: it answers "signed in" and hands the code it receives
// to the channel. Other requests (the browser's /favicon.ico after
// landing) hand over nothing: a next sign-in of the test would read their
// empty code as its own.
func landingApp(t *testing.T) (*httptest.Server, <-chan string) {
	t.Helper()
	landed := make(chan string, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" {
			http.NotFound(w, r)
			return
		}
		select {
		case landed <- r.URL.Query().Get("code"):
		default:
		}
		w.Write([]byte("signed in"))
	}))
	t.Cleanup(app.Close)
	return app, landed
}
