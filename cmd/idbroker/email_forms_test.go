package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/crewjam/saml"
)

// TestOnePersonAcrossEmailForms: outside in, on the real binary. A tenant
// adds its internationalised domain as Unicode; the directory (SCIM)
// pushes a person with the address in punycode and capitals; the SAML IdP
// asserts the same address in Unicode with a trailing dot, and the
// application routes by a login_hint in yet another form. The sign-in is
// the directory's user (one sub), the id_token's email is the one stored
// form, the SCIM resource keeps what the client wrote, and a SCIM filter
// finds the person by any form. Another tenant's directory token reads
// none of it (404).
func TestOnePersonAcrossEmailForms(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	label := "bücher-" + randomHex(t, 3)
	unicode := label + ".example"
	var dom struct {
		Domain   string `json:"domain"`
		Verified bool   `json:"verified"`
	}
	if code := u.b.do("POST", "/api/v1/tenants/"+u.tenantID+"/domains", e2eBootstrapKey,
		map[string]any{"domain": strings.ToUpper(unicode) + ".", "verified": true}, &dom); code != http.StatusCreated || !dom.Verified || !strings.HasPrefix(dom.Domain, "xn--") {
		t.Fatalf("add domain: %d %+v", code, dom)
	}
	ascii := dom.Domain

	var dir scimDirectory
	if code := u.b.do("POST", "/api/v1/tenants/"+u.tenantID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	written := "Ann.Lee@" + strings.ToUpper(ascii)
	pushed := dir.pushUser(t, u.b, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann.lee","active":true,
		"emails":[{"value":"`+written+`","type":"work","primary":true}]}`)
	if pushed.status != http.StatusCreated {
		t.Fatalf("SCIM create: %d %s", pushed.status, pushed.raw)
	}
	scimID, _ := pushed.body["id"].(string)

	v := newVendorIdP(t)
	v.set(func(v *vendorIdP) {
		v.nameID = "00u-ann"
		v.attrs = []saml.Attribute{strAttr("email", " ann.lee@"+unicode+". ")}
	})
	conn := u.samlConnection(v, nil)
	res := u.signIn(conn, url.Values{"connection": {""}, "login_hint": {"ANN.LEE@" + ascii + "."}})
	if res.code == "" {
		t.Fatalf("no code: %d, last failure %v\n%s", res.status, u.lastFailure(), res.page)
	}
	c := u.claims(res.code)
	if c["sub"] != scimID || c["email"] != "ann.lee@"+unicode || c["email_verified"] != true {
		t.Fatalf("claims sub %v email %v verified %v; want the directory's user %s as ann.lee@%s", c["sub"], c["email"], c["email_verified"], scimID, unicode)
	}

	get := call(t, u.b, "GET", dir.SCIMBaseURL+"/Users/"+scimID, "Bearer "+dir.BearerToken, "", nil)
	if get.status != http.StatusOK || !strings.Contains(get.raw, `"value":"`+written+`"`) {
		t.Fatalf("SCIM read: %d %s; want emails as written", get.status, get.raw)
	}
	for _, form := range []string{"ann.lee@" + unicode, written, "ANN.LEE@" + strings.ToUpper(unicode)} {
		q := dir.SCIMBaseURL + "/Users?filter=" + url.QueryEscape(`emails.value eq "`+form+`"`)
		found := call(t, u.b, "GET", q, "Bearer "+dir.BearerToken, "", nil)
		if found.status != http.StatusOK || found.body["totalResults"] != float64(1) || !strings.Contains(found.raw, scimID) {
			t.Errorf("filter emails.value eq %q: %d %s", form, found.status, found.raw)
		}
	}

	// Another tenant, same address in its directory: another person, and
	// its token opens nothing of the first tenant's.
	var other tenantJSON
	if code := u.b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Other"}, &other); code != http.StatusCreated {
		t.Fatalf("POST /tenants = %d", code)
	}
	var dirB scimDirectory
	if code := u.b.do("POST", "/api/v1/tenants/"+other.ID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dirB); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	theirs := dirB.pushUser(t, u.b, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann.lee","emails":[{"value":"ann.lee@`+unicode+`","primary":true}]}`)
	if theirs.status != http.StatusCreated || theirs.body["id"] == scimID {
		t.Fatalf("other tenant's create: %d %s", theirs.status, theirs.raw)
	}
	if r := call(t, u.b, "GET", dirB.SCIMBaseURL+"/Users/"+scimID, "Bearer "+dirB.BearerToken, "", nil); r.status != http.StatusNotFound {
		t.Errorf("other tenant reads the first's user: %d", r.status)
	}
	if r := call(t, u.b, "GET", dir.SCIMBaseURL+"/Users", "Bearer "+dirB.BearerToken, "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("other tenant's token on the first's directory: %d", r.status)
	}
	q := dirB.SCIMBaseURL + "/Users?filter=" + url.QueryEscape(`emails.value eq "`+written+`"`)
	if r := call(t, u.b, "GET", q, "Bearer "+dirB.BearerToken, "", nil); r.status != http.StatusOK || strings.Contains(r.raw, scimID) {
		t.Errorf("other tenant's filter: %d %s", r.status, r.raw)
	}
}

// TestConnectionChoiceAndDeletionMidLogin: a tenant with several
// connections routes tenant= and domain_hint= to its oldest active one,
// skipping drafts and inactive ones; connection= picks another; a
// connection deleted while its user is at the IdP ends that sign-in on
// the generic page with a reference and no code; and a tenant left with no
// active connection gets the clear "not set up" page.
func TestConnectionChoiceAndDeletionMidLogin(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	idp := func(user string) *vendorIdP {
		v := newVendorIdP(t)
		v.set(func(v *vendorIdP) {
			v.nameID = user
			v.attrs = []saml.Attribute{strAttr("email", user+"@"+u.domain)}
		})
		return v
	}
	draft, _ := u.connection(map[string]any{"type": "saml", "name": "Draft", "saml": map[string]any{}})["id"].(string)
	inactive := u.samlConnection(idp("one"), nil)
	var out map[string]any
	if code := u.b.do("PATCH", "/api/v1/connections/"+inactive, e2eBootstrapKey, map[string]any{"status": "inactive"}, &out); code != http.StatusOK {
		t.Fatalf("deactivate: %d %v", code, out)
	}
	older := u.samlConnection(idp("two"), nil)
	v3 := idp("three")
	newer := u.samlConnection(v3, nil)

	via := func(extra url.Values) string {
		t.Helper()
		if extra.Get("connection") == "" {
			extra.Set("connection", "")
		}
		res := u.signIn("", extra)
		if res.code == "" {
			t.Fatalf("%v: no code: %d\n%s", extra, res.status, res.page)
		}
		c, _ := u.claims(res.code)["connection_id"].(string)
		return c
	}
	for _, q := range []url.Values{{"tenant": {u.tenantID}}, {"domain_hint": {u.domain}}, {"login_hint": {"two@" + u.domain}}} {
		if got := via(q); got != older {
			t.Errorf("%v: routed to %s, want the oldest active %s (draft %s, inactive %s)", q, got, older, draft, inactive)
		}
	}
	if got := via(url.Values{"connection": {newer}}); got != newer {
		t.Errorf("connection=%s: routed to %s", newer, got)
	}
	if code := u.b.do("PATCH", "/api/v1/connections/"+older, e2eBootstrapKey, map[string]any{"status": "inactive"}, &out); code != http.StatusOK {
		t.Fatalf("deactivate: %d %v", code, out)
	}
	if got := via(url.Values{"tenant": {u.tenantID}}); got != newer {
		t.Errorf("after deactivating %s: routed to %s, want %s", older, got, newer)
	}

	// Deleted while the user is at the IdP.
	v3.set(func(v *vendorIdP) {
		v.mutate = func(*saml.IdpAuthnRequest, *saml.Assertion) {
			if code := u.b.do("DELETE", "/api/v1/connections/"+newer, e2eBootstrapKey, nil, nil); code != http.StatusNoContent {
				t.Errorf("delete: %d", code)
			}
		}
	})
	res := u.signIn(newer, nil)
	if res.code != "" || res.status < 400 || res.status >= 500 || !strings.Contains(res.page, "Reference") {
		t.Fatalf("sign-in through a connection deleted meanwhile: code %q status %d\n%s", res.code, res.status, res.page)
	}
	res = u.signIn("", url.Values{"connection": {""}, "domain_hint": {u.domain}})
	if res.code != "" || res.status != http.StatusNotFound || !strings.Contains(res.page, "not set up") {
		t.Fatalf("no active connection left: code %q status %d\n%s", res.code, res.status, res.page)
	}
}

// TestDomainRemovedWhileSignedIn: removing a tenant's domain stops new
// sign-ins with addresses in it at once (the tenant admin is told the
// domain is not verified) and routes no one by it, while sessions opened
// before stay (as WorkOS does: a domain is how people are routed, not who
// they are).
func TestDomainRemovedWhileSignedIn(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	v := newVendorIdP(t)
	v.set(func(v *vendorIdP) { v.attrs = []saml.Attribute{strAttr("email", "ann@"+u.domain)} })
	conn := u.samlConnection(v, nil)
	res := u.signIn(conn, nil)
	if res.code == "" {
		t.Fatalf("no code: %d", res.status)
	}
	rp := &rpClient{t: t, node: u.b, clientID: u.clientID, secret: u.secret}
	var tk tokens
	if status, raw := rp.post(u.b, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {res.code},
		"redirect_uri": {"https://app.example/cb"}}, &tk); status != http.StatusOK {
		t.Fatalf("exchange: %d %s", status, raw)
	}
	if code := u.b.do("DELETE", "/api/v1/tenants/"+u.tenantID+"/domains/"+u.domain, e2eBootstrapKey, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete domain: %d", code)
	}
	var intro map[string]any
	if status, raw := rp.post(u.b, "/oauth/introspect", url.Values{"token": {tk.AccessToken}}, &intro); status != http.StatusOK || intro["active"] != true {
		t.Errorf("introspection after the domain went: %d %s, want the session still active", status, raw)
	}
	if code, reason := u.failure(conn); code != "email_domain_not_allowed" || !strings.Contains(reason, u.domain) {
		t.Errorf("sign-in after the domain went: %s %s", code, reason)
	}
	if r := u.signIn("", url.Values{"connection": {""}, "login_hint": {"ann@" + u.domain}}); r.code != "" || r.status != http.StatusNotFound {
		t.Errorf("login_hint in the removed domain: code %q status %d, want the 404 page", r.code, r.status)
	}
}

// TestUPNSignInIsTheDirectoryUser: Entra ID's defaults, outside in. SCIM
// pushes userName = UPN and the mailbox as the work email; SAML sends the
// UPN as an email NameID and the mailbox as emailaddress. A person whose
// UPN is not their mailbox is one user (the directory's): the sign-in's
// sub is the SCIM id, and the directory's deactivation ends the session
// and refuses the next sign-in.
func TestUPNSignInIsTheDirectoryUser(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	var dir scimDirectory
	if code := u.b.do("POST", "/api/v1/tenants/"+u.tenantID+"/directories", e2eBootstrapKey, map[string]any{"name": "Entra"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	upn, mail := "a.lee@"+u.domain, "ann.lee@"+u.domain
	pushed := dir.pushUser(t, u.b, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+upn+`","active":true,
		"emails":[{"value":"`+mail+`","type":"work","primary":true}]}`)
	if pushed.status != http.StatusCreated {
		t.Fatalf("SCIM create: %d %s", pushed.status, pushed.raw)
	}
	scimID, _ := pushed.body["id"].(string)

	v := newVendorIdP(t)
	v.set(func(v *vendorIdP) {
		v.nameIDFormat, v.nameID = string(saml.EmailAddressNameIDFormat), upn
		v.attrs = []saml.Attribute{strAttr("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", mail)}
	})
	conn := u.samlConnection(v, nil)
	res := u.signIn(conn, nil)
	if res.code == "" {
		t.Fatalf("no code: %d %v", res.status, u.lastFailure())
	}
	rp := &rpClient{t: t, node: u.b, clientID: u.clientID, secret: u.secret}
	var tk tokens
	if status, raw := rp.post(u.b, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {res.code},
		"redirect_uri": {"https://app.example/cb"}}, &tk); status != http.StatusOK {
		t.Fatalf("exchange: %d %s", status, raw)
	}
	var intro map[string]any
	rp.post(u.b, "/oauth/introspect", url.Values{"token": {tk.AccessToken}}, &intro)
	if intro["sub"] != scimID {
		t.Fatalf("signed in as %v, want the directory's user %s", intro["sub"], scimID)
	}

	patch := call(t, u.b, "PATCH", dir.SCIMBaseURL+"/Users/"+scimID, "Bearer "+dir.BearerToken, "application/scim+json",
		[]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`))
	if patch.status != http.StatusOK {
		t.Fatalf("SCIM deactivate: %d %s", patch.status, patch.raw)
	}
	rp.post(u.b, "/oauth/introspect", url.Values{"token": {tk.AccessToken}}, &intro)
	if intro["active"] != false {
		t.Errorf("after the directory deactivated the user, introspection says %v", intro)
	}
	if code, _ := u.failure(conn); code != "user_deactivated" {
		t.Errorf("sign-in after deactivation: %s, want user_deactivated", code)
	}
}
