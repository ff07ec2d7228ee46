package saml

import (
	"slices"
	"testing"

	"github.com/crewjam/saml"

	"github.com/idbroker/idbroker/connections"
)

// TestSAMLEntraSubject: through the real ACS validation, an IdP whose
// issuer is Entra ID's keys a user who comes with an object id by tenant
// and object id, whatever the NameID; the assertion's tenantid must be
// the issuer's; a subject the admin mapped, a claim set without the
// object id, and another IdP keep the NameID.
func TestSAMLEntraSubject(t *testing.T) {
	const (
		tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		oid = "0b7a9c3e-5d1f-4c7e-9a51-2f3e4d5c6b7a"
	)
	e := newEnv(t, envOpts{})
	entra := newTestIdP(t, 0)
	entra.entityID = "https://sts.windows.net/" + tid + "/"
	other := newTestIdP(t, 1)
	email := string(saml.EmailAddressNameIDFormat)
	claims := func(tenant, object string) []saml.AttributeStatement {
		return attrStatement(claimsEmail, []string{"alice@example.com"}, claimsTenantID, []string{tenant}, claimsObjectID, []string{object})
	}
	for _, tt := range []struct {
		name            string
		idp             *testIdP
		mapping         *connections.AttributeMapping
		nameID, format  string
		attrs           []saml.AttributeStatement
		subject, before string
		wantErr         string
	}{
		{name: "Entra: UPN NameID", idp: entra, nameID: "alice@example.com", format: email, attrs: claims(tid, oid),
			subject: tid + ":" + oid, before: "alice@example.com"},
		{name: "Entra: persistent NameID, ids in capitals", idp: entra, nameID: "Zq3-persistent", attrs: claims("72F988BF-86F1-41AF-91AB-2D7CD011DB47", "0B7A9C3E-5D1F-4C7E-9A51-2F3E4D5C6B7A"),
			subject: tid + ":" + oid, before: "Zq3-persistent"},
		{name: "Entra: transient NameID is no key of before", idp: entra, nameID: "_t1", format: string(saml.TransientNameIDFormat), attrs: claims(tid, oid),
			subject: tid + ":" + oid},
		{name: "Entra: another tenant's tenantid", idp: entra, nameID: "alice@example.com", format: email,
			attrs: claims("11111111-2222-3333-4444-555555555555", oid), wantErr: "Entra tenantid"},
		{name: "Entra: no tenantid", idp: entra, nameID: "alice@example.com", format: email,
			attrs: attrStatement(claimsEmail, []string{"alice@example.com"}, claimsObjectID, []string{oid}), wantErr: "Entra tenantid"},
		{name: "Entra: objectidentifier not an object id", idp: entra, nameID: "alice@example.com", format: email,
			attrs: claims(tid, "alice@example.com"), wantErr: "not an object id"},
		{name: "Entra without objectidentifier: the NameID", idp: entra, nameID: "alice@example.com", format: email,
			attrs: attrStatement(claimsEmail, []string{"alice@example.com"}), subject: "alice@example.com"},
		{name: "Entra, subject mapped by the admin", idp: entra, mapping: &connections.AttributeMapping{Subject: []string{claimsEmail}},
			nameID: "Zq3-persistent", attrs: claims(tid, oid), subject: "alice@example.com"},
		{name: "another IdP sending Entra's claims: the NameID", idp: other, nameID: "alice@example.com", format: email, attrs: claims(tid, oid),
			subject: "alice@example.com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.mappedSignIn(t, tt.idp, tt.mapping, tt.nameID, tt.format, tt.attrs)
			if tt.wantErr != "" {
				wantErr(t, err, connections.ErrProfile, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := res.Profile
			keyed := tt.subject != "" && tt.subject == tid+":"+oid
			if p.IdPSubject != tt.subject || p.PreviousIdPSubject != tt.before || (p.KeyScheme == tid+":") != keyed || (p.PersonAttribute != "") != keyed {
				t.Fatalf("subject %q before %q scheme %q person %q, want %q before %q (keyed %v)",
					p.IdPSubject, p.PreviousIdPSubject, p.KeyScheme, p.PersonAttribute, tt.subject, tt.before, keyed)
			}
		})
	}
}

func TestEntraTenantOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/":              "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"https://sts.windows.net/72F988BF-86F1-41AF-91AB-2D7CD011DB47/":              "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47":               "",
		"https://sts.windows.net/contoso.com/":                                       "",
		"https://sts.windows.net.evil.example/72f988bf-86f1-41af-91ab-2d7cd011db47/": "",
		"http://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/":               "",
		"https://idp.example.net/metadata":                                           "",
		// National clouds: 21Vianet's in China, Azure Government.
		"https://sts.chinacloudapi.cn/72f988bf-86f1-41af-91ab-2d7cd011db47/":         "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"https://login.microsoftonline.us/72f988bf-86f1-41af-91ab-2d7cd011db47/":     "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"https://login.microsoftonline.us/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0": "",
	} {
		if got := entraTenantOf(in); got != want {
			t.Errorf("entraTenantOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSAMLEntraGroupsOverage: through the real ACS validation, an Entra
// assertion for a user in too many groups, which carries groups.link
// instead of the groups claim, is flagged on the profile; one with the
// groups claim, or with neither, is not.
func TestSAMLEntraGroupsOverage(t *testing.T) {
	const (
		tid  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		oid  = "0b7a9c3e-5d1f-4c7e-9a51-2f3e4d5c6b7a"
		link = "http://schemas.microsoft.com/claims/groups.link"
	)
	e := newEnv(t, envOpts{})
	entra := newTestIdP(t, 0)
	entra.entityID = "https://sts.windows.net/" + tid + "/"
	graph := "https://graph.windows.net/" + tid + "/users/" + oid + "/getMemberObjects"
	base := []any{claimsEmail, []string{"alice@example.com"}, claimsTenantID, []string{tid}, claimsObjectID, []string{oid}}
	for _, tt := range []struct {
		name     string
		extra    []any
		overage  bool
		groups   []string
		override []string
	}{
		{name: "groups.link instead of groups", extra: []any{link, []string{graph}}, overage: true, groups: []string{}},
		{name: "groups.link with roles still sent", extra: []any{link, []string{graph}, claimsRole, []string{"Admin"}}, overage: true, groups: []string{"Admin"}},
		{name: "groups.link, groups mapped from another attribute", extra: []any{link, []string{graph}, "dept", []string{"R&D"}},
			override: []string{"dept"}, overage: true, groups: []string{"R&D"}},
		{name: "groups sent", extra: []any{claimsGroups, []string{"g1", "g2"}}, groups: []string{"g1", "g2"}},
		{name: "no groups at all", groups: []string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var m *connections.AttributeMapping
			if tt.override != nil {
				m = &connections.AttributeMapping{Groups: tt.override}
			}
			res, err := e.mappedSignIn(t, entra, m, "alice@example.com", string(saml.EmailAddressNameIDFormat), attrStatement(append(slices.Clone(base), tt.extra...)...))
			if err != nil {
				t.Fatal(err)
			}
			if p := res.Profile; p.GroupsOverage != tt.overage || !slices.Equal(p.Groups, tt.groups) {
				t.Fatalf("GroupsOverage %v groups %q, want %v %q", p.GroupsOverage, p.Groups, tt.overage, tt.groups)
			}
		})
	}
}

// TestSAMLEntraGuest: an Entra ID guest (B2B collaboration) comes with the
// host directory's account name for them as the NameID
// ("alice_example.com#EXT#@contoso.onmicrosoft.com"), an address no one
// receives mail at; the broker takes the guest's own address, from the
// mapped email attributes when the host sends it, else from the account
// name, and checks that address's domain.
func TestSAMLEntraGuest(t *testing.T) {
	e := newEnv(t, envOpts{})
	idp := newTestIdP(t, 0)
	email := string(saml.EmailAddressNameIDFormat)
	const upn = "alice_example.com#EXT#@contoso.onmicrosoft.com"
	for _, tt := range []struct {
		name, nameID, format string
		mapping              *connections.AttributeMapping
		attrs                []saml.AttributeStatement
		email                string
		wantErr              error
		contains             string
	}{
		{name: "guest UPN NameID, mail sent", nameID: upn, format: email,
			attrs: attrStatement(claimsEmail, []string{"Alice@Example.com"}), email: "alice@example.com"},
		{name: "guest UPN NameID, mail also the UPN", nameID: upn, format: email,
			attrs: attrStatement(claimsEmail, []string{upn}, claimsUPN, []string{upn}), email: "alice@example.com"},
		{name: "guest UPN NameID, no email attribute", nameID: upn, format: email, email: "alice@example.com"},
		{name: "unspecified NameID, tag in capitals, underscores in the local part",
			nameID: "alice_b_example.com#ext#@contoso.onmicrosoft.com", format: string(saml.UnspecifiedNameIDFormat), email: "alice_b@example.com"},
		{name: "persistent NameID, Entra preset, guest UPN in the upn claim only", nameID: "Zq3-persistent",
			mapping: &connections.AttributeMapping{Preset: connections.PresetEntra},
			attrs:   attrStatement(claimsUPN, []string{upn}), email: "alice@example.com"},
		{name: "a guest from another organisation's domain is checked against that domain", nameID: "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com", format: email,
			wantErr: connections.ErrDomainNotAllowed, contains: `"fabrikam.com"`},
		{name: "an account name that says no address is refused for the host's domain", nameID: "#EXT#@contoso.onmicrosoft.com", format: email,
			wantErr: connections.ErrDomainNotAllowed, contains: `"contoso.onmicrosoft.com"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.mappedSignIn(t, idp, tt.mapping, tt.nameID, tt.format, tt.attrs)
			if tt.wantErr != nil {
				wantErr(t, err, tt.wantErr, tt.contains)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Profile.Email != tt.email {
				t.Fatalf("email %q, want %q", res.Profile.Email, tt.email)
			}
		})
	}
}
