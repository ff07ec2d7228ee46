package broker_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// setCookies records every Set-Cookie the broker sends a browser, with
// the attributes a cookie jar forgets.
type setCookies struct {
	next http.RoundTripper
	got  []*http.Cookie
}

func (s *setCookies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err == nil {
		s.got = append(s.got, resp.Cookies()...)
	}
	return resp, err
}

// TestSSOCookieAttributes: the SSO cookie is HttpOnly (no script reads
// it), SameSite=Lax (sent on the top-level navigations a login is, not on
// cross-site subrequests), scoped to the whole broker, and not Secure on
// http://localhost (where a Secure cookie would never come back). The
// harness's apps discover the broker at the test server's URL, so the
// https case (Secure) is not driven end to end here.
func TestSSOCookieAttributes(t *testing.T) {
	mem := sessions.NewMemory()
	n := newNode(t, storetest.SQLite(t), mem, mem)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	b := browser(t)
	rec := &setCookies{next: http.DefaultTransport}
	b.Transport = rec
	code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}}))

	var sso *http.Cookie
	for _, ck := range rec.got {
		if ck.Name == broker.SessionCookie && ck.Value != "" {
			sso = ck
		}
	}
	if sso == nil {
		t.Fatalf("no %s cookie set; got %v", broker.SessionCookie, rec.got)
	}
	if !sso.HttpOnly {
		t.Error("SSO cookie is not HttpOnly")
	}
	if sso.SameSite != http.SameSiteLaxMode {
		t.Errorf("SSO cookie SameSite = %v, want Lax", sso.SameSite)
	}
	if sso.Path != "/" {
		t.Errorf("SSO cookie Path = %q, want /", sso.Path)
	}
	if sso.Secure {
		t.Error("SSO cookie is Secure on http://localhost: the browser would never send it back")
	}
}
