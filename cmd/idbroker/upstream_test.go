package main

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
)

// TestOIDCIssuerTrailingSlash signs in, through the binary, at OpenID
// Providers whose issuer ends in a slash (Auth0's is
// https://tenant.auth0.com/) and at one whose issuer does not, configured
// with the slash an admin pasted: issuers compare exactly, and either
// way the connection uses the one the IdP's discovery document names.
func TestOIDCIssuerTrailingSlash(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	for _, tt := range []struct {
		name, path string
		typed      func(issuer string) string
	}{
		{name: "Auth0: the issuer ends in a slash", path: "/", typed: func(iss string) string { return iss }},
		{name: "Auth0: typed without its slash", path: "/", typed: func(iss string) string { return iss[:len(iss)-1] }},
		{name: "Okta: typed with a slash it does not have", path: "/oauth2/default", typed: func(iss string) string { return iss + "/" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := u.with(t)
			op := newVendorOP(t, tt.path)
			op.set(func(op *vendorOP) {
				op.claims = map[string]any{"sub": "auth0|5f1", "email": "frank@" + u.domain, "email_verified": true}
			})
			id := u.oidcConnection(op, map[string]any{"issuer": tt.typed(op.issuer)})
			if c := u.mustSignIn(id); c["idp_subject"] != "auth0|5f1" || c["connection_type"] != "oidc" {
				t.Fatalf("claims %v", c)
			}
		})
	}
}

// Attribute names as the IdPs send them, spelled out: the test holds the
// default mapping to the wire, not to the broker's constants.
const (
	wsEmail     = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	wsGiven     = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
	wsSurname   = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
	wsName      = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
	msGroups    = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
	msTenantID  = "http://schemas.microsoft.com/identity/claims/tenantid"
	msObjectID  = "http://schemas.microsoft.com/identity/claims/objectidentifier"
	adfsGroup   = "http://schemas.xmlsoap.org/claims/Group"
	adfsCN      = "http://schemas.xmlsoap.org/claims/CommonName"
	oidMailAttr = "urn:oid:0.9.2342.19200300.100.1.3"
	oidGiven    = "urn:oid:2.5.4.42"
	oidSN       = "urn:oid:2.5.4.4"
)

// TestSAMLDefaultMappingByVendor signs in through the binary with what each
// IdP family sends by default, on a connection that maps nothing, and reads
// the id_token the application gets: email (lower-cased), name parts,
// groups, idp_subject and connection_type.
func TestSAMLDefaultMappingByVendor(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	d := u.domain
	for _, tt := range []struct {
		name                 string
		nameIDFormat, nameID string
		attrs                []saml.Attribute
		email, given, family string
		fullName             string
		groups               []string
	}{
		{name: "Okta: email NameID, email/firstName/lastName/groups",
			nameIDFormat: string(saml.EmailAddressNameIDFormat), nameID: "Alice@" + d,
			attrs: []saml.Attribute{strAttr("email", "Alice@"+d), strAttr("firstName", "Alice"), strAttr("lastName", "Liddell"),
				strAttr("groups", "Everyone", "Engineering")},
			email: "alice@" + d, given: "Alice", family: "Liddell", fullName: "Alice Liddell", groups: []string{"Engineering", "Everyone"}},
		{name: "Entra ID: persistent NameID, its default claims (name is the UPN), group object ids",
			nameIDFormat: string(saml.PersistentNameIDFormat), nameID: "Zq3-9xkPersistent",
			attrs: []saml.Attribute{strAttr(msTenantID, "72f988bf-86f1-41af-91ab-2d7cd011db47"), strAttr(msObjectID, "0b7a9c3e-oid"),
				strAttr(wsEmail, "bob@"+d), strAttr(wsGiven, "Bob"), strAttr(wsSurname, "Builder"), strAttr(wsName, "bob@"+d),
				strAttr(msGroups, "8b1c0e4e-1111-2222-3333-444455556666")},
			email: "bob@" + d, given: "Bob", family: "Builder", fullName: "Bob Builder", groups: []string{"8b1c0e4e-1111-2222-3333-444455556666"}},
		{name: "Google Workspace: email NameID, no attributes",
			nameIDFormat: string(saml.EmailAddressNameIDFormat), nameID: "carol@" + d,
			email: "carol@" + d, groups: []string{}},
		{name: "ADFS: email and its own Group and CommonName claim types",
			nameIDFormat: string(saml.UnspecifiedNameIDFormat), nameID: `CORP\dave`,
			attrs: []saml.Attribute{strAttr(wsEmail, "dave@"+d), strAttr(wsGiven, "Dave"), strAttr(wsSurname, "Dee"),
				strAttr(adfsCN, "Dave Dee"), strAttr(adfsGroup, "Domain Users", "Finance")},
			email: "dave@" + d, given: "Dave", family: "Dee", fullName: "Dave Dee", groups: []string{"Domain Users", "Finance"}},
		{name: "ADFS: urn:oid names, name is DOMAIN\\user",
			nameIDFormat: string(saml.UnspecifiedNameIDFormat), nameID: `CORP\erin`,
			attrs: []saml.Attribute{strAttr(oidMailAttr, "erin@"+d), strAttr(oidGiven, "Erin"), strAttr(oidSN, "Eve"), strAttr(wsName, `CORP\erin`)},
			email: "erin@" + d, given: "Erin", family: "Eve", fullName: "Erin Eve", groups: []string{}},
		{name: "generic: mail",
			nameIDFormat: string(saml.PersistentNameIDFormat), nameID: "p-frank",
			attrs: []saml.Attribute{strAttr("mail", "frank@"+d), strAttr("givenName", "Frank"), strAttr("sn", "Fox"), strAttr("memberOf", "cn=staff")},
			email: "frank@" + d, given: "Frank", family: "Fox", fullName: "Frank Fox", groups: []string{"cn=staff"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := u.with(t)
			v := newVendorIdP(t)
			v.set(func(v *vendorIdP) { v.nameIDFormat, v.nameID, v.attrs = tt.nameIDFormat, tt.nameID, tt.attrs })
			c := u.mustSignIn(u.samlConnection(v, nil))
			var groups []string
			for _, g := range c["groups"].([]any) {
				groups = append(groups, g.(string))
			}
			if c["email"] != tt.email || c["email_verified"] != true || c["given_name"] != tt.given || c["family_name"] != tt.family ||
				c["name"] != tt.fullName || strings.Join(groups, "|") != strings.Join(tt.groups, "|") ||
				c["idp_subject"] != tt.nameID || c["connection_type"] != "saml" || !strings.HasPrefix(c["sub"].(string), "usr_") {
				t.Fatalf("id_token claims %v\nwant email %s, name %q (%q %q), groups %v, idp_subject %s", c, tt.email, tt.fullName, tt.given, tt.family, tt.groups, tt.nameID)
			}
		})
	}
}

// TestSAMLIdPErrorStatusReachesTheAdmin: an IdP that refuses the sign-in
// answers with an error status (AD FS when the NameID it issues is not
// the format asked for; any IdP for a user not assigned to the app). The
// user gets the generic page with a reference; the tenant admin's
// authentication.failed says the second-level status and the IdP's own
// message, which is what tells them what to fix.
func TestSAMLIdPErrorStatusReachesTheAdmin(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	v := newVendorIdP(t)
	v.set(func(v *vendorIdP) {
		v.status = &saml.Status{
			StatusCode: saml.StatusCode{Value: saml.StatusRequester,
				StatusCode: &saml.StatusCode{Value: "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"}},
			StatusMessage: &saml.StatusMessage{Value: "MSIS7070: The SAML request contained a NameIDPolicy that was not satisfied\n by the issued token."},
		}
	})
	id := u.samlConnection(v, nil)
	res := u.signIn(id, nil)
	if res.code != "" || res.status != http.StatusForbidden || !strings.Contains(res.page, "Reference") || strings.Contains(res.page, "MSIS7070") {
		t.Fatalf("the user's page: %d\n%s", res.status, res.page)
	}
	f := u.lastFailure()
	reason, _ := f["reason"].(string)
	if f["reason_code"] != "idp_error" || !strings.Contains(reason, "status:Requester / urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy") ||
		!strings.Contains(reason, `"MSIS7070: The SAML request contained a NameIDPolicy that was not satisfied by the issued token."`) {
		t.Fatalf("authentication.failed %v: want idp_error naming the second-level status and the IdP's message", f)
	}
}

// TestOIDCTokenEndpointRefusalReason: a token endpoint that answers with
// an OAuth error was reached; the tenant admin is told what it refused,
// under a reason that points at the fix: a wrong client secret is the
// connection's configuration, a refused code is the IdP's verdict, and
// neither is "the IdP could not be reached".
func TestOIDCTokenEndpointRefusalReason(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	op := newVendorOP(t, "/oauth2/default")
	op.set(func(op *vendorOP) {
		op.claims = map[string]any{"sub": "00u9", "email": "tess@" + u.domain, "email_verified": true}
	})
	wrongSecret := u.oidcConnection(op, map[string]any{"client_secret": "not-the-secret"})
	if code, reason := u.failure(wrongSecret); code != "invalid_configuration" || !strings.Contains(reason, `invalid_client`) ||
		!strings.Contains(reason, "client_secret") {
		t.Fatalf("wrong client secret: %s %q; want invalid_configuration naming invalid_client and the client secret", code, reason)
	}
	refused := u.oidcConnection(op, nil)
	op.set(func(op *vendorOP) { op.tokenError = "invalid_grant" })
	if code, reason := u.failure(refused); code != "idp_error" || !strings.Contains(reason, "invalid_grant: AADSTS54005") {
		t.Fatalf("refused code: %s %q; want idp_error with the IdP's error and description", code, reason)
	}
}

// TestOIDCIssuerMismatchIsTheSetting: an issuer whose discovery document
// names another one is a setting to fix, not an IdP outage: creating the
// connection answers 400 on oidc.issuer, saying which issuer the document
// names.
func TestOIDCIssuerMismatchIsTheSetting(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	op := newVendorOP(t, "/oauth2/default")
	op.set(func(op *vendorOP) { op.discoveryIssuer = "https://acme.okta.com/oauth2/default" })
	var out struct {
		Error struct{ Code, Field, Message string } `json:"error"`
	}
	code := u.b.do("POST", "/api/v1/tenants/"+u.tenantID+"/connections", e2eBootstrapKey, map[string]any{"type": "oidc", "name": "Okta",
		"oidc": map[string]any{"issuer": op.issuer, "client_id": op.clientID, "client_secret": op.secret}}, &out)
	if code != http.StatusBadRequest || out.Error.Field != "oidc.issuer" || !strings.Contains(out.Error.Message, `names the issuer "https://acme.okta.com/oauth2/default"`) {
		t.Fatalf("create: %d %+v; want 400 on oidc.issuer naming the document's issuer", code, out.Error)
	}
}

// TestOIDCUserinfoForAnotherSubject: a userinfo answer whose sub is not
// the id_token's is refused as a profile the broker cannot accept (the
// IdP answered; it is not down), and nothing of it reaches the user.
func TestOIDCUserinfoForAnotherSubject(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	op := newVendorOP(t, "/oauth2/default")
	op.set(func(op *vendorOP) {
		op.claims = map[string]any{"sub": "00u-ann", "email": "ann@" + u.domain, "email_verified": true}
		op.userinfo = map[string]any{"sub": "00u-mallory", "groups": []string{"Admins"}}
	})
	id := u.oidcConnection(op, nil)
	if code, reason := u.failure(id); code != "profile_not_acceptable" || !strings.Contains(reason, `another subject than the id_token's "00u-ann"`) {
		t.Fatalf("userinfo for another sub: %s %q; want profile_not_acceptable saying so", code, reason)
	}
}

// TestSAMLIdPClockBehind: an IdP whose clock is 150 s behind ours signs
// in through a connection whose clock_skew_seconds is 180, as one ahead
// by as much does, and is refused (response_expired) under the default
// 90 s: raising the skew is the documented fix for either direction.
func TestSAMLIdPClockBehind(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	v := newVendorIdP(t)
	v.set(func(v *vendorIdP) {
		v.nameIDFormat, v.nameID = string(saml.EmailAddressNameIDFormat), "lag@"+u.domain
		v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
			idpNow := time.Now().Add(-150 * time.Second)
			a.IssueInstant, a.Conditions.NotBefore, a.Conditions.NotOnOrAfter = idpNow, idpNow, idpNow.Add(5*time.Minute)
			a.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter = idpNow.Add(5 * time.Minute)
		}
		v.mutateResp = func(r *saml.Response) { r.IssueInstant = time.Now().Add(-150 * time.Second) }
	})
	if c := u.mustSignIn(u.samlConnection(v, map[string]any{"clock_skew_seconds": 180})); c["email"] != "lag@"+u.domain {
		t.Fatalf("claims %v", c)
	}
	if code, reason := u.failure(u.samlConnection(v, nil)); code != "response_expired" {
		t.Fatalf("150 s behind under the default skew: %s %q, want response_expired", code, reason)
	}
}

// TestSAMLEmailOnlyIdPIsAskedForEmail: an IdP whose metadata lists only the
// emailAddress NameID format (Okta's and Google's app metadata list the
// one format the app issues) and holds AuthnRequests to their
// NameIDPolicy, as strict IdPs do, signs users in through a connection
// made from that metadata with no name_id_format of its own: the broker
// asks for what the IdP offers, and says so in the connection and its SP
// metadata. An IdP that lists persistent is still asked for it.
func TestSAMLEmailOnlyIdPIsAskedForEmail(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	for _, tt := range []struct {
		name    string
		formats []saml.NameIDFormat
		want    string
	}{
		{"email only", []saml.NameIDFormat{saml.EmailAddressNameIDFormat}, "email"},
		{"email and persistent", []saml.NameIDFormat{saml.EmailAddressNameIDFormat, saml.PersistentNameIDFormat}, "persistent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := u.with(t)
			v := newVendorIdP(t)
			v.set(func(v *vendorIdP) {
				v.idp.EnforceNameIDPolicy, v.idp.NameIDFormats = true, tt.formats
				v.nameIDFormat, v.nameID = string(saml.EmailAddressNameIDFormat), "nia@"+u.domain
				if tt.want == "persistent" {
					v.nameIDFormat, v.nameID = string(saml.PersistentNameIDFormat), "00u-nia"
					v.attrs = []saml.Attribute{strAttr("email", "nia@"+u.domain)}
				}
			})
			out := u.connection(map[string]any{"type": "saml", "name": "Okta", "saml": map[string]any{"idp_metadata_xml": string(v.metadataXML())}})
			id, _ := out["id"].(string)
			if got := out["saml"].(map[string]any)["name_id_format"]; got != tt.want {
				t.Fatalf("name_id_format %v, want %s", got, tt.want)
			}
			if c := u.mustSignIn(id); c["email"] != "nia@"+u.domain {
				t.Fatalf("claims %v", c)
			}
			resp, err := http.Get(u.b.base + "/sso/saml/" + id + "/metadata")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var md saml.EntityDescriptor
			if err := xml.NewDecoder(resp.Body).Decode(&md); err != nil {
				t.Fatal(err)
			}
			wantFormat := map[string]saml.NameIDFormat{"email": saml.EmailAddressNameIDFormat, "persistent": saml.PersistentNameIDFormat}[tt.want]
			if f := md.SPSSODescriptors[0].NameIDFormats; len(f) != 1 || f[0] != wantFormat {
				t.Fatalf("SP metadata NameIDFormat %v, want %s", f, wantFormat)
			}
		})
	}
}

// TestSAMLExpiredIdPCertificate: a connection whose only IdP certificate
// has expired refuses the IdP's responses (signature_invalid), and the
// tenant admin is told that the certificate expired, when, and what to do.
func TestSAMLExpiredIdPCertificate(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	v := newVendorIdP(t)
	expired := newCert(t, v.key, "expired idp", time.Now().AddDate(-1, 0, 0), time.Now().AddDate(0, 0, -3))
	v.set(func(v *vendorIdP) {
		v.cert, v.idp.Certificate = expired, expired
		v.nameIDFormat, v.nameID = string(saml.EmailAddressNameIDFormat), "old@"+u.domain
	})
	id := u.samlConnection(v, nil)
	code, reason := u.failure(id)
	if code != "signature_invalid" || !strings.Contains(reason, "every IdP certificate the connection trusts has expired (the last on "+expired.NotAfter.UTC().Format(time.RFC3339)+")") {
		t.Fatalf("expired certificate: %s %q; want signature_invalid saying it expired and when", code, reason)
	}
}

// TestSAMLRefusalReasons sends, through the binary, what a misconfigured
// or tampered IdP sends, and reads what the tenant admin is told: the
// reason code, and a reason that is ours from its first word and names
// what was received.
func TestSAMLRefusalReasons(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	v := newVendorIdP(t)
	id := u.samlConnection(v, nil)
	other := newRSAKey(t)
	for _, tt := range []struct {
		name, code, has string
		shape           func(v *vendorIdP)
	}{
		{"Destination of another SP", "destination_mismatch", "https://other-sp.example/acs", func(v *vendorIdP) {
			v.mutateResp = func(r *saml.Response) { r.Destination = "https://other-sp.example/acs" }
		}},
		{"Recipient of another SP", "destination_mismatch", "Recipient", func(v *vendorIdP) {
			v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
				a.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient = "https://other-sp.example/acs"
			}
		}},
		{"Audience of another SP", "audience_mismatch", `Audience was "https://other-sp.example"`, func(v *vendorIdP) {
			v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
				a.Conditions.AudienceRestrictions[0].Audience.Value = "https://other-sp.example"
			}
		}},
		{"InResponseTo of another request", "request_mismatch", "InResponseTo", func(v *vendorIdP) {
			v.mutateResp = func(r *saml.Response) { r.InResponseTo = "id-another" }
			v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
				a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = "id-another"
			}
		}},
		{"NotOnOrAfter passed", "response_expired", "NotOnOrAfter", func(v *vendorIdP) {
			v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
				a.Conditions.NotOnOrAfter = time.Now().Add(-2 * time.Minute)
			}
		}},
		{"another IdP's issuer", "issuer_mismatch", "Issuer", func(v *vendorIdP) {
			v.mutateResp = func(r *saml.Response) { r.Issuer.Value = "https://other-idp.example" }
		}},
		{"signed with an untrusted key", "signature_invalid", "signature", func(v *vendorIdP) {
			v.signer, v.signerCert = other, newCert(t, other, "other", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
		}},
		{"nothing signed", "signature_invalid", "unsigned", func(v *vendorIdP) { v.signAssertion, v.signResponse = false, false }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := u.with(t)
			v.set(func(v *vendorIdP) {
				v.signAssertion, v.signResponse, v.mutate, v.mutateResp, v.signer, v.signerCert = true, true, nil, nil, nil, nil
				v.nameIDFormat, v.nameID = string(saml.EmailAddressNameIDFormat), "rita@"+u.domain
				tt.shape(v)
			})
			code, reason := u.failure(id)
			if code != tt.code || !strings.HasPrefix(reason, "connections: ") || !strings.Contains(reason, tt.has) {
				t.Fatalf("%s %q; want %s, a reason of ours naming %q", code, reason, tt.code, tt.has)
			}
		})
	}
}

// TestOIDCAuthorizationResponseIss: the authorization response's iss
// (RFC 9207) is checked against the connection's issuer. A response
// naming another issuer is what a mix-up attack looks like (a code or an
// error another IdP issued, relayed to this connection's callback): it is
// refused, and the tenant admin is told both issuers. An IdP whose
// discovery advertises iss and sends none is refused too; one that
// neither advertises nor sends it signs in as before.
func TestOIDCAuthorizationResponseIss(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	for _, tt := range []struct {
		name      string
		advertise bool
		iss       func(op *vendorOP) string
		idpError  string
		// reason, when set, is a refusal whose reason says it.
		reason []string
	}{
		{name: "advertised and sent, the IdP's own", advertise: true, iss: func(op *vendorOP) string { return op.issuer }},
		{name: "sent without being advertised, the IdP's own", iss: func(op *vendorOP) string { return op.issuer }},
		{name: "neither advertised nor sent", iss: func(*vendorOP) string { return "" }},
		{name: "another IdP's issuer", advertise: true, iss: func(*vendorOP) string { return "https://attacker.example/oauth2/default" },
			reason: []string{`names the issuer "https://attacker.example/oauth2/default"`, "mix-up"}},
		{name: "another IdP's issuer, from an IdP that does not advertise it", iss: func(*vendorOP) string { return "https://attacker.example" },
			reason: []string{`names the issuer "https://attacker.example"`}},
		{name: "the issuer with a trailing slash it does not have", iss: func(op *vendorOP) string { return op.issuer + "/" },
			reason: []string{"names the issuer"}},
		{name: "advertised and not sent", advertise: true, iss: func(*vendorOP) string { return "" },
			reason: []string{"authorization_response_iss_parameter_supported", "has none"}},
		{name: "an error response of another IdP", advertise: true, idpError: "access_denied",
			iss: func(*vendorOP) string { return "https://attacker.example" }, reason: []string{`names the issuer "https://attacker.example"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := u.with(t)
			op := newVendorOP(t, "/oauth2/default")
			op.set(func(op *vendorOP) {
				op.claims = map[string]any{"sub": "00u-iss", "email": "ivy@" + u.domain, "email_verified": true}
				op.issParam, op.respIss, op.authorizeError = tt.advertise, tt.iss(op), tt.idpError
			})
			id := u.oidcConnection(op, nil)
			if tt.reason == nil {
				if c := u.mustSignIn(id); c["idp_subject"] != "00u-iss" {
					t.Fatalf("claims %v", c)
				}
				return
			}
			code, reason := u.failure(id)
			if code != "issuer_mismatch" {
				t.Fatalf("refusal %s %q; want issuer_mismatch", code, reason)
			}
			for _, want := range tt.reason {
				if !strings.Contains(reason, want) {
					t.Errorf("reason %q does not say %q", reason, want)
				}
			}
		})
	}
}

// TestAuthTimeIsTheIdPs: an application that asks for a fresh sign-in
// (max_age, prompt=login) is sent to the IdP with ForceAuthn or
// prompt=login, and an IdP may answer from a session of its own all the
// same (Google ignores prompt=login). The id_token's auth_time is when
// the IdP says it authenticated the user — SAML AuthnInstant, OIDC
// auth_time — so the application can see it got no fresh sign-in; not
// the moment the answer reached the broker. An IdP that says nothing, or
// a time ahead of the broker's clock, gives the time of the answer.
func TestAuthTimeIsTheIdPs(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	twoHoursAgo := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	ahead := time.Now().Add(10 * time.Minute)
	for _, tt := range []struct {
		name string
		conn func(u *upstream) string
		want time.Time // zero: about now
	}{
		{"SAML AuthnInstant two hours ago", func(u *upstream) string {
			v := newVendorIdP(u.t)
			v.set(func(v *vendorIdP) {
				v.nameIDFormat, v.nameID = string(saml.EmailAddressNameIDFormat), "amy@"+u.domain
				v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) { a.AuthnStatements[0].AuthnInstant = twoHoursAgo }
			})
			return u.samlConnection(v, nil)
		}, twoHoursAgo},
		{"SAML AuthnInstant ahead of the broker's clock", func(u *upstream) string {
			v := newVendorIdP(u.t)
			v.set(func(v *vendorIdP) {
				v.nameIDFormat, v.nameID = string(saml.EmailAddressNameIDFormat), "amy@"+u.domain
				v.mutate = func(_ *saml.IdpAuthnRequest, a *saml.Assertion) { a.AuthnStatements[0].AuthnInstant = ahead }
			})
			return u.samlConnection(v, nil)
		}, time.Time{}},
		{"OIDC auth_time two hours ago", func(u *upstream) string {
			op := newVendorOP(u.t, "/")
			op.set(func(op *vendorOP) {
				op.claims = map[string]any{"sub": "g-1", "email": "amy@" + u.domain, "email_verified": true, "auth_time": twoHoursAgo.Unix()}
			})
			return u.oidcConnection(op, nil)
		}, twoHoursAgo},
		{"OIDC without auth_time", func(u *upstream) string {
			op := newVendorOP(u.t, "/")
			op.set(func(op *vendorOP) {
				op.claims = map[string]any{"sub": "g-2", "email": "amy@" + u.domain, "email_verified": true}
			})
			return u.oidcConnection(op, nil)
		}, time.Time{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := u.with(t)
			for _, ask := range []url.Values{{"max_age": {"300"}}, {"prompt": {"login"}}} {
				before := time.Now().Truncate(time.Second)
				res := u.signIn(tt.conn(u), ask)
				if res.code == "" {
					t.Fatalf("%v: no code: %d %v", ask, res.status, u.lastFailure())
				}
				c := u.claims(res.code)
				at := time.Unix(int64(c["auth_time"].(float64)), 0)
				if want := tt.want; !want.IsZero() && !at.Equal(want) {
					t.Errorf("%v: auth_time %v; want the IdP's %v", ask, at, want)
				} else if want.IsZero() && (at.Before(before) || at.After(time.Now())) {
					t.Errorf("%v: auth_time %v; want the time of the answer (%v or later)", ask, at, before)
				}
			}
		})
	}
}

// TestOIDCCallbackInAnotherBrowser: an attacker starts a sign-in of their
// own, lets their IdP answer, and instead of opening the callback URL
// (it carries the code and the state) sends it to a victim. Opened in the
// victim's browser, it must not sign the victim in to the attacker's
// account — neither at the application nor, through an SSO cookie, at
// the next one (login CSRF). The same URL in the browser that started
// the sign-in completes it.
func TestOIDCCallbackInAnotherBrowser(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	op := newVendorOP(t, "/oauth2/default")
	op.set(func(op *vendorOP) {
		op.claims = map[string]any{"sub": "00u-mallory", "email": "mallory@" + u.domain, "email_verified": true}
	})
	id := u.oidcConnection(op, nil)
	// callback runs a browser up to the IdP's redirect to the broker's
	// callback, and returns that URL and the browser.
	callback := func() (string, *http.Client) {
		jar, _ := cookiejar.New(nil)
		var cb string
		br := &http.Client{Jar: jar, Timeout: 15 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if strings.Contains(r.URL.Path, "/sso/oidc/") {
				cb = r.URL.String()
				return http.ErrUseLastResponse
			}
			return nil
		}}
		q := url.Values{"client_id": {u.clientID}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"},
			"scope": {"openid email"}, "state": {"st8"}, "connection": {id}}
		resp, err := br.Get(u.b.base + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if cb == "" {
			t.Fatalf("no callback: %d", resp.StatusCode)
		}
		return cb, br
	}
	open := func(br *http.Client, cb string) (code string, status int) {
		br.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
			if r.URL.Host == "app.example" {
				code = r.URL.Query().Get("code")
				return http.ErrUseLastResponse
			}
			return nil
		}
		resp, err := br.Get(cb)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return code, resp.StatusCode
	}

	cb, _ := callback()
	victimJar, _ := cookiejar.New(nil)
	victim := &http.Client{Jar: victimJar, Timeout: 15 * time.Second}
	if code, status := open(victim, cb); code != "" || status != http.StatusForbidden {
		t.Fatalf("the attacker's callback in the victim's browser: code %q, status %d; want a refusal", code, status)
	}
	base, _ := url.Parse(u.b.base)
	for _, ck := range victimJar.Cookies(base) {
		if ck.Name == "idb_session" {
			t.Fatalf("the victim's browser got an SSO cookie: %v", ck)
		}
	}
	if f := u.lastFailure(); f["reason_code"] != "request_mismatch" || !strings.Contains(fmt.Sprint(f["reason"]), "another browser") {
		t.Fatalf("authentication.failed %v: want request_mismatch saying another browser", f)
	}

	cb, br := callback()
	if code, status := open(br, cb); code == "" {
		t.Fatalf("the callback in the browser that started the sign-in: status %d, no code", status)
	}
}

// TestLoginStepInAnotherBrowser: the attacker of
// TestOIDCCallbackInAnotherBrowser first sends the victim's browser to the
// login step of their own sign-in (/login?id=…, which the broker's
// redirect showed them; a link, a pop-up or an image does it), then to
// the callback of their own IdP answer. The login step must not move the
// sign-in to the victim's browser: the callback is refused there, and
// still completes in the attacker's. The work-email form's POST is held to
// the same rule.
func TestLoginStepInAnotherBrowser(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	op := newVendorOP(t, "/oauth2/default")
	op.set(func(op *vendorOP) {
		op.claims = map[string]any{"sub": "00u-mallory", "email": "mallory@" + u.domain, "email_verified": true}
	})
	id := u.oidcConnection(op, nil)
	newBrowser := func(stop func(*http.Request) bool) *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Timeout: 15 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if stop(r) {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	}
	// start runs the attacker's browser up to the IdP's redirect to the
	// broker's callback, and returns that URL, the login step's URL and
	// the browser; hints are the authorization request's routing.
	start := func(hints url.Values) (cb, login string, br *http.Client) {
		br = newBrowser(func(r *http.Request) bool {
			if r.URL.Path == "/login" {
				login = r.URL.String()
			}
			if strings.Contains(r.URL.Path, "/sso/oidc/") {
				cb = r.URL.String()
				return true
			}
			return false
		})
		q := url.Values{"client_id": {u.clientID}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"},
			"scope": {"openid email"}, "state": {"st8"}}
		for k, v := range hints {
			q[k] = v
		}
		resp, err := br.Get(u.b.base + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if hints == nil {
			// The work-email page: the attacker submits it.
			resp.Body.Close()
			lu, _ := url.Parse(login)
			resp, err = br.PostForm(u.b.base+"/login", url.Values{"id": {lu.Query().Get("id")}, "email": {"mallory@" + u.domain}})
			if err != nil {
				t.Fatal(err)
			}
		}
		resp.Body.Close()
		if cb == "" || login == "" {
			t.Fatalf("no callback or login step: %d (%q, %q)", resp.StatusCode, cb, login)
		}
		return cb, login, br
	}
	open := func(br *http.Client, cb string) (code string, status int) {
		br.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
			if r.URL.Host == "app.example" {
				code = r.URL.Query().Get("code")
				return http.ErrUseLastResponse
			}
			return nil
		}
		resp, err := br.Get(cb)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return code, resp.StatusCode
	}
	for _, tc := range []struct {
		name  string
		hints url.Values
		// visit is what the victim's browser is made to do first.
		visit func(victim *http.Client, login string) (*http.Response, error)
	}{
		{"the login step", url.Values{"connection": {id}}, func(v *http.Client, login string) (*http.Response, error) { return v.Get(login) }},
		{"the work-email form", nil, func(v *http.Client, login string) (*http.Response, error) {
			lu, _ := url.Parse(login)
			return v.PostForm(u.b.base+"/login", url.Values{"id": {lu.Query().Get("id")}, "email": {"mallory@" + u.domain}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cb, login, attacker := start(tc.hints)
			victim := newBrowser(func(r *http.Request) bool { return !strings.HasPrefix(r.URL.String(), u.b.base) })
			resp, err := tc.visit(victim, login)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if code, status := open(victim, cb); code != "" || status != http.StatusForbidden {
				t.Fatalf("the attacker's callback in the victim's browser, after it opened the login step: code %q, status %d; want a refusal", code, status)
			}
			base, _ := url.Parse(u.b.base)
			for _, ck := range victim.Jar.Cookies(base) {
				if ck.Name == "idb_session" {
					t.Fatalf("the victim's browser got an SSO cookie: %v", ck)
				}
			}
			// The refusal spent the sign-in; the attacker's own browser
			// starts another, and completes it.
			cb, _, attacker = start(tc.hints)
			if code, status := open(attacker, cb); code == "" {
				t.Fatalf("the callback in the browser that started the sign-in: status %d, no code", status)
			}
		})
	}
}

// TestOIDCIdPIsAskedMaxAge: a fresh sign-in the application asks for
// (prompt=login, max_age) is asked of an OIDC IdP with prompt=login and
// max_age (0 for prompt=login), so that an IdP that ignores prompt=login
// and answers from its own session, as Google does, still says when it
// authenticated the user (auth_time, which OpenID Connect requires in
// answer to max_age), and the application gets that time.
func TestOIDCIdPIsAskedMaxAge(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	op := newVendorOP(t, "/")
	idpSession := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	op.set(func(op *vendorOP) {
		op.claims = map[string]any{"sub": "g-3", "email": "gus@" + u.domain, "email_verified": true}
		op.sessionAuthTime = idpSession
	})
	id := u.oidcConnection(op, nil)
	for _, tt := range []struct {
		ask    url.Values
		maxAge string
	}{
		{url.Values{"prompt": {"login"}}, "0"},
		{url.Values{"max_age": {"600"}}, "600"},
	} {
		res := u.signIn(id, tt.ask)
		if res.code == "" {
			t.Fatalf("%v: no code: %d %v", tt.ask, res.status, u.lastFailure())
		}
		var q url.Values
		op.set(func(op *vendorOP) { q = op.lastAuthorize })
		if q.Get("prompt") != "login" || q.Get("max_age") != tt.maxAge {
			t.Errorf("%v: the IdP was asked prompt=%q max_age=%q; want login and %s", tt.ask, q.Get("prompt"), q.Get("max_age"), tt.maxAge)
		}
		c := u.claims(res.code)
		if at := time.Unix(int64(c["auth_time"].(float64)), 0); !at.Equal(idpSession) {
			t.Errorf("%v: auth_time %v; want the IdP's session's %v", tt.ask, at, idpSession)
		}
	}
	// A sign-in that asks nothing of the kind asks nothing of the IdP.
	if res := u.signIn(id, nil); res.code == "" {
		t.Fatalf("no code")
	}
	var q url.Values
	op.set(func(op *vendorOP) { q = op.lastAuthorize })
	if q.Has("max_age") || q.Has("prompt") {
		t.Errorf("a plain sign-in asked the IdP %v", q)
	}
}
