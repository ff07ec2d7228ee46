package broker_test

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestResponseModes: the code comes back by query (response_mode absent
// or query) or by an auto-submitted form (form_post); any other mode,
// fragment included, is refused with an error sent back to the registered
// redirect_uri and the browser never reaches the sign-in.
func TestResponseModes(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	for _, tc := range []struct {
		mode string
		ok   bool
	}{
		{"", true}, {"query", true}, {"form_post", true},
		{"fragment", false}, {"web_message", false},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			extra := url.Values{"login_hint": {"alice@acme.test"}}
			if tc.mode != "" {
				extra.Set("response_mode", tc.mode)
			}
			resp := a.authorize(t, browser(t), extra)
			switch {
			case tc.ok && tc.mode == "form_post":
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					t.Fatalf("form_post: status %d, type %q, want the auto-submitted form", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				body, _ := io.ReadAll(resp.Body)
				checkFormPost(t, resp.Header, string(body), a.Redirect, "code", "state")
			case tc.ok:
				code(t, resp)
			default:
				loc, err := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != http.StatusFound || err != nil || loc.Host != "app.example" {
					t.Fatalf("status %d, location %q: want a redirect back to the application", resp.StatusCode, resp.Header.Get("Location"))
				}
				q, _ := url.ParseQuery(loc.RawQuery + "&" + loc.Fragment)
				if q.Get("error") != "invalid_request" || q.Get("code") != "" {
					t.Fatalf("response_mode=%s answered %s, want error=invalid_request and no code", tc.mode, loc)
				}
			}
		})
	}
}

// TestPromptConsent: prompt=consent, which OpenID Connect Core §11 has
// relying parties send with offline_access, is met without a page (the
// operator registered the application), alone or beside login, and the
// refresh token comes; select_account (MSAL and others send it) goes back
// to the IdP to sign in and choose again, as login does, even with a live
// session; a prompt the broker cannot honour goes back to the application
// as invalid_request.
func TestPromptConsent(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	for _, prompt := range []string{"consent", "login consent"} {
		tok, _ := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@acme.test"},
			"prompt": {prompt}, "scope": {"openid offline_access"}})))
		if tok.RefreshToken == "" {
			t.Errorf("prompt=%s: no refresh token", prompt)
		}
	}
	b := browser(t)
	a.exchange(t, code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}})))
	begins := n.idp.Begins()
	a.exchange(t, code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}, "prompt": {"select_account"}})))
	if n.idp.Begins() != begins+1 {
		t.Errorf("prompt=select_account was answered from the session, not at the IdP")
	}
	for _, q := range []url.Values{{"prompt": {"create"}}, {"prompt": {"none select_account"}}} {
		q.Set("login_hint", "alice@acme.test")
		loc, err := a.authorize(t, browser(t), q).Location()
		if err != nil || loc.Host != "app.example" || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "st8" {
			t.Fatalf("prompt=%s: %v %v, want invalid_request at the application", q.Get("prompt"), loc, err)
		}
	}
}

// TestAuthorizeWithTheStoreDown: when the application cannot be read
// (the database is gone), /authorize answers the "unavailable" page, 503,
// and redirects nowhere: it neither trusts a redirect_uri it could not
// check nor tells the user the application sent a wrong one.
func TestAuthorizeWithTheStoreDown(t *testing.T) {
	n := sqliteNode(t)
	a := n.app(store.Application{})
	n.Store.(*store.DB).Close()
	// An application the broker has not cached yet, so it must ask the store.
	q := url.Values{"client_id": {store.NewID(store.PrefixApplication)}, "redirect_uri": {a.Redirect},
		"response_type": {"code"}, "scope": {"openid"}}
	resp, err := browser(t).Get(n.URL + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" ||
		!strings.Contains(string(body), "temporarily unavailable") {
		t.Fatalf("status %d, location %q, body %.200s: want the 503 unavailable page", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

// checkFormPost: a form_post answer posts the named fields to action, and
// its one script — what submits the form — is the one its
// Content-Security-Policy allows by hash (a hash that does not match
// leaves the user on a blank page in every browser).
func checkFormPost(t *testing.T, h http.Header, body, action string, fields ...string) {
	t.Helper()
	if !strings.Contains(body, `<form method="post" action="`+action+`">`) {
		t.Errorf("form_post page does not post to %s:\n%s", action, body)
	}
	for _, f := range fields {
		if !regexp.MustCompile(`<input type="hidden" name="` + f + `" value="[^"]+">`).MatchString(body) {
			t.Errorf("form_post page lacks a non-empty %s:\n%s", f, body)
		}
	}
	m := regexp.MustCompile(`<script>([^<]*)</script>`).FindAllStringSubmatch(body, -1)
	if len(m) != 1 {
		t.Fatalf("form_post page has %d scripts, want 1:\n%s", len(m), body)
	}
	sum := sha256.Sum256([]byte(m[0][1]))
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") ||
		!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("form_post CSP %q does not allow exactly its script %q", csp, m[0][1])
	}
	if h.Get("Cache-Control") != "no-store" {
		t.Errorf("form_post Cache-Control = %q, want no-store", h.Get("Cache-Control"))
	}
}

// TestLoopbackRedirectAnyPort: a native app (public, PKCE) registers its
// loopback redirect URI once and signs in on whatever port it got from
// the system (RFC 8252 §7.3): the code comes to that port, and is
// redeemed with that exact redirect_uri. A confidential application's
// loopback URI still matches exactly.
func TestLoopbackRedirectAnyPort(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	cli := n.app(store.Application{Public: true, RedirectURIs: []string{"http://127.0.0.1/callback"}})
	web := n.app(store.Application{RedirectURIs: []string{"http://127.0.0.1/callback"}})
	const asked = "http://127.0.0.1:53124/callback"
	// The test broker listens on 127.0.0.1 too: stop at the app's path.
	b := browser(t)
	b.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if r.URL.Path == "/callback" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	verifier, challenge := pkce()
	cli.Redirect = asked
	resp := cli.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}})
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, asked+"?") {
		t.Fatalf("status %d, location %q: want the code sent to %s", resp.StatusCode, loc, asked)
	}
	c := code(t, resp)
	redeem := func(redirect string) (int, map[string]any) {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {redirect},
			"client_id": {cli.ID}, "code_verifier": {verifier}}
		st, _, body := oauthCall{"POST", "/oauth/token", "application/x-www-form-urlencoded", form.Encode(), "", "", ""}.do(t, n.URL)
		return st, body
	}
	if st, body := redeem("http://127.0.0.1:53125/callback"); st != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("code redeemed with another port: %d %v, want 400 invalid_grant", st, body)
	}
	// That attempt spent the code: sign in again and redeem it rightly.
	verifier, challenge = pkce()
	c = code(t, cli.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
	if st, body := redeem(asked); st != http.StatusOK || body["id_token"] == nil {
		t.Fatalf("code redeemed with the redirect_uri it was sent to: %d %v, want 200 with an id_token", st, body)
	}

	web.Redirect = asked
	resp = web.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}})
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("confidential app, another port: status %d, location %q; want the error page", resp.StatusCode, resp.Header.Get("Location"))
	}
}
