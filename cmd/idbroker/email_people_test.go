package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/crewjam/saml"
)

// TestRehiredPersonAndSharedAddresses: outside in, on the real binary
// with the real SAML connector and SCIM server. A person leaves (the
// directory deactivates them) and comes back under a new IdP account and
// a new directory user with the same address, written in other case; the
// IdP sends the address as its directory keeps it, with a display name.
// The new sign-in is the new directory user (its sub, the bare address),
// not refused as the old one's, while the old IdP account stays refused.
// Two active directory users sharing one address (a person's admin
// account beside their own) are neither taken for a new sign-in by it.
// Another tenant whose directory holds the address signs no one in with
// it and reads none of the first tenant's users.
func TestRehiredPersonAndSharedAddresses(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	var dir scimDirectory
	if code := u.b.do("POST", "/api/v1/tenants/"+u.tenantID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	push := func(d scimDirectory, userName, email string) string {
		t.Helper()
		r := d.pushUser(t, u.b, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+userName+`","active":true,
			"emails":[{"value":"`+email+`","type":"work","primary":true}]}`)
		if r.status != http.StatusCreated {
			t.Fatalf("SCIM create %s: %d %s", userName, r.status, r.raw)
		}
		id, _ := r.body["id"].(string)
		return id
	}
	v := newVendorIdP(t)
	conn := u.samlConnection(v, nil)
	as := func(nameID, email string) {
		v.set(func(v *vendorIdP) {
			v.nameID, v.nameIDFormat = nameID, string(saml.PersistentNameIDFormat)
			v.attrs = []saml.Attribute{strAttr("email", email)}
		})
	}
	addr := "re.hire@" + u.domain

	old := push(dir, "e1001", addr)
	as("00u-old", addr)
	if c := u.mustSignIn(conn); c["sub"] != old {
		t.Fatalf("first sign-in: %v, want %s", c["sub"], old)
	}
	if r := call(t, u.b, "PATCH", dir.SCIMBaseURL+"/Users/"+old, "Bearer "+dir.BearerToken, "application/scim+json",
		[]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)); r.status != http.StatusOK {
		t.Fatalf("deactivate: %d %s", r.status, r.raw)
	}
	rehired := push(dir, "e2002", strings.ToUpper(addr))
	as("00u-new", "Re Hire <Re.Hire@"+u.domain+">")
	res := u.signIn(conn, url.Values{"login_hint": {"mailto:" + addr}})
	if res.code == "" {
		t.Fatalf("rehired person: no code (%d), last failure %v", res.status, u.lastFailure())
	}
	if c := u.claims(res.code); c["sub"] != rehired || c["email"] != addr {
		t.Fatalf("rehired person signed in as %v <%v>, want %s <%s> (old user %s)", c["sub"], c["email"], rehired, addr, old)
	}
	as("00u-old", addr)
	if code, _ := u.failure(conn); code != "user_deactivated" {
		t.Errorf("the old IdP account: %s, want user_deactivated", code)
	}

	own := push(dir, "kim", "kim@"+u.domain)
	admin := push(dir, "kim-admin", "Kim@"+u.domain)
	as("00u-kim", "kim@"+u.domain)
	if c := u.mustSignIn(conn); c["sub"] == own || c["sub"] == admin {
		t.Errorf("an address two active directory users share signed in as %v (users %s, %s)", c["sub"], own, admin)
	}

	// Another tenant, whose directory holds the same address.
	var other tenantJSON
	otherDomain := "other-" + u.domain
	if code := u.b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Other",
		"domains": []map[string]any{{"domain": otherDomain, "verified": true}}}, &other); code != http.StatusCreated {
		t.Fatalf("POST /tenants = %d", code)
	}
	ub := *u
	ub.tenantID, ub.domain = other.ID, otherDomain
	var dirB scimDirectory
	if code := u.b.do("POST", "/api/v1/tenants/"+other.ID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dirB); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	push(dirB, "e1001", addr)
	vb := newVendorIdP(t)
	vb.set(func(v *vendorIdP) {
		v.nameID, v.nameIDFormat = "00u-new", string(saml.PersistentNameIDFormat)
		v.attrs = []saml.Attribute{strAttr("email", "Re Hire <"+addr+">")}
	})
	connB := ub.samlConnection(vb, nil)
	if code, _ := ub.failure(connB); code != "email_domain_not_allowed" {
		t.Errorf("the other tenant's IdP asserting the first's address: %s, want email_domain_not_allowed", code)
	}
	if r := call(t, u.b, "GET", dirB.SCIMBaseURL+"/Users/"+rehired, "Bearer "+dirB.BearerToken, "", nil); r.status != http.StatusNotFound {
		t.Errorf("the other tenant reads the rehired user: %d", r.status)
	}
	for _, hint := range []string{"Re Hire <" + addr + ">", "mailto:" + addr} {
		r := ub.signIn("", url.Values{"connection": {""}, "tenant": {other.ID}, "login_hint": {hint}})
		if r.code != "" || r.status != http.StatusBadRequest {
			t.Errorf("tenant=%s with login_hint %q of the first tenant: code %v status %d, want the 400 page", other.ID, hint, r.code != "", r.status)
		}
	}
}
