package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestNoticesAreNeverTextFromTheURL: the notice a page shows after a
// redirect comes from the console's own list, chosen by key. A link that
// carries its own words (a phishing "call this number") shows nothing on
// the console's pages, signed in or out, and an id that is not one in form
// is not shown either.
func TestNoticesAreNeverTextFromTheURL(t *testing.T) {
	h := start(t, "")
	s := h.signIn(t)
	const planted = "Security alert: call +1-555-0100 now"
	for _, tc := range []struct {
		name, cookie, path, want string
	}{
		{"planted text, signed out", "", "/console/signin?notice=" + url.QueryEscape(planted), ""},
		{"planted text, signed in", s.token, "/console/tenants?notice=" + url.QueryEscape(planted), ""},
		{"a key, signed out", "", "/console/signin?notice=signed_out", "You are signed out."},
		{"a key, signed in", s.token, "/console/tenants?notice=recovery_code", "You signed in with a recovery code"},
		{"a key naming an id", s.token, "/console/logouts?notice=logout_queued&id=blo_01M96Z3SRJAP2X0SG834F02X19", "Logout blo_01M96Z3SRJAP2X0SG834F02X19 queued again."},
		{"a key naming words", s.token, "/console/logouts?notice=logout_queued&id=" + url.QueryEscape(planted), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.get(t, tc.cookie, tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d", tc.path, resp.StatusCode)
			}
			if strings.Contains(body, "call +1") || strings.Contains(body, "call &#43;1") {
				t.Fatalf("GET %s shows the URL's text:\n%s", tc.path, body)
			}
			has := strings.Contains(body, `class="notice"`)
			switch {
			case tc.want == "" && has:
				t.Errorf("GET %s shows a notice:\n%s", tc.path, body)
			case tc.want != "" && !strings.Contains(body, tc.want):
				t.Errorf("GET %s: notice %q missing:\n%s", tc.path, tc.want, body)
			}
		})
	}
}
