package broker_test

import (
	"context"
	"encoding/json"
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

// TestSSOCookieAttributes: the SSO cookie, as a login sets it and a
// logout clears it, is HttpOnly (no script reads it), SameSite=Lax (sent
// on the top-level navigations a login is, not on cross-site
// subrequests), scoped to the whole broker, and Secure exactly when the
// issuer is https — not on http://localhost, where a Secure cookie would
// never come back — and then named with the __Host- prefix, so that no
// sibling subdomain can plant a session of its own in the browser (a
// login CSRF: the user signed in to applications as the attacker). The
// https case runs over real TLS.
func TestSSOCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"http on localhost", false}, {"https issuer", true}} {
		t.Run(tc.name, func(t *testing.T) {
			mem := sessions.NewMemory()
			var n *node
			if tc.tls {
				n = newTLSNode(t, storetest.SQLite(t), mem, mem)
			} else {
				n = newNode(t, storetest.SQLite(t), mem, mem)
			}
			n.tenant("Acme", "acme.test", alice("acme.test"))
			a := n.app(store.Application{})
			b := browser(t)
			rec := &setCookies{next: n.srv.Client().Transport}
			b.Transport = rec
			code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@acme.test"}}))
			confirmLogout(t, n, b)

			name, loginName := broker.SessionCookie, "idb_login"
			if tc.tls {
				name, loginName = broker.SecureSessionCookie, "__Host-idb_login"
			}
			seen := map[string]bool{}
			for _, ck := range rec.got {
				what := "set"
				switch ck.Name {
				case name:
				case loginName:
					// The cookie that binds a sign-in to its browser: the
					// same attributes, so that the IdP's redirect back (a
					// top-level GET) carries it.
					what = "login binding"
				default:
					t.Errorf("unexpected cookie %s", ck.Name)
					continue
				}
				if ck.Value == "" {
					what = "cleared"
					// Max-Age=0 (MaxAge < 0 once parsed) deletes it;
					// anything else leaves an empty cookie behind.
					if ck.MaxAge >= 0 {
						t.Errorf("cleared SSO cookie has Max-Age %d: the browser keeps it", ck.MaxAge)
					}
				}
				seen[what] = true
				if !ck.HttpOnly {
					t.Errorf("SSO cookie %s: not HttpOnly", what)
				}
				if what == "login binding" && tc.tls {
					// A SAML IdP's answer is a cross-site POST: only a
					// SameSite=None cookie comes with it.
					if ck.SameSite != http.SameSiteNoneMode {
						t.Errorf("login binding cookie over https: SameSite = %v, want None", ck.SameSite)
					}
				} else if ck.SameSite != http.SameSiteLaxMode {
					t.Errorf("SSO cookie %s: SameSite = %v, want Lax", what, ck.SameSite)
				}
				if ck.Path != "/" {
					t.Errorf("SSO cookie %s: Path = %q, want /", what, ck.Path)
				}
				if ck.Secure != tc.tls {
					t.Errorf("SSO cookie %s: Secure = %v at %s", what, ck.Secure, n.URL)
				}
			}
			if !seen["set"] || !seen["cleared"] || !seen["login binding"] {
				t.Fatalf("login and logout did not set and clear %s, or set %s: %v", name, loginName, rec.got)
			}
		})
	}
}

// TestSAMLAnswerInAnotherBrowser: on an https issuer, a SAML IdP's answer
// to a sign-in (an auto-posted form) completes only in the browser that
// started it, as an OIDC callback does: an attacker's own answer, posted
// from the victim's browser, must not sign the victim in to the
// attacker's account.
func TestSAMLAnswerInAnotherBrowser(t *testing.T) {
	mem := sessions.NewMemory()
	n := newTLSNode(t, storetest.SQLite(t), mem, mem)
	tn := n.tenant("Acme", "acme.test", alice("acme.test"))
	conn, err := n.Store.CreateConnection(store.WithTenant(context.Background(), tn.ID),
		store.Connection{Type: "saml", Name: "saml", Status: store.ConnectionActive, Config: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	n.idp.mu.Lock()
	n.idp.profiles[conn.ID] = alice("acme.test")
	n.idp.mu.Unlock()
	a := n.app(store.Application{})
	tlsBrowser := func() *http.Client {
		b := browser(t)
		b.Transport = n.srv.Client().Transport
		return b
	}
	// atIdP runs a browser up to the IdP's answer.
	atIdP := func(b *http.Client) string {
		follow := b.CheckRedirect
		b.CheckRedirect = func(r *http.Request, via []*http.Request) error {
			if r.URL.Path == "/test-idp" {
				return http.ErrUseLastResponse
			}
			return follow(r, via)
		}
		defer func() { b.CheckRedirect = follow }()
		loc, err := a.authorize(t, b, url.Values{"connection": {conn.ID}}).Location()
		if err != nil || loc.Path != "/test-idp" {
			t.Fatalf("not at the IdP: %v %v", loc, err)
		}
		return loc.String()
	}
	answer := atIdP(tlsBrowser())
	resp, err := tlsBrowser().Get(answer)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		loc, _ := resp.Location()
		t.Fatalf("the answer in another browser: %d %v; want a refusal", resp.StatusCode, loc)
	}
	b := tlsBrowser()
	answer = atIdP(b)
	if code(t, func() *http.Response {
		resp, err := b.Get(answer)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}()) == "" {
		t.Fatal("no code in the browser that started the sign-in")
	}
}
