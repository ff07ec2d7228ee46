package saml

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
)

// Connection defaults and bounds.
const (
	DefaultClockSkew = 90 * time.Second
	// MaxClockSkew is the largest skew a connection may configure. The SAML
	// library refuses an assertion dated more than 180 s ahead whatever we
	// configure, so a larger value would be a setting that does nothing.
	// (Its 90 s limit on a response's age is moved for a connection with a
	// larger skew: see libraryLag.)
	MaxClockSkew = 180 * time.Second
	// CertificateExpiryWarning is how long before NotAfter an IdP
	// certificate is reported as expiring.
	CertificateExpiryWarning = 30 * 24 * time.Hour
)

// NameID formats a connection may request. Transient is deliberately
// absent: a transient NameID changes every login, so it cannot key a user.
const (
	NameIDPersistent  = "persistent"
	NameIDEmail       = "email"
	NameIDUnspecified = "unspecified"
)

// SSO bindings for the AuthnRequest.
const (
	BindingRedirect = "redirect"
	BindingPost     = "post"
)

// SecretSPKey is the key in store.Connection.Secrets of the connection's
// own SP private key, sealed at rest.
const SecretSPKey = "saml_sp_private_key_pem"

// Config is store.Connection.Config of a SAML connection: everything
// non-secret.
type Config struct {
	// IdP, resolved: from metadata XML, a metadata URL or manual fields.
	IdPMetadataURL  string        `json:"idp_metadata_url,omitempty"`
	IdPEntityID     string        `json:"idp_entity_id,omitempty"`
	IdPSSOURL       string        `json:"idp_sso_url,omitempty"`
	IdPSSOBinding   string        `json:"idp_sso_binding,omitempty"`
	IdPCertificates []Certificate `json:"idp_certificates,omitempty"`
	// MetadataFetchedAt is when IdPMetadataURL was last read successfully.
	MetadataFetchedAt *time.Time `json:"metadata_fetched_at,omitempty"`

	AllowIdPInitiated bool `json:"allow_idp_initiated,omitempty"`
	// IdPInitiatedClientID is the application (client_id) IdP-initiated
	// logins land in, through its initiate_login_uri.
	IdPInitiatedClientID string                        `json:"idp_initiated_client_id,omitempty"`
	AttributeMapping     *connections.AttributeMapping `json:"attribute_mapping,omitempty"`
	NameIDFormat         string                        `json:"name_id_format,omitempty"`
	ClockSkewSeconds     int                           `json:"clock_skew_seconds,omitempty"`
	// AllowSHA1 accepts SHA-1 signatures, for IdPs that cannot do better.
	AllowSHA1 bool `json:"allow_sha1,omitempty"`
	// AllowAnyEmailDomain lifts the rule that the email must be in one of
	// the tenant's verified domains.
	AllowAnyEmailDomain bool `json:"allow_any_email_domain,omitempty"`

	// IdPWantsSignedRequests is the IdP metadata's WantAuthnRequestsSigned;
	// SignAuthnRequests is the tenant's own choice. AuthnRequests are
	// signed when either is set: a signature is an RSA private-key
	// operation per login that Okta, Entra and Google do not ask for.
	IdPWantsSignedRequests bool `json:"idp_wants_signed_requests,omitempty"`
	SignAuthnRequests      bool `json:"sign_authn_requests,omitempty"`
	// IdPEmailNameIDOnly is set when the IdP's metadata lists the
	// emailAddress NameID format and not the persistent one (Okta's and
	// Google's app metadata list the one format the app issues): asking
	// such an IdP for persistent NameIDs asks for what it says it cannot
	// give, which strict IdPs answer with InvalidNameIDPolicy.
	IdPEmailNameIDOnly bool `json:"idp_email_name_id_only,omitempty"`
	// EncryptAssertions advertises the SP's encryption key in its
	// metadata, so IdPs that honour it encrypt the assertion (and the ACS
	// pays an RSA-OAEP decryption). Encrypted assertions are decrypted
	// either way.
	EncryptAssertions bool `json:"encrypt_assertions,omitempty"`

	// SPCertificatePEM is the public half of the connection's own SP key,
	// published in the SP metadata.
	SPCertificatePEM string `json:"sp_certificate_pem"`
}

// Certificate is an IdP signing certificate with what the tenant admin
// needs to see about it.
type Certificate struct {
	PEM      string    `json:"pem"`
	SHA256   string    `json:"sha256"`
	Subject  string    `json:"subject,omitempty"`
	NotAfter time.Time `json:"not_after"`
	// ExpiringNotified records that connection.certificate_expiring was
	// emitted for this certificate, so it is emitted once.
	ExpiringNotified bool `json:"expiring_notified,omitempty"`
}

// ClockSkew is the connection's allowance for IdP clock drift.
func (c Config) ClockSkew() time.Duration {
	if c.ClockSkewSeconds <= 0 {
		return DefaultClockSkew
	}
	return time.Duration(c.ClockSkewSeconds) * time.Second
}

// Missing lists what is still needed before the connection can log users
// in, by the API's field names.
func (c Config) Missing() []string {
	var m []string
	if c.IdPEntityID == "" {
		m = append(m, "idp_entity_id")
	}
	if c.IdPSSOURL == "" {
		m = append(m, "idp_sso_url")
	}
	if len(c.IdPCertificates) == 0 {
		m = append(m, "idp_certificates_pem")
	}
	return m
}

// DecodeConfig reads a stored config strictly.
func DecodeConfig(raw json.RawMessage) (Config, error) {
	var c Config
	return c, connections.DecodeStrict(raw, &c)
}

// Settings configures the IdP side of a SAML connection — metadata XML, a
// metadata URL (re-read periodically), or the manual fields — and the
// connection's rules: the "saml" object of the operator API. Nil fields
// are left as they are.
type Settings struct {
	IdPMetadataXML     *string  `json:"idp_metadata_xml,omitempty"`
	IdPMetadataURL     *string  `json:"idp_metadata_url,omitempty"`
	IdPEntityID        *string  `json:"idp_entity_id,omitempty"`
	IdPSSOURL          *string  `json:"idp_sso_url,omitempty"`
	IdPSSOBinding      *string  `json:"idp_sso_binding,omitempty"`
	IdPCertificatesPEM *PEMList `json:"idp_certificates_pem,omitempty"`
	AllowIdPInitiated  *bool    `json:"allow_idp_initiated,omitempty"`
	// IdPInitiatedClientID "" removes it.
	IdPInitiatedClientID *string                       `json:"idp_initiated_client_id,omitempty"`
	AttributeMapping     *connections.AttributeMapping `json:"attribute_mapping,omitempty"`
	NameIDFormat         *string                       `json:"name_id_format,omitempty"`
	ClockSkewSeconds     *int                          `json:"clock_skew_seconds,omitempty"`
	AllowSHA1            *bool                         `json:"allow_sha1,omitempty"`
	AllowAnyEmailDomain  *bool                         `json:"allow_any_email_domain,omitempty"`
	SignAuthnRequests    *bool                         `json:"sign_authn_requests,omitempty"`
	EncryptAssertions    *bool                         `json:"encrypt_assertions,omitempty"`
}

// RequestedNameIDFormat is the NameID format AuthnRequests ask for and the
// SP metadata names: the connection's choice; for AD FS, unspecified;
// else persistent, unless the IdP's metadata offers email addresses only.
//
// AD FS refuses an AuthnRequest whose NameIDPolicy names a format its
// claim rules do not issue (InvalidNameIDPolicy, MSIS7070), and its
// metadata lists email, persistent and transient whatever the rules
// issue. Its usual rule (and the portal's AD FS steps) issues the email
// address as an email NameID, so asking for persistent failed every
// sign-in; unspecified is satisfied by any rule.
func (c Config) RequestedNameIDFormat() string {
	switch {
	case c.NameIDFormat != "":
		return c.NameIDFormat
	case c.isADFS():
		return NameIDUnspecified
	case c.IdPEmailNameIDOnly:
		return NameIDEmail
	}
	return NameIDPersistent
}

// isADFS reports a connection to AD FS: made with the AD FS preset (the
// portal's AD FS choice), or to an IdP whose entity ID is AD FS's
// default identifier, http(s)://{host}/adfs/services/trust.
func (c Config) isADFS() bool {
	if c.AttributeMapping != nil && c.AttributeMapping.Preset == connections.PresetADFS {
		return true
	}
	u, err := url.Parse(c.IdPEntityID)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(strings.TrimSuffix(u.Path, "/"), "/adfs/services/trust")
}

// SignsRequests reports whether AuthnRequests are signed.
func (c Config) SignsRequests() bool { return c.SignAuthnRequests || c.IdPWantsSignedRequests }

// Request wraps s as the Settings of a create or update request.
func (s Settings) Request() connections.Settings { return connections.SettingsFor(Name, s) }

// PEMList is one or more PEM certificates, given as one string of
// concatenated blocks or as an array of strings.
type PEMList []string

// UnmarshalJSON accepts a string or an array of strings.
func (l *PEMList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = PEMList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("idp_certificates_pem must be a string or an array of strings")
	}
	*l = many
	return nil
}

// apply merges s into cfg, fetching metadata when a URL is given.
func apply(ctx context.Context, deps connections.Deps, cfg *Config, s *Settings) error {
	if s == nil {
		return nil
	}
	hasXML := s.IdPMetadataXML != nil && strings.TrimSpace(*s.IdPMetadataXML) != ""
	hasURL := s.IdPMetadataURL != nil && *s.IdPMetadataURL != ""
	manual := s.IdPSSOURL != nil || s.IdPCertificatesPEM != nil || s.IdPSSOBinding != nil
	// Beside metadata, idp_entity_id names the IdP to take from a
	// federation's aggregate (and must be the IdP of a single entity's);
	// alone, it is a manual field like the others.
	var selector string
	if s.IdPEntityID != nil {
		if hasXML || hasURL {
			selector = strings.TrimSpace(*s.IdPEntityID)
		} else {
			manual = true
		}
	}
	switch {
	case hasXML && hasURL:
		return connections.Invalid("idp_metadata_url", "give idp_metadata_xml or idp_metadata_url, not both")
	case (hasXML || hasURL) && manual:
		field := "idp_metadata_url"
		if hasXML {
			field = "idp_metadata_xml"
		}
		return connections.Invalid(field, "give IdP metadata or the manual fields (idp_entity_id, idp_sso_url, idp_certificates_pem), not both")
	}
	if hasXML {
		if v := strings.TrimSpace(*s.IdPMetadataXML); !strings.Contains(v, "<") && (strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://")) {
			return connections.Invalid("idp_metadata_xml", "idp_metadata_xml holds a URL, not a metadata document: give it as idp_metadata_url, and the broker fetches it (and reads it again when the IdP's certificates change)")
		}
	}
	var idp *idpSettings
	switch {
	case hasXML:
		got, err := parseIdPMetadata([]byte(*s.IdPMetadataXML), deps.AllowInsecureURLs, selector)
		if err != nil {
			return connections.InField("idp_metadata_xml", err)
		}
		if selector != "" && got.EntityID != selector {
			return connections.Invalid("idp_entity_id", "the metadata's IdP is %q, not %q", got.EntityID, selector)
		}
		idp = &got
		cfg.IdPMetadataURL, cfg.MetadataFetchedAt = "", nil
	case hasURL:
		if err := connections.CheckURL("idp_metadata_url", *s.IdPMetadataURL, deps.AllowInsecureURLs); err != nil {
			return err
		}
		got, err := fetchIdPMetadata(ctx, deps, *s.IdPMetadataURL, selector)
		if err != nil {
			return connections.InField("idp_metadata_url", err)
		}
		if selector != "" && got.EntityID != selector {
			return connections.Invalid("idp_entity_id", "the metadata's IdP is %q, not %q", got.EntityID, selector)
		}
		idp = &got
		now := deps.Now().UTC()
		cfg.IdPMetadataURL, cfg.MetadataFetchedAt = *s.IdPMetadataURL, &now
	case s.IdPMetadataURL != nil:
		// An explicit empty URL stops refreshing; the last settings stay.
		cfg.IdPMetadataURL, cfg.MetadataFetchedAt = "", nil
	}
	if idp != nil {
		cfg.IdPEntityID, cfg.IdPSSOURL, cfg.IdPSSOBinding = idp.EntityID, idp.SSOURL, idp.SSOBinding
		cfg.IdPCertificates = mergeCertificates(cfg.IdPCertificates, idp.Certificates)
		cfg.IdPWantsSignedRequests = idp.WantsSignedRequests
		cfg.IdPEmailNameIDOnly = idp.EmailNameIDOnly
	}
	if manual {
		cfg.IdPMetadataURL, cfg.MetadataFetchedAt = "", nil
	}
	if s.IdPEntityID != nil && idp == nil { // beside metadata, it only chose
		v := strings.TrimSpace(*s.IdPEntityID)
		if len(v) > 1024 {
			return connections.Invalid("idp_entity_id", "idp_entity_id longer than 1024 characters")
		}
		cfg.IdPEntityID = v
	}
	if s.IdPSSOURL != nil {
		if *s.IdPSSOURL != "" {
			if err := connections.CheckURL("idp_sso_url", *s.IdPSSOURL, deps.AllowInsecureURLs); err != nil {
				return err
			}
		}
		cfg.IdPSSOURL = *s.IdPSSOURL
	}
	if s.IdPSSOBinding != nil {
		switch *s.IdPSSOBinding {
		case "", BindingRedirect, BindingPost:
			cfg.IdPSSOBinding = *s.IdPSSOBinding
		default:
			return connections.Invalid("idp_sso_binding", `idp_sso_binding must be "redirect" or "post"`)
		}
	}
	if s.IdPCertificatesPEM != nil {
		certs, err := parseCertificates(strings.Join(*s.IdPCertificatesPEM, "\n"))
		if err != nil {
			return connections.InField("idp_certificates_pem", err)
		}
		cfg.IdPCertificates = mergeCertificates(cfg.IdPCertificates, certs)
	}
	if s.AllowIdPInitiated != nil {
		cfg.AllowIdPInitiated = *s.AllowIdPInitiated
	}
	if s.IdPInitiatedClientID != nil {
		id := strings.TrimSpace(*s.IdPInitiatedClientID)
		if err := deps.CheckLanding(ctx, "idp_initiated_client_id", id); err != nil {
			return err
		}
		cfg.IdPInitiatedClientID = id
	}
	if s.AttributeMapping != nil {
		if err := s.AttributeMapping.Validate(); err != nil {
			return err // names attribute_mapping.…
		}
		cfg.AttributeMapping = s.AttributeMapping
	}
	if s.NameIDFormat != nil {
		switch *s.NameIDFormat {
		case "", NameIDPersistent, NameIDEmail, NameIDUnspecified:
			cfg.NameIDFormat = *s.NameIDFormat
		default:
			return connections.Invalid("name_id_format", "name_id_format must be persistent, email or unspecified (transient cannot identify a user)")
		}
	}
	if s.ClockSkewSeconds != nil {
		if *s.ClockSkewSeconds < 0 || time.Duration(*s.ClockSkewSeconds)*time.Second > MaxClockSkew {
			return connections.Invalid("clock_skew_seconds", "clock_skew_seconds must be between 0 and %d", int(MaxClockSkew/time.Second))
		}
		cfg.ClockSkewSeconds = *s.ClockSkewSeconds
	}
	if s.AllowSHA1 != nil {
		cfg.AllowSHA1 = *s.AllowSHA1
	}
	if s.AllowAnyEmailDomain != nil {
		cfg.AllowAnyEmailDomain = *s.AllowAnyEmailDomain
	}
	if s.SignAuthnRequests != nil {
		cfg.SignAuthnRequests = *s.SignAuthnRequests
	}
	if s.EncryptAssertions != nil {
		cfg.EncryptAssertions = *s.EncryptAssertions
	}
	return nil
}

// View is the "saml" object of a connection as the API shows it.
type View struct {
	SPEntityID        string            `json:"sp_entity_id"`
	ACSURL            string            `json:"acs_url"`
	SPMetadataURL     string            `json:"sp_metadata_url"`
	IdPEntityID       string            `json:"idp_entity_id,omitempty"`
	IdPSSOURL         string            `json:"idp_sso_url,omitempty"`
	IdPMetadataURL    string            `json:"idp_metadata_url,omitempty"`
	IdPCertificates   []CertificateView `json:"idp_certificates"`
	AllowIdPInitiated bool              `json:"allow_idp_initiated"`
	// IdPInitiatedClientID is the application IdP-initiated logins land
	// in; absent when none.
	IdPInitiatedClientID string                        `json:"idp_initiated_client_id,omitempty"`
	AttributeMapping     *connections.AttributeMapping `json:"attribute_mapping,omitempty"`
	NameIDFormat         string                        `json:"name_id_format"`
	ClockSkewSeconds     int                           `json:"clock_skew_seconds"`
	AllowSHA1            bool                          `json:"allow_sha1"`
	AllowAnyEmailDomain  bool                          `json:"allow_any_email_domain"`
	// SignAuthnRequests is whether AuthnRequests are signed: the tenant
	// asked, or the IdP's metadata does (WantAuthnRequestsSigned).
	SignAuthnRequests bool `json:"sign_authn_requests"`
	EncryptAssertions bool `json:"encrypt_assertions"`
	// Missing lists what is still needed before the connection can be
	// activated.
	Missing []string `json:"missing,omitempty"`
}

// CertificateView is an IdP certificate as a tenant admin sees it.
type CertificateView struct {
	SHA256   string    `json:"sha256"`
	Subject  string    `json:"subject,omitempty"`
	NotAfter time.Time `json:"not_after"`
	// Expiring is true within CertificateExpiryWarning of NotAfter (and
	// after it): the tenant admin should upload the IdP's next
	// certificate.
	Expiring bool `json:"expiring"`
	// Expired is true once NotAfter has passed: responses signed with it
	// are refused from then on.
	Expired bool `json:"expired"`
}

// describe renders conn's View.
func describe(deps connections.Deps, conn store.Connection, now time.Time) (*View, error) {
	c, err := DecodeConfig(conn.Config)
	if err != nil {
		return nil, err
	}
	v := &View{
		SPEntityID: deps.URL(conn, ""), ACSURL: deps.URL(conn, "acs"),
		SPMetadataURL: deps.URL(conn, "metadata"),
		IdPEntityID:   c.IdPEntityID, IdPSSOURL: c.IdPSSOURL, IdPMetadataURL: c.IdPMetadataURL,
		IdPCertificates:      []CertificateView{},
		AllowIdPInitiated:    c.AllowIdPInitiated,
		IdPInitiatedClientID: c.IdPInitiatedClientID,
		AttributeMapping:     c.AttributeMapping,
		NameIDFormat:         c.RequestedNameIDFormat(),
		ClockSkewSeconds:     int(c.ClockSkew() / time.Second),
		AllowSHA1:            c.AllowSHA1,
		AllowAnyEmailDomain:  c.AllowAnyEmailDomain,
		SignAuthnRequests:    c.SignsRequests(),
		EncryptAssertions:    c.EncryptAssertions,
		Missing:              c.Missing(),
	}
	for _, cert := range c.IdPCertificates {
		v.IdPCertificates = append(v.IdPCertificates, CertificateView{
			SHA256: cert.SHA256, Subject: cert.Subject, NotAfter: cert.NotAfter,
			Expiring: now.Add(CertificateExpiryWarning).After(cert.NotAfter),
			Expired:  !now.Before(cert.NotAfter),
		})
	}
	return v, nil
}
