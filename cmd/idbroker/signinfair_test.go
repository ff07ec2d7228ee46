package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
)

// browserAt is where a browser's sign-in stopped: the application's code,
// or the broker's last answer (status, Retry-After, page) and the URL it
// answered, which a reload fetches again.
type browserAt struct {
	code       string
	status     int
	retryAfter string
	page       string
	last       *url.URL
}

// oidcBrowser signs in through an OIDC connection with one cookie jar, so
// that a reload of the callback is the same browser's.
type oidcBrowser struct {
	t      *testing.T
	client *http.Client
	at     browserAt
}

func newOIDCBrowser(t *testing.T) *oidcBrowser {
	jar, _ := cookiejar.New(nil)
	b := &oidcBrowser{t: t}
	b.client = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "app.example" {
			b.at.code = r.URL.Query().Get("code")
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// get follows rawURL's redirects (the broker's /authorize, the IdP, the
// callback) to the application or the broker's page.
func (b *oidcBrowser) get(rawURL string) browserAt {
	b.at = browserAt{}
	resp, err := b.client.Get(rawURL)
	if err != nil {
		b.t.Error(err)
		return b.at
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	b.at.status, b.at.page, b.at.retryAfter, b.at.last = resp.StatusCode, string(raw), resp.Header.Get("Retry-After"), resp.Request.URL
	return b.at
}

func (u *upstream) authorizeURL(connID string) string {
	return u.b.base + "/authorize?" + url.Values{"client_id": {u.clientID}, "redirect_uri": {"https://app.example/cb"},
		"response_type": {"code"}, "scope": {"openid email"}, "state": {"st8"}, "nonce": {"n0nce"}, "connection": {connID}}.Encode()
}

// anotherTenant is u's broker and application with a second tenant.
func (u *upstream) anotherTenant(name string) *upstream {
	u.t.Helper()
	o := *u
	o.domain = strings.ToLower(name) + "-" + randomHex(u.t, 4) + ".example"
	var tn struct{ ID string }
	if code := u.b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": name,
		"domains": []map[string]any{{"domain": o.domain, "verified": true}}}, &tn); code != http.StatusCreated {
		u.t.Fatalf("create tenant %s: %d", name, code)
	}
	o.tenantID = tn.ID
	return &o
}

// TestSignInTenantConcurrency: through the real binary, with
// IDBROKER_SIGNIN_TENANT_CONCURRENCY=1, tenant A's one sign-in held at its
// IdP's token endpoint fills A's share of the node. A's next sign-in, at
// its OIDC callback and at its SAML ACS, waits a second and gets the
// end-user page (429, Retry-After, a reference, nothing of why), and is
// counted; tenant B, on the same application, signs in meanwhile (A's cap
// never counts B), and an unknown connection is still 404. Once A's
// sign-in ends, the refused answers, unread and unspent, finish when the
// browser posts or loads them again.
func TestSignInTenantConcurrency(t *testing.T) {
	t.Parallel()
	a := newUpstreamEnv(t, map[string]string{
		envDatabaseURL:    "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envSignInTenant:   "1",
		envRateLimitLogin: "0",
	})
	b := a.anotherTenant("Globex")

	opA := newVendorOP(t, "/")
	entered, release := make(chan struct{}, 4), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	// Before opA's server closes (cleanups run last first), or a failure
	// would leave its held request, and the test, hanging.
	t.Cleanup(free)
	opA.set(func(op *vendorOP) {
		op.claims = map[string]any{"sub": "a-1", "email": "held@" + a.domain, "email_verified": true}
		op.tokenHold = func() { entered <- struct{}{}; <-release }
	})
	connA := a.oidcConnection(opA, nil)
	idpA := newVendorIdP(t)
	idpA.set(func(v *vendorIdP) { v.attrs = []saml.Attribute{strAttr("email", "saml@"+a.domain)} })
	samlA := a.samlConnection(idpA, nil)
	idpB := newVendorIdP(t)
	idpB.set(func(v *vendorIdP) { v.attrs = []saml.Attribute{strAttr("email", "bob@"+b.domain)} })
	samlB := b.samlConnection(idpB, nil)

	// A's first sign-in takes A's one place and holds it at the IdP.
	first := newOIDCBrowser(t)
	firstDone := make(chan browserAt, 1)
	go func() { firstDone <- first.get(a.authorizeURL(connA)) }()
	select {
	case <-entered:
	case at := <-firstDone:
		t.Fatalf("A's first sign-in ended before its IdP answered: %d\n%s", at.status, at.page)
	}

	// A's second, at the OIDC callback: refused with the page.
	second := newOIDCBrowser(t)
	opA.set(func(op *vendorOP) { op.tokenHold = nil })
	at := second.get(a.authorizeURL(connA))
	wantBusyPage(t, "A's OIDC callback", at.status, at.retryAfter, at.page, at.code)
	if !strings.HasPrefix(at.last.Path, "/sso/oidc/") {
		t.Fatalf("the refusal came from %s, not the callback", at.last)
	}
	callback := at.last.String()

	// And at the SAML ACS.
	samlRes := a.signIn(samlA, nil)
	if samlRes.code != "" || samlRes.status != http.StatusTooManyRequests {
		t.Fatalf("A's SAML sign-in at its cap: %d, code %q\n%s", samlRes.status, samlRes.code, samlRes.page)
	}
	wantBusyPage(t, "A's ACS", samlRes.status, "1", samlRes.page, samlRes.code)

	// B signs in meanwhile, through the same application, at once.
	start := time.Now()
	if c := b.mustSignIn(samlB); c["email"] != "bob@"+b.domain {
		t.Fatalf("B's claims %v", c)
	}
	if d := time.Since(start); d >= 5*time.Second {
		t.Logf("B's sign-in took %v (a loaded machine?)", d)
	}
	// An unknown connection is still not found, counted nowhere.
	if r := a.post(a.b.base+"/sso/saml/conn_01NOSUCHCONNECTION0000000000/acs", samlRes.acsForm); r.status != http.StatusNotFound {
		t.Fatalf("unknown connection's ACS: %d, want 404", r.status)
	}

	m := scrapeText(t, a.b)
	for _, want := range []string{
		`idbroker_rate_limited_total{surface="signin_tenant"} 2`,
		`idbroker_tenant_concurrency_waits_total{cap="signin_tenant",outcome="refused"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A's held sign-in ends; the refused ones, posted or loaded again,
	// finish: nothing of them was spent.
	free()
	if got := <-firstDone; got.code == "" {
		t.Fatalf("A's first sign-in: %d\n%s", got.status, got.page)
	}
	if r := a.post(samlRes.acs, samlRes.acsForm); r.code == "" {
		t.Fatalf("A's SAML answer posted again: %d\n%s", r.status, r.page)
	}
	if r := second.get(callback); r.code == "" {
		t.Fatalf("A's callback loaded again: %d\n%s", r.status, r.page)
	} else if c := a.claims(r.code); c["email"] != "held@"+a.domain {
		t.Fatalf("A's claims %v", c)
	}
}

// wantBusyPage checks a refused sign-in's answer: the end-user page, 429
// with Retry-After, a reference, no code and nothing of the cap.
func wantBusyPage(t *testing.T, what string, status int, retryAfter, page, code string) {
	t.Helper()
	if code != "" || status != http.StatusTooManyRequests || retryAfter != "1" {
		t.Fatalf("%s: status %d, Retry-After %q, code %q; want 429, 1, none\n%s", what, status, retryAfter, code, page)
	}
	if !strings.Contains(page, "<title>Sign-in busy</title>") || !strings.Contains(page, "Reference") {
		t.Fatalf("%s: not the end-user page with a reference:\n%s", what, page)
	}
	if strings.Contains(page, "tenant") || strings.Contains(page, "in flight") {
		t.Fatalf("%s: the page says why:\n%s", what, page)
	}
}
