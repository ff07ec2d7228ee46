package connections

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/idbroker/idbroker/store"
)

// Attribute-mapping presets: one per IdP family the contract names.
const (
	PresetGeneric = "generic"
	PresetOkta    = "okta"
	PresetEntra   = "entra"
	PresetGoogle  = "google"
	PresetADFS    = "adfs"
)

// AttributeMapping says which SAML attributes or OIDC claims fill a
// Profile. Each field lists names tried in order; the first present wins.
// A field left empty takes the preset's list, so a connection overrides
// only what its IdP does differently.
type AttributeMapping struct {
	Preset     string   `json:"preset,omitempty"`
	Subject    []string `json:"subject,omitempty"`
	Email      []string `json:"email,omitempty"`
	GivenName  []string `json:"given_name,omitempty"`
	FamilyName []string `json:"family_name,omitempty"`
	Name       []string `json:"name,omitempty"`
	Groups     []string `json:"groups,omitempty"`
}

// Attribute names IdPs use, in the forms the contract lists.
const (
	claimsEmail   = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	claimsGiven   = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
	claimsSurname = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
	claimsName    = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
	claimsUPN     = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
	claimsGroups  = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
	claimsRole    = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
	// Entra ID sends this (a Graph URL) instead of claimsGroups when the
	// user is in more groups than a SAML assertion takes.
	claimsGroupsLink = "http://schemas.microsoft.com/claims/groups.link"
	claimsDisplay    = "http://schemas.microsoft.com/identity/claims/displayname"
	claimsObjectID   = "http://schemas.microsoft.com/identity/claims/objectidentifier"
	claimsTenantID   = "http://schemas.microsoft.com/identity/claims/tenantid"
	oidMail          = "urn:oid:0.9.2342.19200300.100.1.3"
	// PKCS #9 emailAddress: Keycloak's "X500 email" mapper sends it.
	oidPKCS9Email   = "urn:oid:1.2.840.113549.1.9.1"
	oidGivenName    = "urn:oid:2.5.4.42"
	oidSurname      = "urn:oid:2.5.4.4"
	oidDisplayName  = "urn:oid:2.16.840.1.113730.3.1.241"
	oidCommonName   = "urn:oid:2.5.4.3"
	oidMemberOf     = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"
	oidEduPersonUID = "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"
	// AD FS's own claim types for Token-Groups and Common-Name.
	claimsADFSGroup = "http://schemas.xmlsoap.org/claims/Group"
	claimsADFSCN    = "http://schemas.xmlsoap.org/claims/CommonName"
	// OneLogin's default parameter names, capitalised as it sends them.
	oneLoginEmail = "User.email"
	oneLoginGiven = "User.FirstName"
	oneLoginLast  = "User.LastName"
	// Keycloak's "Role list" mapper.
	keycloakRole = "Role"
)

// The generic lists understand every IdP family at once; presets only
// reorder what comes first.
var (
	genericEmail  = []string{"email", "mail", "emailaddress", "Email", claimsEmail, oidMail, oidPKCS9Email, "emailAddress", "user.email", oneLoginEmail}
	genericGiven  = []string{"given_name", "givenName", "firstName", "first_name", "FirstName", claimsGiven, oidGivenName, oneLoginGiven}
	genericFamily = []string{"family_name", "familyName", "sn", "surname", "lastName", "last_name", "LastName", claimsSurname, oidSurname, oneLoginLast}
	genericName   = []string{"name", "displayName", "display_name", "cn", claimsDisplay, claimsName, claimsADFSCN, oidDisplayName, oidCommonName}
	genericGroups = []string{"groups", "group", "memberOf", "Groups", claimsGroups, claimsADFSGroup, claimsRole, oidMemberOf, keycloakRole}
)

var presets = map[string]AttributeMapping{
	PresetGeneric: {Email: genericEmail, GivenName: genericGiven, FamilyName: genericFamily, Name: genericName, Groups: genericGroups},
	PresetOkta:    {Email: genericEmail, GivenName: genericGiven, FamilyName: genericFamily, Name: genericName, Groups: genericGroups},
	PresetEntra: {
		Email:      append([]string{claimsEmail, "email", claimsUPN, "preferred_username", "upn"}, genericEmail...),
		GivenName:  append([]string{claimsGiven}, genericGiven...),
		FamilyName: append([]string{claimsSurname}, genericFamily...),
		Name:       append([]string{claimsDisplay}, genericName...),
		Groups:     append([]string{claimsGroups}, genericGroups...),
	},
	PresetGoogle: {Email: genericEmail, GivenName: genericGiven, FamilyName: genericFamily, Name: genericName, Groups: genericGroups},
	PresetADFS: {
		Email:      append([]string{claimsEmail, claimsUPN}, genericEmail...),
		GivenName:  append([]string{claimsGiven}, genericGiven...),
		FamilyName: append([]string{claimsSurname}, genericFamily...),
		Name:       append([]string{claimsName, claimsDisplay}, genericName...),
		Groups:     append([]string{claimsGroups, claimsADFSGroup, claimsRole}, genericGroups...),
	},
}

// Validate checks a mapping supplied by an operator or tenant admin.
func (m *AttributeMapping) Validate() error {
	if m == nil {
		return nil
	}
	if _, ok := presets[m.Preset]; m.Preset != "" && !ok {
		return Invalid("attribute_mapping.preset", "attribute_mapping.preset %q is not one of generic, okta, entra, google, adfs", m.Preset)
	}
	for field, names := range map[string][]string{"subject": m.Subject, "email": m.Email, "given_name": m.GivenName,
		"family_name": m.FamilyName, "name": m.Name, "groups": m.Groups} {
		if len(names) > 20 {
			return Invalid("attribute_mapping."+field, "attribute_mapping.%s lists more than 20 names", field)
		}
		for _, n := range names {
			if strings.TrimSpace(n) == "" || len(n) > 256 {
				return Invalid("attribute_mapping."+field, "attribute_mapping.%s has an empty or oversized name", field)
			}
		}
	}
	return nil
}

// Resolve merges m over its preset, or over defaultPreset when m names
// none: the lists a connector fills profiles with.
func (m *AttributeMapping) Resolve(defaultPreset string) AttributeMapping {
	name := defaultPreset
	if m != nil && m.Preset != "" {
		name = m.Preset
	}
	p, ok := presets[name]
	if !ok {
		p = presets[PresetGeneric]
	}
	p.Preset = name
	if m == nil {
		return p
	}
	pick := func(over, base []string) []string {
		if len(over) > 0 {
			return over
		}
		return base
	}
	p.Subject = pick(m.Subject, p.Subject)
	p.Email = pick(m.Email, p.Email)
	p.GivenName = pick(m.GivenName, p.GivenName)
	p.FamilyName = pick(m.FamilyName, p.FamilyName)
	p.Name = pick(m.Name, p.Name)
	p.Groups = pick(m.Groups, p.Groups)
	return p
}

// Attrs is a lookup over received attributes or claims, values as
// strings.
type Attrs map[string][]string

// First is the first non-blank value of the first name present.
func (a Attrs) First(names []string) string {
	for _, n := range names {
		for _, v := range a[n] {
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
	}
	return ""
}

// All is every distinct non-blank value of the names, in order.
func (a Attrs) All(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		for _, v := range a[n] {
			if v = strings.TrimSpace(v); v != "" && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}

// Fill sets the profile fields the mapping covers; an email already set
// (from a NameID) is kept, unless it is an Entra ID guest's account name
// (externalTag).
func (m AttributeMapping) Fill(p *Profile, a Attrs) {
	if p.Email == "" {
		p.Email = a.First(m.Email)
	}
	p.Email = m.GuestEmail(p.Email, a)
	p.GivenName = a.First(m.GivenName)
	p.FamilyName = a.First(m.FamilyName)
	p.Name = a.First(m.Name)
	// Entra's …/claims/name is the UPN and AD FS's often DOMAIN\user: an
	// account name, not what the person is called. The name parts, when
	// the IdP sends them, say it better.
	if composed := strings.TrimSpace(p.GivenName + " " + p.FamilyName); p.Name == "" || composed != "" && isAccountName(p.Name) {
		p.Name = composed
	}
	p.Groups = a.All(m.Groups)
	if p.Groups == nil {
		p.Groups = []string{}
	}
	p.GroupsOverage = groupsOverage(a, p.Raw)
}

// groupsOverage reports whether the IdP said it left the groups out for
// their number, in any of Entra ID's forms: the SAML groups.link
// attribute, an id_token's distributed claim for groups (_claim_names
// naming "groups", its _claim_sources entry pointing at Graph), or the
// implicit flow's hasgroups: true. The groups claim itself, when also
// there, is believed.
func groupsOverage(a Attrs, raw map[string]any) bool {
	if len(a.All([]string{claimsGroups, "groups"})) > 0 {
		return false
	}
	if a.First([]string{claimsGroupsLink}) != "" || strings.EqualFold(a.First([]string{"hasgroups"}), "true") {
		return true
	}
	names, _ := raw["_claim_names"].(map[string]any)
	_, distributed := names["groups"]
	return distributed
}

// externalTag marks the user principal name Entra ID gives a guest (B2B
// collaboration) in a host tenant: "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com"
// for alice@fabrikam.com. Entra sends it as the default NameID (in the
// email format) and in the upn claims, but it is an account name of the
// host's directory: no one receives mail there, it matches none of the
// host's own domains, and the same person signs in under their own
// address everywhere else (and is provisioned by SCIM with it).
const externalTag = "#ext#@"

// guestOf reports whether email is an Entra ID guest's account name.
func guestOf(email string) bool {
	return externalAt(email) >= 0
}

// externalAt is the index of externalTag in s, in any case, or -1. It
// compares s itself: strings.ToLower changes the length of some runes
// ("İ" grows, the Kelvin sign shrinks), so an index into a lowered copy
// is no index into s (and slicing s with one could panic).
func externalAt(s string) int {
	for i := 0; i+len(externalTag) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(externalTag)], externalTag) {
			return i
		}
	}
	return -1
}

// GuestEmail is email, unless it is an Entra ID guest's account name
// (see externalTag); then it is the guest's own address: the first of the
// mapped email values in a that is not itself an account name (Entra
// sends the guest's mail when the host maps user.mail, as its default
// claims do), else the address the account name was made from (the last
// "_" of its local part is where the "@" was: a domain holds no "_"). An
// account name it cannot read is returned as it is, for the domain check
// to refuse.
func (m AttributeMapping) GuestEmail(email string, a Attrs) string {
	if !guestOf(email) {
		return email
	}
	for _, v := range a.All(m.Email) {
		if !guestOf(v) && strings.Contains(v, "@") {
			return v
		}
	}
	local := email[:externalAt(email)]
	if i := strings.LastIndexByte(local, '_'); i > 0 && i < len(local)-1 {
		return local[:i] + "@" + local[i+1:]
	}
	return email
}

// isAccountName reports whether a display name is really a sign-in name:
// one word with an @ (a UPN, an email) or a backslash (DOMAIN\user).
func isAccountName(s string) bool {
	return !strings.ContainsAny(s, " \t") && strings.ContainsAny(s, "@\\")
}

// normaliseEmail unwraps an email (store.BareAddress: a "mailto:" or a
// display name around it, as some directories store the mail attribute),
// lower-cases it, puts its domain in the stored form
// (store.NormalizeEmail) and checks its shape; it returns ""
// for something that is not an address. One @ only: the domain checked
// against the tenant's is the part after the last one, and an
// application that splits at the first ("bob@other.example@acme.com")
// would read another tenant's domain in an address acme's IdP may
// assert. Nor RFC 5322's specials or control characters, which only a
// quoted local part may hold (and quotes are refused): each is a way
// for one string to parse as two addresses.
func normaliseEmail(s string) string {
	s = strings.ToLower(store.BareAddress(s))
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.IndexByte(s, '@') != at || strings.ContainsAny(s, " \t\r\n<>\"(),:;[]\\") {
		return ""
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ""
		}
	}
	// The domain in its stored form (punycode, no trailing dot), as the
	// directory's copy of the same address is: one person, one user, and
	// one email claim whichever form the IdP wrote.
	return store.NormalizeEmail(s)
}

// emailDomain is the part after the last @, in the form domains are
// stored (store.NormalizeDomain: an internationalised domain as punycode).
func emailDomain(email string) string {
	d, _ := store.EmailDomain(email)
	return d
}
