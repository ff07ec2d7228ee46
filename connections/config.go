package connections

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/idbroker/idbroker/store"
)

// SAML connection defaults and bounds.
const (
	DefaultClockSkew = 90 * time.Second
	// MaxClockSkew is the largest skew a connection may configure. The SAML
	// library refuses an assertion issued more than 90 s ago or dated more
	// than 180 s ahead whatever we configure, so a larger value would be a
	// setting that does nothing.
	MaxClockSkew = 180 * time.Second
)

// NameID formats a SAML connection may request. Transient is deliberately
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

// SAMLConfig is store.Connection.Config of a SAML connection: everything
// non-secret. The SP private key lives in store.Connection.Secrets under
// SecretSPKey, sealed at rest.
type SAMLConfig struct {
	// IdP, resolved: from metadata XML, a metadata URL or manual fields.
	IdPMetadataURL  string        `json:"idp_metadata_url,omitempty"`
	IdPEntityID     string        `json:"idp_entity_id,omitempty"`
	IdPSSOURL       string        `json:"idp_sso_url,omitempty"`
	IdPSSOBinding   string        `json:"idp_sso_binding,omitempty"`
	IdPCertificates []Certificate `json:"idp_certificates,omitempty"`
	// MetadataFetchedAt is when IdPMetadataURL was last read successfully.
	MetadataFetchedAt *time.Time `json:"metadata_fetched_at,omitempty"`

	AllowIdPInitiated bool              `json:"allow_idp_initiated,omitempty"`
	AttributeMapping  *AttributeMapping `json:"attribute_mapping,omitempty"`
	NameIDFormat      string            `json:"name_id_format,omitempty"`
	ClockSkewSeconds  int               `json:"clock_skew_seconds,omitempty"`
	// AllowSHA1 accepts SHA-1 signatures, for IdPs that cannot do better.
	AllowSHA1 bool `json:"allow_sha1,omitempty"`
	// AllowAnyEmailDomain lifts the rule that the email must be in one of
	// the tenant's verified domains.
	AllowAnyEmailDomain bool `json:"allow_any_email_domain,omitempty"`

	// SPCertificatePEM is the public half of the connection's own SP key,
	// published in the SP metadata.
	SPCertificatePEM string `json:"sp_certificate_pem"`
}

// OIDCConfig is store.Connection.Config of an OIDC connection. The client
// secret lives in store.Connection.Secrets under SecretClientSecret.
type OIDCConfig struct {
	Issuer   string   `json:"issuer"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes,omitempty"`
	// HostedDomain is Google Workspace's hd: when set, the id_token's hd
	// claim must equal it.
	HostedDomain        string            `json:"hosted_domain,omitempty"`
	AttributeMapping    *AttributeMapping `json:"attribute_mapping,omitempty"`
	AllowAnyEmailDomain bool              `json:"allow_any_email_domain,omitempty"`
}

// Secret keys in store.Connection.Secrets.
const (
	SecretSPKey        = "saml_sp_private_key_pem"
	SecretClientSecret = "oidc_client_secret"
)

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
func (c SAMLConfig) ClockSkew() time.Duration {
	if c.ClockSkewSeconds <= 0 {
		return DefaultClockSkew
	}
	return time.Duration(c.ClockSkewSeconds) * time.Second
}

// Complete reports whether the connection can log users in.
func (c SAMLConfig) Complete() bool {
	return c.IdPEntityID != "" && c.IdPSSOURL != "" && len(c.IdPCertificates) > 0 && c.SPCertificatePEM != ""
}

// Complete reports whether the connection can log users in; the client
// secret is checked separately because it lives in Secrets.
func (c OIDCConfig) Complete() bool { return c.Issuer != "" && c.ClientID != "" }

// DecodeSAMLConfig reads a stored SAML config strictly.
func DecodeSAMLConfig(raw json.RawMessage) (SAMLConfig, error) {
	var c SAMLConfig
	return c, decodeStrict(raw, &c)
}

// DecodeOIDCConfig reads a stored OIDC config strictly.
func DecodeOIDCConfig(raw json.RawMessage) (OIDCConfig, error) {
	var c OIDCConfig
	return c, decodeStrict(raw, &c)
}

func decodeStrict(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data", ErrConfig)
	}
	return nil
}

// URLs of a connection (contract section 2).
func spEntityID(issuer, connID string) string { return issuer + "/sso/saml/" + connID }
func acsURL(issuer, connID string) string     { return issuer + "/sso/saml/" + connID + "/acs" }
func spMetadataURL(issuer, connID string) string {
	return issuer + "/sso/saml/" + connID + "/metadata"
}
func oidcRedirectURI(issuer, connID string) string {
	return issuer + "/sso/oidc/" + connID + "/callback"
}

// View is a connection as the operator API and the portal show it: no
// secret, the URLs the IdP side needs, and what the tenant admin must know.
type View struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id"`
	Type      string    `json:"type"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	SAML      *SAMLView `json:"saml,omitempty"`
	OIDC      *OIDCView `json:"oidc,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SAMLView is the SAML part of a View.
type SAMLView struct {
	SPEntityID          string            `json:"sp_entity_id"`
	ACSURL              string            `json:"acs_url"`
	SPMetadataURL       string            `json:"sp_metadata_url"`
	IdPEntityID         string            `json:"idp_entity_id,omitempty"`
	IdPSSOURL           string            `json:"idp_sso_url,omitempty"`
	IdPMetadataURL      string            `json:"idp_metadata_url,omitempty"`
	IdPCertificates     []CertificateView `json:"idp_certificates"`
	AllowIdPInitiated   bool              `json:"allow_idp_initiated"`
	AttributeMapping    *AttributeMapping `json:"attribute_mapping,omitempty"`
	NameIDFormat        string            `json:"name_id_format"`
	ClockSkewSeconds    int               `json:"clock_skew_seconds"`
	AllowSHA1           bool              `json:"allow_sha1"`
	AllowAnyEmailDomain bool              `json:"allow_any_email_domain"`
	// Missing lists what is still needed before the connection can be
	// activated.
	Missing []string `json:"missing,omitempty"`
}

// CertificateView is an IdP certificate as a tenant admin sees it.
type CertificateView struct {
	SHA256   string    `json:"sha256"`
	Subject  string    `json:"subject,omitempty"`
	NotAfter time.Time `json:"not_after"`
	// Expiring is true within 30 days of NotAfter (and after it): the
	// tenant admin should upload the IdP's next certificate.
	Expiring bool `json:"expiring"`
	// Expired is true once NotAfter has passed: responses signed with it
	// are refused from then on.
	Expired bool `json:"expired"`
}

// OIDCView is the OIDC part of a View.
type OIDCView struct {
	RedirectURI         string            `json:"redirect_uri"`
	Issuer              string            `json:"issuer,omitempty"`
	ClientID            string            `json:"client_id,omitempty"`
	ClientSecretSet     bool              `json:"client_secret_set"`
	Scopes              []string          `json:"scopes"`
	HostedDomain        string            `json:"hosted_domain,omitempty"`
	AttributeMapping    *AttributeMapping `json:"attribute_mapping,omitempty"`
	AllowAnyEmailDomain bool              `json:"allow_any_email_domain"`
	Missing             []string          `json:"missing,omitempty"`
}

// CertificateExpiryWarning is how long before NotAfter a certificate is
// reported as expiring.
const CertificateExpiryWarning = 30 * 24 * time.Hour

// Describe renders conn for the API; issuer is the broker's public URL.
func Describe(issuer string, conn store.Connection, now time.Time) (View, error) {
	v := View{
		ID: conn.ID, TenantID: conn.TenantID, Type: string(conn.Type), Name: conn.Name,
		Status: string(conn.Status), CreatedAt: conn.CreatedAt, UpdatedAt: conn.UpdatedAt,
	}
	switch conn.Type {
	case store.ConnectionSAML:
		c, err := DecodeSAMLConfig(conn.Config)
		if err != nil {
			return View{}, err
		}
		sv := &SAMLView{
			SPEntityID: spEntityID(issuer, conn.ID), ACSURL: acsURL(issuer, conn.ID),
			SPMetadataURL: spMetadataURL(issuer, conn.ID),
			IdPEntityID:   c.IdPEntityID, IdPSSOURL: c.IdPSSOURL, IdPMetadataURL: c.IdPMetadataURL,
			IdPCertificates:     []CertificateView{},
			AllowIdPInitiated:   c.AllowIdPInitiated,
			AttributeMapping:    c.AttributeMapping,
			NameIDFormat:        cmp.Or(c.NameIDFormat, NameIDPersistent),
			ClockSkewSeconds:    int(c.ClockSkew() / time.Second),
			AllowSHA1:           c.AllowSHA1,
			AllowAnyEmailDomain: c.AllowAnyEmailDomain,
			Missing:             samlMissing(c),
		}
		for _, cert := range c.IdPCertificates {
			sv.IdPCertificates = append(sv.IdPCertificates, CertificateView{
				SHA256: cert.SHA256, Subject: cert.Subject, NotAfter: cert.NotAfter,
				Expiring: now.Add(CertificateExpiryWarning).After(cert.NotAfter),
				Expired:  !now.Before(cert.NotAfter),
			})
		}
		v.SAML = sv
	case store.ConnectionOIDC:
		c, err := DecodeOIDCConfig(conn.Config)
		if err != nil {
			return View{}, err
		}
		v.OIDC = &OIDCView{
			RedirectURI: oidcRedirectURI(issuer, conn.ID),
			Issuer:      c.Issuer, ClientID: c.ClientID,
			ClientSecretSet:     conn.Secrets[SecretClientSecret] != "",
			Scopes:              oidcScopes(c.Scopes),
			HostedDomain:        c.HostedDomain,
			AttributeMapping:    c.AttributeMapping,
			AllowAnyEmailDomain: c.AllowAnyEmailDomain,
			Missing:             oidcMissing(c, conn.Secrets),
		}
	}
	return v, nil
}

func samlMissing(c SAMLConfig) []string {
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

func oidcMissing(c OIDCConfig, secrets map[string]string) []string {
	var m []string
	if c.Issuer == "" {
		m = append(m, "issuer")
	}
	if c.ClientID == "" {
		m = append(m, "client_id")
	}
	if secrets[SecretClientSecret] == "" {
		m = append(m, "client_secret")
	}
	return m
}

func oidcScopes(s []string) []string {
	if len(s) == 0 {
		return []string{"openid", "email", "profile"}
	}
	return s
}

// checkURL accepts an absolute http(s) URL; plain http only when allowed
// (development, tests).
func checkURL(field, raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%w: %s must be an absolute https URL", ErrConfig, field)
	}
	if u.Scheme == "http" && !allowHTTP {
		return fmt.Errorf("%w: %s must use https", ErrConfig, field)
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: %s must not carry credentials or a fragment", ErrConfig, field)
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return fmt.Errorf("%w: %s contains whitespace", ErrConfig, field)
	}
	return nil
}

// Describe renders conn for the API with the registry's issuer and clock.
func (r *Registry) Describe(conn store.Connection) (View, error) {
	return Describe(r.cfg.Issuer, conn, r.now())
}
