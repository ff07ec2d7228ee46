package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"testing"

	"github.com/pquerna/otp/totp"

	"github.com/idbroker/idbroker/admin-portal/console"
)

// cookieRecorder keeps every Set-Cookie a client receives, with the
// attributes a cookie jar forgets.
type cookieRecorder struct {
	next http.RoundTripper
	got  []*http.Cookie
}

func (r *cookieRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		r.got = append(r.got, resp.Cookies()...)
	}
	return resp, err
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// TestCookieAttributes: every cookie the console sets or clears on a
// whole visit — the signed-out CSRF cookie, the session sign-in starts,
// their removal at sign-in and sign-out — is HttpOnly and SameSite=Strict
// (the console is never entered from another site). On an https issuer,
// served over real TLS, it is Secure and __Host- prefixed (Path=/, no
// Domain, as browsers require of the prefix); on http on localhost it
// keeps its bare name, scoped to /console.
func TestCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		name         string
		tls          bool
		prefix, path string
	}{{"http on localhost", false, "", console.Path}, {"https issuer", true, "__Host-", "/"}} {
		t.Run(tc.name, func(t *testing.T) {
			h := startOn(t, "", tc.tls)
			dev, _, err := console.SeedDevOperator(context.Background(), h.db)
			if err != nil {
				t.Fatal(err)
			}
			rec := &cookieRecorder{next: h.transport}
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Transport: rec, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			page := func(resp *http.Response, err error) (int, string) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			csrf := func(body string) string {
				t.Helper()
				m := csrfField.FindStringSubmatch(body)
				if m == nil {
					t.Fatalf("no CSRF field in:\n%s", body)
				}
				return m[1]
			}

			_, body := page(c.Get(h.url + "/console/signin"))
			code, err := totp.GenerateCode(dev.TOTPSecret, h.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if st, body := page(c.PostForm(h.url+"/console/signin", url.Values{"csrf_token": {csrf(body)}, "email": {dev.Email}, "password": {dev.Password}, "code": {code}})); st != http.StatusSeeOther {
				t.Fatalf("sign in = %d:\n%s", st, body)
			}
			st, body := page(c.Get(h.url + "/console/tenants"))
			if st != http.StatusOK {
				t.Fatalf("signed-in page = %d", st)
			}
			if st, _ := page(c.PostForm(h.url+"/console/signout", url.Values{"csrf_token": {csrf(body)}})); st != http.StatusSeeOther {
				t.Fatalf("sign out = %d", st)
			}

			seen := map[string]bool{}
			for _, ck := range rec.got {
				what := ck.Name + " set"
				if ck.MaxAge < 0 {
					what = ck.Name + " cleared"
				}
				seen[what] = true
				if !ck.HttpOnly {
					t.Errorf("%s: not HttpOnly", what)
				}
				if ck.SameSite != http.SameSiteStrictMode {
					t.Errorf("%s: SameSite = %v, want Strict", what, ck.SameSite)
				}
				if ck.Path != tc.path {
					t.Errorf("%s: Path = %q, want %q", what, ck.Path, tc.path)
				}
				if ck.Domain != "" {
					t.Errorf("%s: Domain = %q, want none", what, ck.Domain)
				}
				if ck.Secure != tc.tls {
					t.Errorf("%s: Secure = %v at %s", what, ck.Secure, h.url)
				}
			}
			for _, want := range []string{tc.prefix + "idb_console_csrf set", tc.prefix + "idb_console_csrf cleared", tc.prefix + console.SessionCookie + " set", tc.prefix + console.SessionCookie + " cleared"} {
				if !seen[want] {
					t.Errorf("the visit never had %s; saw %v", want, seen)
				}
			}
		})
	}
}
