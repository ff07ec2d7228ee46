package saml

import (
	"slices"
	"testing"

	"github.com/crewjam/saml"

	"github.com/idbroker/idbroker/connections"
)

// The attribute names IdPs send, spelled out: the test checks the
// mapping against the wire, not against its own constants.
const (
	claimsDisplay  = "http://schemas.microsoft.com/identity/claims/displayname"
	claimsEmail    = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	claimsGiven    = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
	claimsGroups   = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
	claimsName     = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
	claimsObjectID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
	claimsRole     = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
	claimsSurname  = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
	claimsTenantID = "http://schemas.microsoft.com/identity/claims/tenantid"
	claimsUPN      = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
	oidDisplayName = "urn:oid:2.16.840.1.113730.3.1.241"
	oidGivenName   = "urn:oid:2.5.4.42"
	oidMail        = "urn:oid:0.9.2342.19200300.100.1.3"
	oidMemberOf    = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"
	oidSurname     = "urn:oid:2.5.4.4"
)

// attrStatement is an AttributeStatement with string values, in order.
func attrStatement(kv ...any) []saml.AttributeStatement {
	var st saml.AttributeStatement
	for i := 0; i < len(kv); i += 2 {
		a := saml.Attribute{Name: kv[i].(string), NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"}
		for _, v := range kv[i+1].([]string) {
			a.Values = append(a.Values, saml.AttributeValue{Type: "xs:string", Value: v})
		}
		st.Attributes = append(st.Attributes, a)
	}
	return []saml.AttributeStatement{st}
}

// mappedSignIn sends idp's signed assertion with nameID and the attribute
// statements through the real ACS validation of a new connection to idp
// that maps attributes by mapping (nil: the default), and returns what the
// connector made of it.
func (e *env) mappedSignIn(t *testing.T, idp *testIdP, mapping *connections.AttributeMapping, nameID, nameIDFormat string,
	statements []saml.AttributeStatement) (connections.Result, error) {
	t.Helper()
	conn := e.samlConn(idp, func(s *Settings) { s.AttributeMapping = mapping })
	cn, err := e.Reg.Connector(e.Ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	raw := idp.response(t, e.Issuer, conn, respOpts{signAssertion: true, inResponseTo: "id-1", issuedAt: e.Clock.Now(),
		nameID: nameID, nameIDFormat: nameIDFormat,
		mutate: func(a *saml.Assertion) { a.AttributeStatements = statements }})
	return cn.(*samlConnector).finish(e.Ctx, raw, e.pend(conn, "id-1", ""))
}

// TestSAMLAttributeMapping sends, through the real ACS validation, the
// attribute names each IdP family uses (contract section 2), and checks the
// normalised profile under the default mapping, the family's preset, and a
// connection's own override.
func TestSAMLAttributeMapping(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	type want struct {
		email, given, family, name string
		groups                     []string
	}
	alice := want{"alice@example.com", "Alice", "Liddell", "Alice Liddell", []string{"Engineering", "Admins"}}
	for _, tt := range []struct {
		name         string
		mapping      *connections.AttributeMapping
		nameID       string
		nameIDFormat string
		attrs        []saml.AttributeStatement
		want         want
	}{
		{name: "Okta", mapping: &connections.AttributeMapping{Preset: connections.PresetOkta},
			attrs: attrStatement("email", []string{"Alice@Example.com"}, "firstName", []string{"Alice"}, "lastName", []string{"Liddell"},
				"groups", []string{"Engineering", "Admins"}),
			want: alice},
		{name: "Entra ID", mapping: &connections.AttributeMapping{Preset: connections.PresetEntra},
			attrs: attrStatement(claimsEmail, []string{"alice@example.com"}, claimsGiven, []string{"Alice"}, claimsSurname, []string{"Liddell"},
				claimsDisplay, []string{"Alice Liddell"}, claimsGroups, []string{"Engineering", "Admins"},
				claimsObjectID, []string{"0b7a-oid"}, claimsTenantID, []string{"72f9-tid"}),
			want: alice},
		{name: "Entra ID with only a UPN", mapping: &connections.AttributeMapping{Preset: connections.PresetEntra},
			attrs: attrStatement(claimsUPN, []string{"alice@example.com"}, claimsGiven, []string{"Alice"}, claimsSurname, []string{"Liddell"}),
			want:  want{"alice@example.com", "Alice", "Liddell", "Alice Liddell", []string{}}},
		{name: "Google Workspace: email in the NameID", mapping: &connections.AttributeMapping{Preset: connections.PresetGoogle},
			nameID: "alice@example.com", nameIDFormat: string(saml.EmailAddressNameIDFormat),
			attrs: attrStatement("first_name", []string{"Alice"}, "last_name", []string{"Liddell"}),
			want:  want{"alice@example.com", "Alice", "Liddell", "Alice Liddell", []string{}}},
		{name: "ADFS", mapping: &connections.AttributeMapping{Preset: connections.PresetADFS},
			attrs: attrStatement(claimsEmail, []string{"alice@example.com"}, claimsGiven, []string{"Alice"}, claimsSurname, []string{"Liddell"},
				claimsName, []string{"Alice Liddell"}, claimsRole, []string{"Engineering", "Admins"}),
			want: alice},
		{name: "generic, urn:oid names (Shibboleth)",
			attrs: attrStatement(oidMail, []string{"alice@example.com"}, oidGivenName, []string{"Alice"}, oidSurname, []string{"Liddell"},
				oidDisplayName, []string{"Alice Liddell"}, oidMemberOf, []string{"Engineering", "Admins", "Engineering"}),
			want: alice},
		// OneLogin's default parameters, with a persistent NameID (its
		// "OneLogin ID" or "UUID" choice): nothing but the names says
		// which is the email.
		{name: "OneLogin", nameID: "52133947",
			attrs: attrStatement("User.email", []string{"alice@example.com"}, "User.FirstName", []string{"Alice"}, "User.LastName", []string{"Liddell"},
				"memberOf", []string{"Engineering", "Admins"}),
			want: alice},
		// Keycloak's X500 mappers named by OID alone (no FriendlyName),
		// and its "Role list" mapper.
		{name: "Keycloak", nameID: "f3b1c0de-0000-4000-8000-000000000001",
			attrs: attrStatement("urn:oid:1.2.840.113549.1.9.1", []string{"alice@example.com"}, oidGivenName, []string{"Alice"}, oidSurname, []string{"Liddell"},
				"Role", []string{"Engineering", "Admins"}),
			want: alice},
		{name: "generic understands every family", attrs: attrStatement(claimsEmail, []string{"alice@example.com"}, "givenName", []string{"Alice"},
			"sn", []string{"Liddell"}, claimsGroups, []string{"Engineering", "Admins"}),
			want: alice},
		{name: "override: the connection's own attribute names win",
			mapping: &connections.AttributeMapping{Preset: connections.PresetOkta, Email: []string{"corpMail"}, Groups: []string{"teams"}},
			attrs: attrStatement("email", []string{"personal@elsewhere.example"}, "corpMail", []string{"alice@example.com"},
				"firstName", []string{"Alice"}, "lastName", []string{"Liddell"}, "groups", []string{"ignored"}, "teams", []string{"Engineering", "Admins"}),
			want: alice},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.mappedSignIn(t, idp, tt.mapping, tt.nameID, tt.nameIDFormat, tt.attrs)
			if err != nil {
				t.Fatal(err)
			}
			p := res.Profile
			got := want{p.Email, p.GivenName, p.FamilyName, p.Name, p.Groups}
			if got.email != tt.want.email || got.given != tt.want.given || got.family != tt.want.family ||
				got.name != tt.want.name || !slices.Equal(got.groups, tt.want.groups) {
				t.Fatalf("profile = %+v, want %+v", got, tt.want)
			}
			if !p.EmailVerified || p.IdPSubject == "" || p.Raw["name_id"] != p.IdPSubject {
				t.Fatalf("subject %q, verified %v, raw %v", p.IdPSubject, p.EmailVerified, p.Raw)
			}
		})
	}
}

// TestSAMLNameIDAndEmail holds which NameID and attribute names a profile's
// email and subject come from, through the real ACS validation: a NameID
// that looks like an address is the email only when its format does not
// say it is an opaque persistent id, an email attribute wins over it, an
// attribute is found by its FriendlyName too, and a transient NameID is
// refused only when nothing else keys the user.
func TestSAMLNameIDAndEmail(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	named := func(name, friendly, value string) saml.Attribute {
		return saml.Attribute{Name: name, FriendlyName: friendly, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
			Values: []saml.AttributeValue{{Type: "xs:string", Value: value}}}
	}
	for _, tt := range []struct {
		name         string
		mapping      *connections.AttributeMapping
		nameID       string
		nameIDFormat string
		attrs        []saml.Attribute
		want         error // nil = accepted
		email        string
		subject      string
	}{
		{name: "unspecified NameID that is an address, no email attribute",
			nameID: "alice@example.com", nameIDFormat: string(saml.UnspecifiedNameIDFormat),
			attrs: []saml.Attribute{named("givenName", "", "Alice")},
			email: "alice@example.com", subject: "alice@example.com"},
		{name: "an email attribute wins over an unspecified NameID that is an address",
			nameID: "old.alias@example.com", nameIDFormat: string(saml.UnspecifiedNameIDFormat),
			attrs: []saml.Attribute{named("email", "", "alice@example.com")},
			email: "alice@example.com", subject: "old.alias@example.com"},
		{name: "a persistent NameID that looks like an address is not an email",
			nameID: "alice@example.com", nameIDFormat: string(saml.PersistentNameIDFormat),
			attrs: []saml.Attribute{named("givenName", "", "Alice")},
			want:  connections.ErrProfile},
		{name: "email attribute found by its FriendlyName",
			attrs: []saml.Attribute{named("urn:example:corp:mail", "mail", "alice@example.com")},
			email: "alice@example.com", subject: "00u1abcd"},
		{name: "transient NameID with a subject attribute mapped",
			mapping: &connections.AttributeMapping{Subject: []string{"employeeNumber"}},
			nameID:  "_t8f2c", nameIDFormat: string(saml.TransientNameIDFormat),
			attrs: []saml.Attribute{named("employeeNumber", "", "E-1042"), named("email", "", "alice@example.com")},
			email: "alice@example.com", subject: "E-1042"},
		// Shibboleth: transient NameID, the user named by the Subject
		// Identifier profile's attributes (released by its default
		// attribute resolver since v4) or eduPersonTargetedID.
		{name: "Shibboleth: transient NameID, pairwise-id and subject-id",
			nameID: "AAdzZWNyZXQx", nameIDFormat: string(saml.TransientNameIDFormat),
			attrs: []saml.Attribute{named("urn:oasis:names:tc:SAML:attribute:subject-id", "subject-id", "alice@example.com"),
				named("urn:oasis:names:tc:SAML:attribute:pairwise-id", "pairwise-id", "HT3ZQ7UJ4OB4DNIUMRYNKWNOFKLWT2RM@example.com"),
				named("urn:oid:0.9.2342.19200300.100.1.3", "mail", "alice@example.com")},
			email: "alice@example.com", subject: "HT3ZQ7UJ4OB4DNIUMRYNKWNOFKLWT2RM@example.com"},
		{name: "Shibboleth: transient NameID, subject-id",
			nameID: "AAdzZWNyZXQx", nameIDFormat: string(saml.TransientNameIDFormat),
			attrs: []saml.Attribute{named("urn:oasis:names:tc:SAML:attribute:subject-id", "subject-id", "8142@example.com"),
				named("urn:oid:0.9.2342.19200300.100.1.3", "mail", "alice@example.com")},
			email: "alice@example.com", subject: "8142@example.com"},
		{name: "Shibboleth 3: transient NameID, eduPersonTargetedID as a NameID value",
			nameID: "AAdzZWNyZXQx", nameIDFormat: string(saml.TransientNameIDFormat),
			attrs: []saml.Attribute{{Name: "urn:oid:1.3.6.1.4.1.5923.1.1.1.10", FriendlyName: "eduPersonTargetedID", NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
				Values: []saml.AttributeValue{{NameID: &saml.NameID{Format: string(saml.PersistentNameIDFormat), Value: "0a1b2c3d4e5f"}}}},
				named("urn:oid:0.9.2342.19200300.100.1.3", "mail", "alice@example.com")},
			email: "alice@example.com", subject: "0a1b2c3d4e5f"},
		{name: "a persistent NameID stays the key beside a pairwise-id",
			attrs: []saml.Attribute{named("urn:oasis:names:tc:SAML:attribute:pairwise-id", "", "X@example.com"), named("email", "", "alice@example.com")},
			email: "alice@example.com", subject: "00u1abcd"},
		{name: "transient NameID, no identifier attribute",
			nameID: "AAdzZWNyZXQx", nameIDFormat: string(saml.TransientNameIDFormat),
			attrs: []saml.Attribute{named("email", "", "alice@example.com")}, want: connections.ErrProfile},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.mappedSignIn(t, idp, tt.mapping, tt.nameID, tt.nameIDFormat, []saml.AttributeStatement{{Attributes: tt.attrs}})
			wantErr(t, err, tt.want, "")
			if tt.want != nil {
				return
			}
			if p := res.Profile; p.Email != tt.email || p.IdPSubject != tt.subject {
				t.Fatalf("email %q, subject %q; want %q, %q", p.Email, p.IdPSubject, tt.email, tt.subject)
			}
		})
	}
}

// TestSAMLAttributeValueShapes: attribute values as IdPs type them —
// xs:anyType (AD FS), no xsi:type at all, empty and xsi:nil values beside
// real ones (Okta sends an empty value for an unset profile field), a
// value padded with white space — are read as their text; what is empty
// is skipped, never taken as the email or a group.
func TestSAMLAttributeValueShapes(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	res, err := e.mappedSignIn(t, idp, nil, "00u1abcd", string(saml.PersistentNameIDFormat), []saml.AttributeStatement{{Attributes: []saml.Attribute{
		{Name: "email", Values: []saml.AttributeValue{{Value: ""}, {Type: "xs:anyType", Value: "  alice@example.com\n"}}},
		{Name: "firstName", Values: []saml.AttributeValue{{Nil: true}, {Value: "Alice"}}},
		{Name: "lastName", Values: []saml.AttributeValue{}},
		{Name: "groups", Values: []saml.AttributeValue{{Value: ""}, {Type: "xs:string", Value: "Engineering"}, {Nil: true}, {Value: " Admins "}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Profile
	if p.Email != "alice@example.com" || p.GivenName != "Alice" || p.FamilyName != "" || p.Name != "Alice" || !slices.Equal(p.Groups, []string{"Engineering", "Admins"}) {
		t.Fatalf("profile = %+v", p)
	}
}
