package broker_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestRoutingHintForms: a login_hint or domain_hint routes to the tenant
// that verified the domain whatever form it is written in (case, a
// trailing dot, spaces, full-width letters, punycode), and only to the
// tenant of that exact domain: not to the owner of a domain it ends with
// or one of its subdomains (WorkOS: exact verified domains only).
func TestRoutingHintForms(t *testing.T) {
	n := sqliteNode(t)
	acme := n.tenant("Acme", "acme.test", alice("acme.test"))
	n.tenant("NotAcme", "notacme.test", alice("notacme.test"))
	a := n.app(store.Application{})
	for _, tc := range []struct {
		name   string
		params url.Values
		want   string // tenant, "" for the no-connection page, or "email page"
	}{
		{"upper case", url.Values{"login_hint": {"Alice@ACME.test"}}, acme.ID},
		{"trailing dot", url.Values{"login_hint": {"alice@acme.test."}}, acme.ID},
		{"spaces", url.Values{"login_hint": {" alice@acme.test "}}, acme.ID},
		{"full-width", url.Values{"login_hint": {"alice@ａｃｍｅ.test"}}, acme.ID},
		{"ideographic full stop", url.Values{"login_hint": {"alice@acme.test\u3002"}}, acme.ID},
		{"two trailing dots: no address", url.Values{"login_hint": {"alice@acme.test.."}}, "email page"},
		{"Cyrillic look-alike", url.Values{"domain_hint": {"\u0430cme.test"}}, ""},
		{"plus tag", url.Values{"login_hint": {"alice+crm@acme.test"}}, acme.ID},
		{"quoted local part", url.Values{"login_hint": {`"alice@home"@acme.test`}}, acme.ID},
		{"domain_hint upper case and dot", url.Values{"domain_hint": {"ACME.Test."}}, acme.ID},
		{"domain_hint spaces", url.Values{"domain_hint": {" acme.test "}}, acme.ID},
		{"tenant and a hint in another form", url.Values{"tenant": {acme.ID}, "login_hint": {"ALICE@acme.test."}}, acme.ID},
		{"subdomain", url.Values{"login_hint": {"alice@eu.acme.test"}}, ""},
		{"suffix of another", url.Values{"domain_hint": {"cme.test"}}, ""},
		{"parent", url.Values{"domain_hint": {"test"}}, ""},
		{"domain_hint not a domain", url.Values{"domain_hint": {"acme_test.com"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := a.authorize(t, browser(t), tc.params)
			if tc.want == "email page" {
				if resp.StatusCode != 200 || resp.Request.URL.Path != broker.PathLogin {
					t.Fatalf("status %d at %s, want the email page", resp.StatusCode, resp.Request.URL)
				}
				return
			}
			if tc.want == "" {
				if resp.StatusCode != 404 {
					t.Fatalf("status %d, want the 404 no-connection page", resp.StatusCode)
				}
				return
			}
			_, c := a.exchange(t, code(t, resp))
			if c.TenantID != tc.want {
				t.Fatalf("signed in to %s, want %s", c.TenantID, tc.want)
			}
		})
	}
}

// TestRoutingInternationalisedForms: a tenant's internationalised domain
// routes in every form a person or application writes it (Unicode,
// punycode, the ü decomposed as NFD, full-width), and never to the tenant
// of the ASCII look-alike without the umlaut, nor from a Cyrillic
// look-alike or an invisible character's sibling to another tenant.
func TestRoutingInternationalisedForms(t *testing.T) {
	n := sqliteNode(t)
	umlaut := n.tenant("Bücher", "bücher.test", alice("bücher.test"))
	plain := n.tenant("Bucher", "bucher.test", alice("bucher.test"))
	acme := n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	for _, tc := range []struct {
		name, hint string
		want       string // tenant, "" for the 404 page
	}{
		{"Unicode", "alice@bücher.test", umlaut.ID},
		{"punycode", "alice@xn--bcher-kva.test", umlaut.ID},
		{"punycode in capitals", "alice@XN--BCHER-KVA.TEST", umlaut.ID},
		{"NFD", "alice@bu\u0308cher.test", umlaut.ID},
		{"Unicode capitals", "alice@BÜCHER.test", umlaut.ID},
		{"full-width", "alice@ｂüｃｈｅｒ.test", umlaut.ID},
		{"no umlaut", "alice@bucher.test", plain.ID},
		{"Cyrillic a", "alice@\u0430cme.test", ""},
		{"Cyrillic a, punycode", "alice@xn--cme-5cd.test", ""},
		// UTS #46 removes a zero-width space, as browsers do: the domain
		// is the one it reads as, the same tenant's.
		{"zero-width space", "alice@ac\u200bme.test", acme.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := a.authorize(t, browser(t), url.Values{"login_hint": {tc.hint}})
			if tc.want == "" {
				if resp.StatusCode != 404 {
					t.Fatalf("status %d, want the 404 no-connection page", resp.StatusCode)
				}
				return
			}
			_, c := a.exchange(t, code(t, resp))
			if c.TenantID != tc.want {
				t.Fatalf("signed in to %s, want %s", c.TenantID, tc.want)
			}
		})
	}
}

// TestRoutingWrappedAddresses: a login_hint, or what a person pastes into
// the work-email page, is often an address wrapped as mail clients copy
// it ("Alice Lee <alice@acme.test>") or as a mailto: link. The address
// inside routes, and only it: a display name that reads as another
// tenant's address routes nothing of that tenant. The IdP is sent the
// bare address as stored (no wrapping, spaces or trailing dot, which an
// IdP would show in its sign-in box or fail to find), and a session is
// reused for a hint naming its user however the hint is wrapped.
func TestRoutingWrappedAddresses(t *testing.T) {
	n := sqliteNode(t)
	acme := n.tenant("Acme", "acme.test", alice("acme.test"))
	other := n.tenant("Other", "other.test", alice("other.test"))
	a := n.app(store.Application{})
	for _, tc := range []struct {
		name, hint string
		want       string // tenant, "" for the email page
		sent       string // the IdP's login hint
	}{
		{"mailto", "mailto:Alice@ACME.test", acme.ID, "alice@acme.test"},
		{"display name", "Alice Liddell <alice@acme.test>", acme.ID, "alice@acme.test"},
		{"quoted display name", `"Liddell, Alice" <Alice@acme.test.>`, acme.ID, "alice@acme.test"},
		{"angle brackets", "<mailto:alice@acme.test>", acme.ID, "alice@acme.test"},
		{"spaces and a trailing dot", " ALICE@ACME.TEST. ", acme.ID, "alice@acme.test"},
		// As typed with a Japanese input method left in full-width mode.
		{"full-width throughout", "ａｌｉｃｅ＠ａｃｍｅ．ｔｅｓｔ", acme.ID, "alice@acme.test"},
		{"full-width at sign", "Alice＠acme.test", acme.ID, "alice@acme.test"},
		{"display name of acme, address of other", "alice@acme.test <alice@other.test>", other.ID, "alice@other.test"},
		{"two addresses", "alice@acme.test, alice@other.test", "", ""},
		// The domain routes; the IdP is sent no hint it would show as is.
		{"unclosed bracket", "Alice <alice@acme.test", acme.ID, ""},
		{"quoted local part", `"alice liddell"@acme.test`, acme.ID, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, via := range []string{"login_hint", "email page"} {
				b := browser(t)
				var resp *http.Response
				if via == "login_hint" {
					resp = a.authorize(t, b, url.Values{"login_hint": {tc.hint}})
				} else {
					page := a.authorize(t, b, nil)
					var err error
					resp, err = b.PostForm(n.URL+broker.PathLogin, url.Values{"id": {page.Request.URL.Query().Get("id")}, "email": {tc.hint}})
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
				}
				if tc.want == "" {
					if loc, _ := resp.Location(); loc != nil || resp.Request.URL.Path != broker.PathLogin {
						t.Fatalf("%s: status %d at %s (to %v), want the email page", via, resp.StatusCode, resp.Request.URL, loc)
					}
					continue
				}
				_, c := a.exchange(t, code(t, resp))
				if c.TenantID != tc.want || n.idp.LastHint() != tc.sent {
					t.Fatalf("%s: signed in to %s with the IdP sent %q; want %s and %q", via, c.TenantID, n.idp.LastHint(), tc.want, tc.sent)
				}
				if tc.sent == "" {
					continue
				}
				// The browser's session is this user's: a hint naming them,
				// wrapped, is answered from it.
				begins := n.idp.Begins()
				if _, c2 := a.exchange(t, code(t, a.authorize(t, b, url.Values{"login_hint": {tc.hint}, "prompt": {"none"}}))); c2.Sub != c.Sub || n.idp.Begins() != begins {
					t.Fatalf("%s: prompt=none with the same hint: sub %s (want %s), IdP begins %d→%d", via, c2.Sub, c.Sub, begins, n.idp.Begins())
				}
			}
		})
	}
}

// TestRoutingDomainHintNotADomain: beside a tenant or connection, a
// domain_hint that is no domain name is a hint that disagrees (400), not
// one dropped in favour of the others.
func TestRoutingDomainHintNotADomain(t *testing.T) {
	n := sqliteNode(t)
	acme := n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	for _, params := range []url.Values{
		{"tenant": {acme.ID}, "domain_hint": {"acme_test.com"}},
		{"tenant": {acme.ID}, "domain_hint": {"acme.test/x"}},
		{"connection": {acme.ConnID}, "domain_hint": {"acme..test"}},
		{"tenant": {acme.ID}, "domain_hint": {"alice@acme.test"}},
	} {
		if resp := a.authorize(t, browser(t), params); resp.StatusCode != 400 {
			t.Errorf("%v: status %d, want 400", params, resp.StatusCode)
		}
	}
	if n.idp.Begins() != 0 {
		t.Fatalf("%d upstream logins began", n.idp.Begins())
	}
}

// TestSSOSessionNotReusedAcrossTenants: a browser signed in to tenant A
// is never answered from that session for a request that routes to
// tenant B, however B is named; with prompt=none that is login_required,
// without it the sign-in goes to B's IdP and ends as B's user. A request
// whose hints disagree is refused, session or not.
func TestSSOSessionNotReusedAcrossTenants(t *testing.T) {
	n := sqliteNode(t)
	ta := n.tenant("A", "a.test", alice("a.test"))
	tb := n.tenant("B", "b.test", alice("b.test"))
	a := n.app(store.Application{})
	b := browser(t)
	_, ca := a.exchange(t, code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@a.test"}})))
	if ca.TenantID != ta.ID {
		t.Fatalf("signed in to %s", ca.TenantID)
	}
	toB := []url.Values{
		{"tenant": {tb.ID}},
		{"connection": {tb.ConnID}},
		{"domain_hint": {"b.test"}},
		{"login_hint": {"alice@b.test"}},
		{"login_hint": {"ALICE@B.TEST."}},
	}
	for _, q := range toB {
		q := cloneValues(q)
		q.Set("prompt", "none")
		loc, err := a.authorize(t, b, q).Location()
		if err != nil || loc.Query().Get("error") != "login_required" {
			t.Errorf("%v: %v %v, want login_required", q, loc, err)
		}
	}
	for _, q := range toB {
		begins := n.idp.Begins()
		_, c := a.exchange(t, code(t, a.authorize(t, b, cloneValues(q))))
		if n.idp.Begins() != begins+1 || c.TenantID != tb.ID || c.Sub == ca.Sub {
			t.Errorf("%v: tenant %s sub %s (A's %s), IdP begins %d→%d: want B's IdP and user", q, c.TenantID, c.Sub, ca.Sub, begins, n.idp.Begins())
		}
		// Back to A's session for the next request.
		a.exchange(t, code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@a.test"}, "prompt": {"login"}})))
	}
	for _, q := range []url.Values{
		{"tenant": {ta.ID}, "login_hint": {"alice@b.test"}},
		{"tenant": {ta.ID}, "domain_hint": {"b.test"}},
		{"connection": {ta.ConnID}, "tenant": {tb.ID}},
		{"connection": {ta.ConnID}, "login_hint": {"alice@b.test"}},
		{"domain_hint": {"a.test"}, "login_hint": {"alice@b.test"}},
		{"tenant": {ta.ID}, "domain_hint": {"a_test.com"}},
	} {
		for _, none := range []bool{false, true} {
			q := cloneValues(q)
			if none {
				q.Set("prompt", "none")
			}
			begins := n.idp.Begins()
			resp := a.authorize(t, b, q)
			// prompt=none gets login_required (the session does not
			// answer it); without it the hints' refusal page.
			if loc, err := resp.Location(); none && (err != nil || loc.Query().Get("error") != "login_required") {
				t.Errorf("%v: %v %v, want login_required", q, loc, err)
			} else if !none && resp.StatusCode != 400 {
				t.Errorf("%v: status %d, want 400", q, resp.StatusCode)
			}
			if n.idp.Begins() != begins {
				t.Errorf("%v: an upstream login began", q)
			}
		}
	}
}

// TestSSOSessionHintInAnotherForm: a login_hint naming the session's own
// user in another form of the address (case, punycode or Unicode domain,
// a trailing dot) is answered from the session; one naming a neighbour's
// address is not.
func TestSSOSessionHintInAnotherForm(t *testing.T) {
	n := sqliteNode(t)
	prof := alice("bücher.test")
	n.tenant("Bücher", "bücher.test", prof)
	a := n.app(store.Application{})
	b := browser(t)
	_, c1 := a.exchange(t, code(t, a.authorize(t, b, url.Values{"login_hint": {"alice@bücher.test"}})))
	for _, hint := range []string{"alice@xn--bcher-kva.test", "ALICE@BÜCHER.test.", " alice@bücher.test"} {
		begins := n.idp.Begins()
		_, c := a.exchange(t, code(t, a.authorize(t, b, url.Values{"login_hint": {hint}, "prompt": {"none"}})))
		if n.idp.Begins() != begins || c.SID != c1.SID {
			t.Errorf("%q: not answered from the session", hint)
		}
	}
	for _, hint := range []string{"alice+x@bücher.test", "bob@xn--bcher-kva.test"} {
		loc, err := a.authorize(t, b, url.Values{"login_hint": {hint}, "prompt": {"none"}}).Location()
		if err != nil || loc.Query().Get("error") != "login_required" {
			t.Errorf("%q: %v %v, want login_required", hint, loc, err)
		}
	}
	// The session's user is stored with the address in one form.
	u, err := n.Store.User(store.WithTenant(context.Background(), c1.TenantID), c1.Sub)
	if err != nil || u.Email != "alice@bücher.test" {
		t.Fatalf("stored %q %v", u.Email, err)
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// TestRoutingRefusalLogged: the page of a sign-in that could not be
// routed shows only a reference; a log line under that reference says
// why, for the operator the user gives it to, with no detail on the page.
func TestRoutingRefusalLogged(t *testing.T) {
	logs := &syncBuffer{}
	mem := sessions.NewMemory()
	n := newNodeServer(t, storetest.SQLite(t), mem, mem, "", httpserver.Config{}, func(c *broker.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ta := n.tenant("A", "a.test", alice("a.test"))
	n.tenant("B", "b.test", alice("b.test"))
	a := n.app(store.Application{})
	for _, tc := range []struct {
		params url.Values
		status int
		reason string
	}{
		{url.Values{"tenant": {ta.ID}, "login_hint": {"bob@b.test"}}, 400, "b.test belongs to another tenant"},
		{url.Values{"tenant": {ta.ID}, "domain_hint": {"nobody.test"}}, 400, "nobody.test is not a verified domain of the tenant"},
		{url.Values{"login_hint": {"bob@nobody.test"}}, 404, "no connection"},
	} {
		resp := a.authorize(t, browser(t), tc.params)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ref := resp.Header.Get(echo.HeaderXRequestID)
		if resp.StatusCode != tc.status || ref == "" || !strings.Contains(string(body), ref) {
			t.Fatalf("%v: status %d, reference %q on the page: %v", tc.params, resp.StatusCode, ref, strings.Contains(string(body), ref))
		}
		if strings.Contains(string(body), "b.test") || strings.Contains(string(body), "nobody.test") {
			t.Errorf("%v: the page names a domain:\n%s", tc.params, body)
		}
		found := false
		for _, line := range strings.Split(logs.String(), "\n") {
			found = found || strings.Contains(line, `"reference":"`+ref+`"`) && strings.Contains(line, tc.reason)
		}
		if !found {
			t.Errorf("%v: no log line with reference %s and %q:\n%s", tc.params, ref, tc.reason, logs.String())
		}
	}
}
