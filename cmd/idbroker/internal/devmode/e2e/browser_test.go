package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/store"
)

// TestQuickStartInBrowser is the README's Quick start done by a real
// browser: the demo app's "Sign in", the broker's email page, the dev IdP,
// and back to the app's claims page — cookies, redirects, the auto-posting
// SAML form and all. Then the refusals a user can meet on the way: an email
// domain no tenant has verified, and a paused tenant, each shown as the
// generic error page with a reference id and never the IdP.
func TestQuickStartInBrowser(t *testing.T) {
	issuer, dev, st := startDev(t)
	shots := t.TempDir()

	// signIn goes from the demo app's home to the dev IdP's page as email,
	// or to whatever page the broker shows instead, in a browser of the
	// subtest's own: no session left by an earlier run, and no browser
	// whose bounded life the earlier subtests have used up on a slow
	// machine.
	signIn := func(t *testing.T, email string) context.Context {
		t.Helper()
		ctx := browsertest.NewTab(t, browsertest.New(t))
		if err := browsertest.Do(ctx,
			chromedp.Navigate(issuer+"/dev/app"),
			chromedp.Click(chromedp.CSS(`a[href="/dev/app/login"]`)),
			chromedp.WaitVisible(chromedp.ID("email")),
			chromedp.SendKeys(chromedp.ID("email"), email),
			chromedp.Submit(chromedp.ID("email")),
		); err != nil {
			browsertest.Screenshot(t, ctx, shots, "failed.png")
			t.Fatalf("sign in as %s: %v", email, err)
		}
		return ctx
	}

	t.Run("alice signs in", func(t *testing.T) {
		ctx := signIn(t, "alice@example.com")
		if err := browsertest.Do(ctx,
			chromedp.Click(chromedp.CSS(`button[name="user"][value="alice"]`)),
			chromedp.WaitVisible(chromedp.CSS("pre")),
		); err != nil {
			t.Fatalf("dev IdP → claims: %v (screenshot %s)", err, browsertest.Screenshot(t, ctx, shots, "failed.png"))
		}
		raw, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("pre")))
		if err != nil {
			t.Fatal(err)
		}
		at, _ := chromedp.Run(ctx, chromedp.Location())
		var claims map[string]any
		if err := json.Unmarshal([]byte(raw), &claims); err != nil {
			t.Fatalf("claims on %s: %v\n%s", at, err, raw)
		}
		sub, _ := claims["sub"].(string)
		tenant, _ := claims["tenant_id"].(string)
		if claims["email"] != "alice@example.com" || claims["connection_type"] != "saml" ||
			!strings.HasPrefix(sub, "usr_") || !strings.HasPrefix(tenant, "tnt_") || tenant != dev.TenantID {
			t.Fatalf("claims on %s = %v", at, claims)
		}
		if !strings.HasPrefix(at, issuer+"/dev/app") {
			t.Fatalf("landed on %s, want the demo app", at)
		}
		t.Logf("screenshot: %s", browsertest.Screenshot(t, ctx, shots, "claims.png"))
	})

	// Each refusal is the broker's generic page: a title, no detail, and
	// the request id to give the IT administrator.
	refused := func(t *testing.T, ctx context.Context, wantTitle string) {
		t.Helper()
		var title, ref string
		err := browsertest.Do(ctx,
			chromedp.WaitVisible(chromedp.CSS("p.ref code")),
			func(ctx context.Context, tg *chromedp.Target) (v chromedp.Void, err error) {
				title, err = chromedp.Text(chromedp.CSS("h1"))(ctx, tg)
				if err == nil {
					ref, err = chromedp.Text(chromedp.CSS("p.ref code"))(ctx, tg)
				}
				return v, err
			},
		)
		shot := browsertest.Screenshot(t, ctx, shots, strings.ReplaceAll(t.Name(), "/", "_")+".png")
		if err != nil {
			t.Fatalf("no error page: %v (screenshot %s)", err, shot)
		}
		if title != wantTitle || strings.TrimSpace(ref) == "" {
			t.Fatalf("error page: title %q, reference %q; want %q and a reference (screenshot %s)", title, ref, wantTitle, shot)
		}
		if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('button[name="user"]') === null`)); !ok {
			t.Fatal("the dev IdP's page is shown on a refusal")
		}
		t.Logf("screenshot: %s", shot)
	}

	t.Run("unknown domain", func(t *testing.T) {
		refused(t, signIn(t, "mallory@unknown.example"), "Single sign-on not set up")
	})

	t.Run("paused tenant", func(t *testing.T) {
		paused := store.TenantPaused
		if _, err := st.UpdateTenant(store.WithTenant(t.Context(), dev.TenantID), store.TenantUpdate{Status: &paused}); err != nil {
			t.Fatal(err)
		}
		refused(t, signIn(t, "alice@example.com"), "Organisation not active")
	})
}
