package portal

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/idbroker/idbroker/store"
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

// TestCookieAttributes: every cookie the portal sets or clears — the
// session a link opens, the flash a change leaves, their removal — is
// HttpOnly, SameSite=Lax (the link arrives by a cross-site top-level
// navigation from the vendor's app, so Strict would drop the session it
// just opened), scoped to /portal, and Secure exactly when the issuer is
// https.
func TestCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"http on localhost", false}, {"https issuer", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessOn(t, tc.tls)
			rec := &cookieRecorder{next: h.transport}
			h.transport = rec
			ctx := h.tenant("Acme", "acme.example")
			c := h.open(h.link(ctx, store.IntentDomainVerification))
			_, page := get(t, c, h.url+"/portal/domains")
			resp, _ := post(t, c, h.url+"/portal/domains", url.Values{"csrf_token": {csrfOf(t, page)}, "domain": {"eu.acme.example"}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("add domain = %d", resp.StatusCode)
			}
			loc, _ := resp.Location()
			_, page = get(t, c, loc.String()) // shows the flash, and clears it
			if resp, _ := post(t, c, h.url+"/portal/signout", url.Values{"csrf_token": {csrfOf(t, page)}}); resp.StatusCode != 200 {
				t.Fatalf("sign out = %d", resp.StatusCode)
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
				if ck.SameSite != http.SameSiteLaxMode {
					t.Errorf("%s: SameSite = %v, want Lax", what, ck.SameSite)
				}
				if ck.Path != Path {
					t.Errorf("%s: Path = %q, want %q", what, ck.Path, Path)
				}
				if ck.Secure != tc.tls {
					t.Errorf("%s: Secure = %v with issuer %s", what, ck.Secure, h.url)
				}
			}
			for _, want := range []string{sessionCookie + " set", sessionCookie + " cleared", flashCookie + " set", flashCookie + " cleared"} {
				if !seen[want] {
					t.Errorf("the flow never had %s; saw %v", want, seen)
				}
			}
		})
	}
}
