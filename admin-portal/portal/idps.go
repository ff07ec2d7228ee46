package portal

import (
	"html/template"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/store"
)

// An identity provider the SSO wizard knows: its own words for the
// screens the admin goes through, and which of our values to paste where.
type idp struct {
	Key    string
	Name   string
	Type   store.ConnectionType
	Blurb  string
	Preset string
	// Steps are numbered instructions; each may show values to paste.
	Steps []step
	// MetadataHint says where this IdP publishes its metadata.
	MetadataHint template.HTML
}

type step struct {
	Text template.HTML
	// Copy names values shown under the step: "acs", "entity",
	// "metadata", "redirect".
	Copy []string
	// Attrs are the attributes the step has the admin type into the
	// IdP, each shown with copy buttons: a name typed wrong is an
	// attribute we never read.
	Attrs []attrName
}

// attrName is an attribute to create in the IdP: its name, and the value
// to give it where the IdP takes an expression (Okta's user.email), under
// the IdP's word for that value when it is not "Value".
type attrName struct{ Name, Value, ValueLabel string }

// ui marks up the name of something on the IdP's screen.
func ui(s string) string { return `<span class="ui">` + template.HTMLEscapeString(s) + `</span>` }

func h(parts ...string) template.HTML {
	out := ""
	for _, p := range parts {
		out += p
	}
	return template.HTML(out) // only constant text and ui()-escaped names
}

var idps = []idp{
	{
		Key: "okta", Name: "Okta", Type: saml.Name, Preset: connections.PresetOkta,
		Blurb: "SAML 2.0 app integration in the Okta Admin Console",
		Steps: []step{
			{Text: h("In the Okta Admin Console, go to ", ui("Applications › Applications"), " and select ", ui("Create App Integration"), ".")},
			{Text: h("Choose ", ui("SAML 2.0"), " and select ", ui("Next"), ". Enter an ", ui("App name"), " your colleagues will recognise, then select ", ui("Next"), ".")},
			{Text: h("Under ", ui("SAML Settings"), ", paste these into ", ui("Single sign-on URL"), " and ", ui("Audience URI (SP Entity ID)"), ". Set ", ui("Name ID format"), " to ", ui("Persistent"), " and ", ui("Application username"), " to ", ui("Email"), "."), Copy: []string{"acs", "entity"}},
			{Text: h("Under ", ui("Attribute Statements"), ", add ", ui("email"), " = ", ui("user.email"), ", ", ui("firstName"), " = ", ui("user.firstName"), " and ", ui("lastName"), " = ", ui("user.lastName"), ". To send groups, add a ", ui("Group Attribute Statement"), " named ", ui("groups"), " with the filter ", ui("Matches regex"), " ", ui(".*"), "."),
				Attrs: []attrName{{Name: "email", Value: "user.email"}, {Name: "firstName", Value: "user.firstName"}, {Name: "lastName", Value: "user.lastName"},
					{Name: "groups", Value: ".*", ValueLabel: "Filter of groups (Matches regex)"}}},
			{Text: h("Select ", ui("Next"), ", then ", ui("Finish"), ". On the app's ", ui("Assignments"), " tab, assign the people or groups who should sign in.")},
			{Text: h("On the ", ui("Sign On"), " tab, under ", ui("SAML Signing Certificates"), ", open ", ui("Actions › View IdP metadata"), " and copy that page's address: it is your metadata URL for the next step.")},
		},
		MetadataHint: h("In Okta: the app's ", ui("Sign On"), " tab › ", ui("SAML Signing Certificates"), " › ", ui("Actions › View IdP metadata"), "."),
	},
	{
		Key: "entra", Name: "Microsoft Entra ID", Type: saml.Name, Preset: connections.PresetEntra,
		Blurb: "Enterprise application with SAML single sign-on (formerly Azure AD)",
		Steps: []step{
			{Text: h("In the Microsoft Entra admin center, go to ", ui("Entra ID › Enterprise apps"), " (", ui("Identity › Applications › Enterprise applications"), " before the 2025 menu) and select ", ui("New application"), ".")},
			{Text: h("Select ", ui("Create your own application"), ", enter a name, choose ", ui("Integrate any other application you don't find in the gallery (Non-gallery)"), " and select ", ui("Create"), ".")},
			{Text: h("In the new application, under ", ui("Manage"), ", select ", ui("Single sign-on"), " and then ", ui("SAML"), ".")},
			{Text: h("In ", ui("Basic SAML Configuration"), ", select ", ui("Edit"), ". Paste these into ", ui("Identifier (Entity ID)"), " and ", ui("Reply URL (Assertion Consumer Service URL)"), ", then ", ui("Save"), "."), Copy: []string{"entity", "acs"}},
			{Text: h("In ", ui("Attributes & Claims"), ", keep the default claims (email address, given name, surname). To send groups, select ", ui("Add a group claim"), ", choose ", ui("Groups assigned to the application"), " and, as ", ui("Source attribute"), ", ", ui("Cloud-only group display names"), ": otherwise Entra sends each group's object id, not its name.")},
			{Text: h("Under ", ui("Users and groups"), ", assign the people or groups who should sign in.")},
			{Text: h("In ", ui("SAML Certificates"), ", copy the ", ui("App Federation Metadata Url"), ": you paste it in the next step.")},
		},
		MetadataHint: h("In Entra: ", ui("Single sign-on"), " › ", ui("SAML Certificates"), " › ", ui("App Federation Metadata Url"), "."),
	},
	{
		Key: "google", Name: "Google Workspace", Type: saml.Name, Preset: connections.PresetGoogle,
		Blurb: "Custom SAML app in the Google Admin console",
		Steps: []step{
			{Text: h("In the Google Admin console, go to ", ui("Apps › Web and mobile apps"), ", then ", ui("Add app › Add custom SAML app"), ".")},
			{Text: h("Enter an ", ui("App name"), " and select ", ui("Continue"), ".")},
			{Text: h("On ", ui("Google Identity Provider details"), ", select ", ui("Download Metadata"), ": you upload that file in the next step. Select ", ui("Continue"), ".")},
			{Text: h("On ", ui("Service provider details"), ", paste these into ", ui("ACS URL"), " and ", ui("Entity ID"), ". Set ", ui("Name ID format"), " to ", ui("EMAIL"), " and ", ui("Name ID"), " to ", ui("Basic Information › Primary email"), ". Select ", ui("Continue"), "."), Copy: []string{"acs", "entity"}},
			{Text: h("On ", ui("Attribute mapping"), ", map ", ui("Primary email"), " to ", ui("email"), ", ", ui("First name"), " to ", ui("firstName"), " and ", ui("Last name"), " to ", ui("lastName"), ". To send groups, add them under ", ui("Group membership"), " with the app attribute ", ui("groups"), ". Select ", ui("Finish"), "."),
				Attrs: []attrName{{Name: "email"}, {Name: "firstName"}, {Name: "lastName"}, {Name: "groups"}}},
			{Text: h("Open the app's ", ui("User access"), ", turn it ", ui("ON for everyone"), " (or for the organisational units that should sign in) and ", ui("Save"), ". Google can take a few minutes to apply it.")},
		},
		MetadataHint: h("In Google: the app's ", ui("Google Identity Provider details"), " › ", ui("Download Metadata"), "."),
	},
	{
		Key: "adfs", Name: "AD FS", Type: saml.Name, Preset: connections.PresetADFS,
		Blurb: "Relying party trust in Active Directory Federation Services",
		Steps: []step{
			{Text: h("In ", ui("AD FS Management"), ", right-click ", ui("Relying Party Trusts"), " and select ", ui("Add Relying Party Trust…"), ". Choose ", ui("Claims aware"), " and ", ui("Start"), ".")},
			{Text: h("Select ", ui("Import data about the relying party published online or on a local network"), " and paste this into ", ui("Federation metadata address"), ". (If AD FS cannot reach it, choose ", ui("Enter data about the relying party manually"), " and use the identifier and SAML 2.0 SSO service URL below.)"), Copy: []string{"metadata", "entity", "acs"}},
			{Text: h("Enter a ", ui("Display name"), ", choose an ", ui("Access Control Policy"), " (for example ", ui("Permit everyone"), ") and finish the wizard.")},
			{Text: h("Select the trust and ", ui("Edit Claim Issuance Policy…"), ", ", ui("Add Rule…"), ", ", ui("Send LDAP Attributes as Claims"), ": map ", ui("E-Mail-Addresses"), " to ", ui("E-Mail Address"), ", ", ui("Given-Name"), " to ", ui("Given Name"), ", ", ui("Surname"), " to ", ui("Surname"), " and ", ui("Token-Groups - Unqualified Names"), " to ", ui("Group"), ".")},
			{Text: h("Add a second rule, ", ui("Transform an Incoming Claim"), ": ", ui("E-Mail Address"), " to ", ui("Name ID"), " with the format ", ui("Email"), ".")},
			{Text: h("Your AD FS metadata is at ", ui("https://<your AD FS host>/FederationMetadata/2007-06/FederationMetadata.xml"), ": you paste that address in the next step.")},
		},
		MetadataHint: h("AD FS publishes it at ", ui("/FederationMetadata/2007-06/FederationMetadata.xml"), " on its host."),
	},
	{
		Key: "saml", Name: "Other SAML 2.0 IdP", Type: saml.Name, Preset: connections.PresetGeneric,
		Blurb: "PingFederate, OneLogin, JumpCloud, Shibboleth, Keycloak…",
		Steps: []step{
			{Text: h("In your identity provider, create a new SAML 2.0 application (it may be called a service provider, relying party or app integration).")},
			{Text: h("Give it these values: the ", ui("ACS URL"), " (also called Reply URL or Single sign-on URL; binding HTTP-POST) and the ", ui("SP Entity ID"), " (also called Audience or Identifier). If your IdP can read SP metadata, give it the metadata URL instead, or upload the file."), Copy: []string{"acs", "entity", "metadata"}},
			{Text: h("Send the user's email address as the NameID (persistent or email format) or as an ", ui("email"), " attribute; send ", ui("firstName"), ", ", ui("lastName"), " and ", ui("groups"), " attributes if you can. Sign the response or the assertion with SHA-256."),
				Attrs: []attrName{{Name: "email"}, {Name: "firstName"}, {Name: "lastName"}, {Name: "groups"}}},
			{Text: h("Assign the people or groups who should sign in, then find your IdP's metadata (URL or file) for the next step.")},
		},
		MetadataHint: h("Look for ", ui("IdP metadata"), ", ", ui("SAML metadata"), " or ", ui("Federation metadata"), " in your IdP's application settings."),
	},
	{
		Key: "okta-oidc", Name: "Okta", Type: oidc.Name, Preset: connections.PresetOkta,
		Blurb: "OIDC - OpenID Connect web app integration in the Okta Admin Console",
		Steps: []step{
			{Text: h("In the Okta Admin Console, go to ", ui("Applications › Applications"), " and select ", ui("Create App Integration"), ".")},
			{Text: h("Choose ", ui("OIDC - OpenID Connect"), " as the ", ui("Sign-in method"), " and ", ui("Web Application"), " as the ", ui("Application type"), ", then select ", ui("Next"), ".")},
			{Text: h("Enter an ", ui("App integration name"), ". Under ", ui("Grant type"), ", keep ", ui("Authorization Code"), ". Replace the example in ", ui("Sign-in redirect URIs"), " with this one."), Copy: []string{"redirect"}},
			{Text: h("Under ", ui("Assignments"), ", choose who may sign in (", ui("Controlled access"), "), then select ", ui("Save"), ".")},
			{Text: h("To send groups: on the app's ", ui("Sign On"), " tab, under ", ui("OpenID Connect ID Token"), ", select ", ui("Edit"), " and set the ", ui("Groups claim filter"), " to ", ui("groups"), " ", ui("Matches regex"), " ", ui(".*"), ".")},
			{Text: h("On the ", ui("General"), " tab, copy the ", ui("Client ID"), " under ", ui("Client Credentials"), " and the secret under ", ui("CLIENT SECRETS"), ": you enter them in the next step, with your Okta address as the issuer.")},
		},
		MetadataHint: h("In Okta the issuer is your org's address, ", ui("https://<your org>.okta.com"), "; if your app's policies live in a custom authorization server, its ", ui("Issuer URI"), " from ", ui("Security › API"), " (such as ", ui("https://<your org>.okta.com/oauth2/default"), ")."),
	},
	{
		Key: "entra-oidc", Name: "Microsoft Entra ID", Type: oidc.Name, Preset: connections.PresetEntra,
		Blurb: "App registration with OpenID Connect (formerly Azure AD)",
		Steps: []step{
			{Text: h("In the Microsoft Entra admin center, go to ", ui("Entra ID › App registrations"), " (", ui("Identity › Applications › App registrations"), " before the 2025 menu) and select ", ui("New registration"), ".")},
			{Text: h("Enter a ", ui("Name"), " and, under ", ui("Supported account types"), ", choose ", ui("Accounts in this organizational directory only"), ". Under ", ui("Redirect URI"), ", select the platform ", ui("Web"), ", paste this, and select ", ui("Register"), "."), Copy: []string{"redirect"}},
			{Text: h("Under ", ui("Certificates & secrets"), ", select ", ui("New client secret"), ", then ", ui("Add"), ". Copy its ", ui("Value"), " at once (not its ", ui("Secret ID"), "): Entra shows it only now.")},
			{Text: h("Under ", ui("Token configuration"), ", select ", ui("Add optional claim"), ", token type ", ui("ID"), ", tick ", ui("email"), " and ", ui("Add"), ". To send groups, select ", ui("Add groups claim"), ", choose ", ui("Groups assigned to the application"), " and, for the ", ui("ID"), " token, ", ui("Cloud-only group display names"), ": otherwise Entra sends each group's object id, not its name.")},
			{Text: h("On the app's ", ui("Overview"), ", copy the ", ui("Application (client) ID"), " and the ", ui("Directory (tenant) ID"), ": you enter them in the next step.")},
		},
		MetadataHint: h("In Entra the issuer is ", ui("https://login.microsoftonline.com/<Directory (tenant) ID>/v2.0"), ", with the ", ui("Directory (tenant) ID"), " from the app's ", ui("Overview"), "; the client ID is its ", ui("Application (client) ID"), " and the secret the ", ui("Value"), " of the client secret."),
	},
	{
		// No preset: the issuer chooses one (an Okta or Entra issuer
		// gets that IdP's), as for a connection the operator API makes.
		Key: "oidc", Name: "OpenID Connect IdP", Type: oidc.Name,
		Blurb: "Any OpenID Connect provider: Okta OIDC, Auth0, Keycloak, Ping…",
		Steps: []step{
			{Text: h("In your identity provider, register a new ", ui("web application"), " (a confidential client using the ", ui("authorization code"), " flow).")},
			{Text: h("Add this as its ", ui("redirect URI"), " (also called sign-in redirect URI or callback URL)."), Copy: []string{"redirect"}},
			{Text: h("Allow the scopes ", ui("openid"), ", ", ui("email"), " and ", ui("profile"), " (and ", ui("groups"), " if your IdP offers it), and assign the people who should sign in.")},
			{Text: h("Copy the ", ui("Issuer URL"), ", the ", ui("Client ID"), " and the ", ui("Client secret"), ": you enter them in the next step.")},
		},
	},
}

// Called is how a sentence names the IdP: its own name, or "your
// identity provider" for the generic choices, whose names ("Other SAML
// 2.0 IdP") label a choice and would break a sentence ("Connect Other
// SAML 2.0 IdP").
func (i idp) Called() string {
	if i.Key == "saml" || i.Key == "oidc" {
		return "your identity provider"
	}
	return i.Name
}

func idpByKey(key string) (idp, bool) {
	for _, i := range idps {
		if i.Key == key {
			return i, true
		}
	}
	return idp{}, false
}

// idpOf is the wizard's IdP for a connection: the preset its attribute
// mapping was created with, or the generic one of its type.
func idpOf(conn store.Connection) idp {
	generic := "saml"
	var m *connections.AttributeMapping
	if conn.Type == oidc.Name {
		generic = "oidc"
		if c, err := oidc.DecodeConfig(conn.Config); err == nil {
			m = c.AttributeMapping
		}
	} else if c, err := saml.DecodeConfig(conn.Config); err == nil {
		m = c.AttributeMapping
	}
	if m != nil && m.Preset != "" {
		for _, i := range idps {
			if i.Type == conn.Type && i.Preset == m.Preset && i.Key != generic {
				return i
			}
		}
	}
	i, _ := idpByKey(generic)
	return i
}
