package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/crewjam/saml"
)

// Upstream IdPs beyond Okta, Entra ID and Google, through the binary: a
// browser signs in at the application through the broker and the IdP,
// and the application reads the id_token; a refusal shows the user the
// generic page with a reference while the tenant admin's
// authentication.failed says why.

// TestInteropADFSEmailNameID: AD FS holds AuthnRequests to their
// NameIDPolicy (the vendor IdP enforces it as AD FS does) and issues the
// email address as an email NameID, as the portal's AD FS steps set it
// up, while its metadata lists persistent as well. A connection with the
// AD FS preset (the portal's AD FS choice) signs users in.
func TestInteropADFSEmailNameID(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	v := newVendorIdP(t)
	v.set(func(v *vendorIdP) {
		v.idp.EnforceNameIDPolicy = true
		v.idp.NameIDFormats = []saml.NameIDFormat{saml.EmailAddressNameIDFormat, saml.PersistentNameIDFormat, saml.TransientNameIDFormat}
		v.nameIDFormat, v.nameID = string(saml.EmailAddressNameIDFormat), "Dana@"+u.domain
		v.attrs = []saml.Attribute{strAttr(wsGiven, "Dana"), strAttr(wsSurname, "Dee"), strAttr(adfsGroup, "Domain Users")}
	})
	c := u.mustSignIn(u.samlConnection(v, map[string]any{"attribute_mapping": map[string]any{"preset": "adfs"}}))
	if c["email"] != "dana@"+u.domain || c["given_name"] != "Dana" || c["family_name"] != "Dee" || c["idp_subject"] != "Dana@"+u.domain {
		t.Fatalf("claims %v", c)
	}
}

// TestInteropSAMLRelayStateLost: an IdP that posts its response back
// without the RelayState, or with one of its own, still signs the user in
// to the application that asked.
func TestInteropSAMLRelayStateLost(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	for name, relay := range map[string]func(string) string{
		"dropped":  func(string) string { return "" },
		"replaced": func(string) string { return "https://portal.example.com/landing" },
	} {
		t.Run(name, func(t *testing.T) {
			u := u.with(t)
			v := newVendorIdP(t)
			v.set(func(v *vendorIdP) {
				v.relayState = relay
				v.nameIDFormat, v.nameID = string(saml.EmailAddressNameIDFormat), "ray@"+u.domain
			})
			if c := u.mustSignIn(u.samlConnection(v, nil)); c["email"] != "ray@"+u.domain {
				t.Fatalf("claims %v", c)
			}
		})
	}
}

// TestInteropSAMLRecipientSlip: an ACS URL typed into the IdP with a
// trailing slash. The user sees the generic page with a reference; the
// admin reads that the Recipient differs only by the slash, and both
// URLs.
func TestInteropSAMLRecipientSlip(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	v := newVendorIdP(t)
	v.set(func(v *vendorIdP) {
		v.signResponse = false
		v.mutate = func(req *saml.IdpAuthnRequest, a *saml.Assertion) {
			a.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient = req.ACSEndpoint.Location + "/"
		}
	})
	id := u.samlConnection(v, nil)
	res := u.signIn(id, nil)
	if res.code != "" || res.status == http.StatusOK || !strings.Contains(res.page, "Reference") || strings.Contains(res.page, "trailing slash") {
		t.Fatalf("the user's page: %d\n%s", res.status, res.page)
	}
	f := u.lastFailure()
	reason, _ := f["reason"].(string)
	acs := u.b.base + "/sso/saml/" + id + "/acs"
	if f["reason_code"] != "destination_mismatch" || !strings.Contains(reason, `Recipient was "`+acs+`/", expected "`+acs+`"`) ||
		!strings.Contains(reason, "only in letter case or a trailing slash") {
		t.Fatalf("authentication.failed %v", f)
	}
}

// TestInteropOIDCTextPlainAndOddClaims: an OpenID Provider that labels
// its token answer text/plain and sends a locale that is not a language
// tag and a picture object: the user signs in with the normalised claims.
func TestInteropOIDCTextPlainAndOddClaims(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	op := newVendorOP(t, "/oidc")
	op.set(func(op *vendorOP) {
		op.tokenContentType = "text/plain;charset=UTF-8"
		op.claims = map[string]any{"sub": "u-77", "email": "Omar@" + u.domain, "email_verified": "true", "given_name": "Omar",
			"family_name": "Oz", "locale": "English", "picture": map[string]any{"url": "https://cdn.example/omar.png"}, "groups": []string{"Ops"}}
	})
	c := u.mustSignIn(u.oidcConnection(op, nil))
	if c["email"] != "omar@"+u.domain || c["email_verified"] != true || c["given_name"] != "Omar" || c["idp_subject"] != "u-77" || c["connection_type"] != "oidc" {
		t.Fatalf("claims %v", c)
	}
}
