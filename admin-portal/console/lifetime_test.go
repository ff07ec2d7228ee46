package console_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/admin-portal/console"
)

// TestSessionLifetime: a session in use outlives the idle timeout (30
// minutes; each request more than a minute after the last one moves its
// idle window), and no session outlives its expiry, however busy. The
// harness's session expires an hour after sign-in; the ended session's
// cookie is cleared. A request that moves the idle window is served as
// the operator's: its page names them and carries the session's CSRF
// token.
func TestSessionLifetime(t *testing.T) {
	h := start(t, "")
	s := h.signIn(t)
	get := func() (*http.Response, string) {
		t.Helper()
		return h.get(t, s.token, "/console/tenants")
	}
	// Requests at 25, 50 and 59 minutes: never idle for 30.
	for _, step := range []time.Duration{25 * time.Minute, 25 * time.Minute, 9 * time.Minute} {
		h.clock.Advance(step)
		resp, body := get()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a session in use, %v after the last request: GET = %d, want 200", step, resp.StatusCode)
		}
		if !contains(body, s.email, `value="`+s.csrf+`"`) {
			t.Fatalf("%v after the last request: the page does not name %s or lacks the session's CSRF token:\n%s", step, s.email, body)
		}
	}
	h.clock.Advance(2 * time.Minute) // 61 minutes after sign-in, 2 after the last request
	resp, _ := get()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/signin") {
		t.Fatalf("session past its expiry: GET = %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The ended session's cookie is cleared, at once.
	var cleared bool
	for _, ck := range resp.Cookies() {
		if ck.Name == console.SessionCookie {
			cleared = ck.Value == "" && ck.MaxAge < 0 && strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0")
		}
	}
	if !cleared {
		t.Fatalf("ended session's cookie not cleared with Max-Age=0: %q", resp.Header.Values("Set-Cookie"))
	}
}

// TestSignedOutFormKeepsItsToken: the sign-in page reuses the browser's
// signed-out CSRF cookie rather than replacing it on every load, so a form
// opened in one tab still posts after the page was loaded in another.
func TestSignedOutFormKeepsItsToken(t *testing.T) {
	h := start(t, "")
	load := func(cookie *http.Cookie) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", h.url+"/console/signin", nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := csrfField.FindSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("sign-in page: status %d, no CSRF field", resp.StatusCode)
		}
		return resp, string(m[1])
	}
	first, tok := load(nil)
	var ck *http.Cookie
	for _, c := range first.Cookies() {
		if c.Name == "idb_console_csrf" {
			ck = c
		}
	}
	if ck == nil || ck.Value != tok {
		t.Fatalf("first load: cookie %v, form token %q", ck, tok)
	}
	second, tok2 := load(&http.Cookie{Name: ck.Name, Value: ck.Value})
	if tok2 != tok {
		t.Fatalf("second load: form token %q, want the cookie's %q", tok2, tok)
	}
	for _, c := range second.Cookies() {
		if c.Name == ck.Name {
			t.Fatalf("second load replaced the CSRF cookie: %v", c)
		}
	}
}
