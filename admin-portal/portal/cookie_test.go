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
// HttpOnly and SameSite=Lax (the link arrives by a cross-site top-level
// navigation from the vendor's app, so Strict would drop the session it
// just opened). On an https issuer it is Secure and __Host- prefixed
// (Path=/, as browsers require of the prefix); on http on localhost it
// keeps its bare name, scoped to /portal.
func TestCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		name         string
		tls          bool
		prefix, path string
	}{{"http on localhost", false, "", Path}, {"https issuer", true, "__Host-", "/"}} {
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
				if ck.Path != tc.path {
					t.Errorf("%s: Path = %q, want %q", what, ck.Path, tc.path)
				}
				if ck.Domain != "" {
					t.Errorf("%s: Domain = %q, want none", what, ck.Domain)
				}
				if ck.Secure != tc.tls {
					t.Errorf("%s: Secure = %v with issuer %s", what, ck.Secure, h.url)
				}
			}
			for _, want := range []string{tc.prefix + sessionCookie + " set", tc.prefix + sessionCookie + " cleared", tc.prefix + flashCookie + " set", tc.prefix + flashCookie + " cleared"} {
				if !seen[want] {
					t.Errorf("the flow never had %s; saw %v", want, seen)
				}
			}
		})
	}
}

// TestBareCookieIsNoSessionOnHTTPS: on an https issuer only the
// __Host- prefixed session cookie counts. The same value under the bare
// name — which a sibling subdomain or a plain http answer can plant, to
// have an admin work in the planter's tenant — is an ended session.
func TestBareCookieIsNoSessionOnHTTPS(t *testing.T) {
	h := newHarnessOn(t, true)
	ctx := h.tenant("Acme", "acme.example")
	c := h.client()
	resp, _ := get(t, c, h.link(ctx, store.IntentDomainVerification))
	var ck *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == hostPrefix+sessionCookie {
			ck = k
		}
	}
	if ck == nil {
		t.Fatalf("no %s%s cookie in %v", hostPrefix, sessionCookie, resp.Cookies())
	}
	for _, tc := range []struct {
		name string
		want int
	}{{sessionCookie, http.StatusUnauthorized}, {hostPrefix + sessionCookie, http.StatusOK}} {
		req, _ := http.NewRequest("GET", h.url+"/portal/domains", nil)
		req.AddCookie(&http.Cookie{Name: tc.name, Value: ck.Value})
		resp, err := (&http.Client{Transport: h.transport}).Do(req)
		resp, body := readPage(t, resp, err)
		if resp.StatusCode != tc.want {
			t.Errorf("session under %s = %d, want %d:\n%s", tc.name, resp.StatusCode, tc.want, body)
		}
	}
}
