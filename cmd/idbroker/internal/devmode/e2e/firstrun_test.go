package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/labstack/echo/v4"
	"github.com/pquerna/otp/totp"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/admin-portal/portal"
	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/cmd/idbroker/internal/devmode"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/connections/saml/samltest"
	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
	"github.com/idbroker/idbroker/web"
)

// firstRun is what `serve --dev` serves, with the surfaces the first-run
// page links: broker, connections, SCIM, operator API, console, dev IdP,
// demo app and landing page.
type firstRun struct {
	issuer string
	dev    *devmode.Dev
	op     console.DevOperator
	st     store.Store
	portal *portal.Portal
}

func startFirstRun(t *testing.T) *firstRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st := storetest.SQLite(t)
	mem := sessions.NewMemory()
	var h http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	issuer := ts.URL
	client := safehttp.NewClient(safehttp.Options{AllowPrivate: true})

	keys, err := signing.NewManager(st, signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	// Revocations and back-channel logouts as serve wires them: recorded
	// with their change, applied by the Revoker, logouts queued and
	// delivered by the LogoutDispatcher.
	var logouts *events.LogoutDispatcher
	revoker, err := events.NewRevoker(events.RevokerConfig{Store: st, Sessions: mem,
		Ended: func(store.Revocation, []sessions.Session) { logouts.Kick() }})
	if err != nil {
		t.Fatal(err)
	}
	reg := connections.NewRegistry(connections.Config{Types: connections.Types{saml.Name: saml.Type{NewKey: samltest.Keys()}, oidc.Name: oidc.New()}, Issuer: issuer, Store: st, Once: mem, Sessions: mem,
		Revoker: revoker, HTTPClient: client, AllowInsecureURLs: true})
	p, err := broker.New(broker.Config{Issuer: issuer, Store: st, Sessions: mem, Once: mem, Keys: keys, Connectors: reg, HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	if logouts, err = events.NewLogoutDispatcher(events.LogoutConfig{Store: st, Sender: p}); err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	var bg sync.WaitGroup
	bg.Go(func() { logouts.Run(ctx) })
	bg.Go(func() { revoker.Run(ctx) })
	// Stop and join the background work before the store (whose cleanup
	// was registered earlier, so runs later) closes under it, as serve
	// does at shutdown.
	t.Cleanup(func() { cancel(); bg.Wait(); p.Wait() })
	directories, err := scim.New(scim.Config{Issuer: issuer, Store: st, Sessions: mem, Revoker: revoker})
	if err != nil {
		t.Fatal(err)
	}
	selfServe, err := portal.New(portal.Config{Issuer: issuer, Store: st, Connections: reg, SCIMBaseURL: directories.BaseURL})
	if err != nil {
		t.Fatal(err)
	}
	api := adminportal.NewAPI(adminportal.APIConfig{Store: st, Sessions: mem, Revoker: revoker, Connections: reg, Portal: selfServe})
	con := console.New(console.Config{Issuer: issuer, Store: st, Tenants: api,
		PortalLink: func(ctx context.Context, a store.Actor, intent string) (string, time.Time, error) {
			return api.CreatePortalLink(ctx, a, intent, "")
		}})
	dev, err := devmode.Seed(ctx, st, reg, issuer)
	if err != nil {
		t.Fatal(err)
	}
	op, created, err := console.SeedDevOperator(ctx, st)
	if err != nil || !created {
		t.Fatalf("seed dev operator: created %v, %v", created, err)
	}
	if again, created, err := console.SeedDevOperator(ctx, st); err != nil || created || again.TOTPSecret != "" {
		t.Fatalf("second seed: %+v %v %v", again, created, err)
	}
	// A restart finds everything seeded, with the same derived secrets.
	if _, err := devmode.Seed(ctx, st, reg, issuer); err != nil {
		t.Fatalf("seed again: %v", err)
	}

	srv := httpserver.New(httpserver.Config{})
	e := srv.Echo()
	p.Mount(e)
	reg.Mount(e, selfServe.Complete(p.Complete)) // as serve does: the portal's test logins end in the portal
	directories.Mount(e)
	api.Mount(e)
	con.Mount(e)
	selfServe.Mount(e)
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static", web.Static())))
	dev.Mount(e)
	dev.MountLanding(e, devmode.Landing{ConsoleEmail: op.Email, APIReference: "/api/v1/openapi.json", APIPage: "/console/api",
		PortalLink: func(ctx context.Context, tenantID string) (string, error) {
			link, _, err := api.CreatePortalLink(store.WithTenant(ctx, tenantID), store.Actor{Type: "system", ID: "dev"}, "sso", "")
			return link, err
		}})
	h = srv.Handler()
	return &firstRun{issuer: issuer, dev: dev, op: op, st: st, portal: selfServe}
}

// TestFirstRunInBrowser is a newcomer's first minutes: the landing page at
// /, a sign-in to the demo app and "Deprovision me" (the token turns
// inactive, the back-channel logout arrives, live on the page), and the
// console's dev operator pausing the tenant, which ends another user's
// session.
func TestFirstRunInBrowser(t *testing.T) {
	fr := startFirstRun(t)
	shots := t.TempDir()
	fail := func(t *testing.T, tab context.Context, what string, err error) {
		t.Helper()
		t.Fatalf("%s: %v (screenshot %s)", what, err, browsertest.Screenshot(t, tab, shots, strings.ReplaceAll(t.Name(), "/", "_")+".png"))
	}
	text := func(t *testing.T, tab context.Context, sel string) string {
		t.Helper()
		s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			fail(t, tab, "read "+sel, err)
		}
		return s
	}
	// signIn signs user in to the demo app in a fresh tab.
	signIn := func(t *testing.T, browser context.Context, user string) context.Context {
		t.Helper()
		tab := browsertest.NewTab(t, browser)
		if err := browsertest.Do(tab,
			chromedp.Navigate(fr.issuer+"/"),
			chromedp.Click(chromedp.CSS("#demo-app")),
			chromedp.WaitVisible(chromedp.CSS(`a[href="/dev/app/login"]`)),
			chromedp.Click(chromedp.CSS(`a[href="/dev/app/login"]`)),
			chromedp.WaitVisible(chromedp.ID("email")),
			chromedp.SendKeys(chromedp.ID("email"), user+"@example.com"),
			chromedp.Submit(chromedp.ID("email")),
			chromedp.WaitVisible(chromedp.CSS(`button[name="user"][value="`+user+`"]`)),
			chromedp.Click(chromedp.CSS(`button[name="user"][value="`+user+`"]`)),
			chromedp.WaitVisible(chromedp.CSS("#claims")),
		); err != nil {
			fail(t, tab, "sign in as "+user, err)
		}
		return tab
	}
	status := func(t *testing.T, tab context.Context) (active bool, logout string) {
		t.Helper()
		raw, err := chromedp.Run(tab, chromedp.Evaluate[string](`fetch("/dev/app/status").then(r => r.text())`, chromedp.EvalAwaitPromise))
		if err != nil {
			fail(t, tab, "status", err)
		}
		var s struct {
			Active bool   `json:"token_active"`
			Logout string `json:"backchannel_logout_at"`
			Error  string `json:"error"`
		}
		if err := json.Unmarshal([]byte(raw), &s); err != nil || s.Error != "" {
			t.Fatalf("status %s: %v", raw, err)
		}
		return s.Active, s.Logout
	}

	t.Run("landing page", func(t *testing.T) {
		resp, err := http.Get(fr.issuer + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			strings.Contains(resp.Header.Get("Content-Security-Policy"), "unsafe-inline") {
			t.Fatalf("GET / = %d %v", resp.StatusCode, resp.Header)
		}
		for _, want := range []string{`href="/dev/app"`, `href="/console"`, `href="/api/v1/openapi.json"`, fr.op.Email, `rel="icon"`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("landing page lacks %s", want)
			}
		}
		if resp, err := http.Get(fr.issuer + "/static/favicon.svg"); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("favicon: %v %v", resp, err)
		}
		// The API links lead to the document and its rendered page, no
		// sign-in needed.
		for path, ctype := range map[string]string{"/api/v1/openapi.json": "application/json", "/console/api": "text/html"} {
			if !strings.Contains(string(body), `href="`+path+`"`) {
				t.Errorf("landing page lacks a link to %s", path)
			}
			resp, err := http.Get(fr.issuer + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
				t.Errorf("GET %s = %d %s, want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), ctype)
			}
		}
	})

	t.Run("deprovision me", func(t *testing.T) {
		browser := browsertest.New(t)
		tab := signIn(t, browser, "alice")
		if active, _ := status(t, tab); !active {
			t.Fatal("the fresh access token does not introspect as active")
		}
		if err := browsertest.Do(tab,
			chromedp.Click(chromedp.ID("deprovision")),
			chromedp.WaitVisible(chromedp.ID("live")),
		); err != nil {
			fail(t, tab, "deprovision", err)
		}
		// The page itself shows both, updated by its script.
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](
			`document.getElementById("token-state").textContent === "inactive" && document.getElementById("bcl-state").textContent.startsWith("received")`,
			chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			fail(t, tab, "live status: token "+text(t, tab, "#token-state")+", logout "+text(t, tab, "#bcl-state"), err)
		}
		t.Logf("screenshot: %s", browsertest.Screenshot(t, tab, shots, "deprovisioned.png"))
		// Re-provisioned, alice can sign in again.
		if err := browsertest.Do(tab, chromedp.Submit(chromedp.CSS(`form[action="/dev/app/reprovision"] button`))); err != nil {
			fail(t, tab, "reprovision", err)
		}
		// The directory created the user SSO had made (adopting it): the
		// name stays the dev IdP's, not one made up from the address.
		if claims := text(t, signIn(t, browser, "alice"), "#claims"); !strings.Contains(claims, `"family_name": "Anderson"`) {
			t.Errorf("after a deprovision and re-provision the claims are:\n%s", claims)
		}
	})

	// A developer who deprovisioned a demo user and left the page (signed
	// out, closed the tab, restarted) has no Re-provision button left: the
	// next start puts the user back, as serve --dev calls RestoreDemoUsers.
	t.Run("the next start re-provisions a demo user left deprovisioned", func(t *testing.T) {
		browser := browsertest.New(t)
		tab := signIn(t, browser, "bob")
		if err := browsertest.Do(tab,
			chromedp.Click(chromedp.ID("deprovision")),
			chromedp.WaitVisible(chromedp.ID("live")),
		); err != nil {
			fail(t, tab, "deprovision", err)
		}
		restored, err := fr.dev.RestoreDemoUsers(context.Background())
		if err != nil || len(restored) != 1 || restored[0] != "bob@example.com" {
			t.Fatalf("RestoreDemoUsers = %v, %v; want [bob@example.com]", restored, err)
		}
		signIn(t, browsertest.New(t), "bob")
		if again, err := fr.dev.RestoreDemoUsers(context.Background()); err != nil || len(again) != 0 {
			t.Fatalf("RestoreDemoUsers with no one deprovisioned = %v, %v; want none", again, err)
		}
	})

	// consoleTenant signs the dev operator in to the console (from the
	// landing page) and opens the dev tenant's page.
	var lastStep int64
	consoleTenant := func(t *testing.T, browser context.Context) context.Context {
		t.Helper()
		// A code is accepted once: wait for the next step if this one was used.
		for time.Now().Unix()/30 <= lastStep {
			time.Sleep(time.Second)
		}
		lastStep = time.Now().Unix() / 30
		code, err := totp.GenerateCode(fr.op.TOTPSecret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tab := browsertest.NewTab(t, browser)
		if err := browsertest.Do(tab,
			chromedp.Navigate(fr.issuer+"/"),
			chromedp.Click(chromedp.CSS("#console")),
			chromedp.WaitVisible(chromedp.ID("email")),
			chromedp.SendKeys(chromedp.ID("email"), fr.op.Email),
			chromedp.SendKeys(chromedp.ID("password"), fr.op.Password),
			chromedp.SendKeys(chromedp.ID("code"), code),
			chromedp.Submit(chromedp.ID("code")),
			chromedp.WaitVisible(chromedp.CSS(`a[href="/console/tenants/`+fr.dev.TenantID+`"]`)),
			chromedp.Click(chromedp.CSS(`a[href="/console/tenants/`+fr.dev.TenantID+`"]`)),
			chromedp.WaitVisible(chromedp.ID("intent")),
		); err != nil {
			fail(t, tab, "console sign-in", err)
		}
		return tab
	}

	t.Run("portal links from the console and the landing page", func(t *testing.T) {
		browser := browsertest.New(t)
		tab := consoleTenant(t, browser)
		if err := browsertest.Do(tab,
			chromedp.SetValue(chromedp.ID("intent"), "dsync"),
			chromedp.Submit(chromedp.ID("intent")),
			chromedp.WaitVisible(chromedp.ID("portal-link")),
		); err != nil {
			fail(t, tab, "create portal link", err)
		}
		link, err := chromedp.Run(tab, chromedp.Value(chromedp.ID("portal-link")))
		if err != nil || !strings.HasPrefix(link, fr.issuer+"/portal/") {
			fail(t, tab, "portal link", errors.Join(err, errors.New("link "+link)))
		}
		// The tenant's admin opens it in their own browser.
		admin := browsertest.NewTab(t, browser)
		if err := browsertest.Do(admin, chromedp.Navigate(link), chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
			fail(t, admin, "open portal link", err)
		}
		at, _ := chromedp.Run(admin, chromedp.Location())
		if !strings.HasPrefix(at, fr.issuer+"/portal") || strings.Contains(at, "/link/") {
			fail(t, admin, "portal", errors.New("landed on "+at))
		}
		// A second opening is refused: the link was single-use.
		second := browsertest.NewTab(t, browser)
		if err := browsertest.Do(second, chromedp.Navigate(link), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
			fail(t, second, "reopen portal link", err)
		}
		if again, _ := chromedp.Run(second, chromedp.Location()); !strings.Contains(again, "/link/") {
			fail(t, second, "reused portal link", errors.New("opened again at "+again))
		}
		// The landing page's portal button makes a fresh link each time.
		fresh := browsertest.NewTab(t, browser)
		if err := browsertest.Do(fresh, chromedp.Navigate(fr.issuer+"/"), chromedp.Click(chromedp.ID("portal")),
			chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
			fail(t, fresh, "landing portal button", err)
		}
		if at, _ := chromedp.Run(fresh, chromedp.Location()); !strings.HasPrefix(at, fr.issuer+"/portal") || strings.Contains(at, "/link/") {
			fail(t, fresh, "landing portal", errors.New("landed on "+at))
		}
	})

	t.Run("console pauses the tenant", func(t *testing.T) {
		browser := browsertest.New(t)
		bob := signIn(t, browser, "bob")
		if active, _ := status(t, bob); !active {
			t.Fatal("bob's fresh access token does not introspect as active")
		}
		tab := consoleTenant(t, browser)
		if err := browsertest.Do(tab,
			chromedp.Click(chromedp.ID("pause")),
			chromedp.WaitVisible(chromedp.ID("confirm")),
			chromedp.Click(chromedp.ID("confirm")),
			chromedp.WaitVisible(chromedp.CSS(".notice")),
		); err != nil {
			fail(t, tab, "pause from the console", err)
		}
		if got := text(t, tab, "#tenant-status"); got != "paused" {
			fail(t, tab, "tenant status", errors.New(got))
		}
		active, logout := status(t, bob)
		if active {
			t.Fatal("bob's access token still introspects as active after the pause")
		}
		deadline := time.Now().Add(20 * time.Second)
		for logout == "" && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			_, logout = status(t, bob)
		}
		if logout == "" {
			t.Fatal("no back-channel logout reached the demo app after the pause")
		}
	})
}
