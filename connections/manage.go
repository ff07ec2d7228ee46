package connections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Settings is what an operator or tenant admin sends to create or change a
// connection (the saml / oidc objects of contract section 4). Nil fields
// are left as they are.
type Settings struct {
	SAML *SAMLSettings `json:"saml,omitempty"`
	OIDC *OIDCSettings `json:"oidc,omitempty"`
}

// SAMLSettings configures the IdP side of a SAML connection: metadata XML,
// a metadata URL (re-read periodically), or the manual fields.
type SAMLSettings struct {
	IdPMetadataXML      *string           `json:"idp_metadata_xml,omitempty"`
	IdPMetadataURL      *string           `json:"idp_metadata_url,omitempty"`
	IdPEntityID         *string           `json:"idp_entity_id,omitempty"`
	IdPSSOURL           *string           `json:"idp_sso_url,omitempty"`
	IdPSSOBinding       *string           `json:"idp_sso_binding,omitempty"`
	IdPCertificatesPEM  *PEMList          `json:"idp_certificates_pem,omitempty"`
	AllowIdPInitiated   *bool             `json:"allow_idp_initiated,omitempty"`
	AttributeMapping    *AttributeMapping `json:"attribute_mapping,omitempty"`
	NameIDFormat        *string           `json:"name_id_format,omitempty"`
	ClockSkewSeconds    *int              `json:"clock_skew_seconds,omitempty"`
	AllowSHA1           *bool             `json:"allow_sha1,omitempty"`
	AllowAnyEmailDomain *bool             `json:"allow_any_email_domain,omitempty"`
}

// OIDCSettings configures an OIDC connection.
type OIDCSettings struct {
	Issuer              *string           `json:"issuer,omitempty"`
	ClientID            *string           `json:"client_id,omitempty"`
	ClientSecret        *string           `json:"client_secret,omitempty"`
	Scopes              *[]string         `json:"scopes,omitempty"`
	HostedDomain        *string           `json:"hosted_domain,omitempty"`
	AttributeMapping    *AttributeMapping `json:"attribute_mapping,omitempty"`
	AllowAnyEmailDomain *bool             `json:"allow_any_email_domain,omitempty"`
}

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

// Update changes a connection; nil fields are left as they are.
type Update struct {
	Name   *string
	Status *store.ConnectionStatus
	Settings
}

// Connection events (contract section 5).
const (
	EventActivated           = "connection.activated"
	EventDeactivated         = "connection.deactivated"
	EventCertificateExpiring = "connection.certificate_expiring"
)

// CreateConnection adds a connection to the tenant in ctx. It is active at
// once when its settings are complete, draft otherwise.
func (r *Registry) CreateConnection(ctx context.Context, typ store.ConnectionType, name string, s Settings) (store.Connection, error) {
	name, err := checkConnName(name)
	if err != nil {
		return store.Connection{}, err
	}
	conn := store.Connection{ID: store.NewID(store.PrefixConnection), Type: typ, Name: name, Secrets: map[string]string{}}
	switch typ {
	case store.ConnectionSAML:
		if s.OIDC != nil {
			return store.Connection{}, fmt.Errorf("%w: oidc settings on a saml connection", ErrConfig)
		}
		keyPEM, certPEM, err := newSPKey(spEntityID(r.cfg.Issuer, conn.ID), r.now())
		if err != nil {
			return store.Connection{}, err
		}
		conn.Secrets[SecretSPKey] = keyPEM
		cfg := SAMLConfig{SPCertificatePEM: certPEM}
		if err := r.applySAML(ctx, &cfg, s.SAML); err != nil {
			return store.Connection{}, err
		}
		conn.Config, _ = json.Marshal(cfg)
	case store.ConnectionOIDC:
		if s.SAML != nil {
			return store.Connection{}, fmt.Errorf("%w: saml settings on an oidc connection", ErrConfig)
		}
		var cfg OIDCConfig
		if err := r.applyOIDC(ctx, &cfg, conn.Secrets, s.OIDC); err != nil {
			return store.Connection{}, err
		}
		conn.Config, _ = json.Marshal(cfg)
	default:
		return store.Connection{}, fmt.Errorf("%w: type must be \"saml\" or \"oidc\"", ErrConfig)
	}
	conn.Status = store.ConnectionDraft
	if complete(conn) {
		if err := r.probe(ctx, conn); err != nil {
			return store.Connection{}, err
		}
		conn.Status = store.ConnectionActive
	}
	var out store.Connection
	err = r.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		var err error
		out, err = r.cfg.Store.CreateConnection(ctx, conn)
		if err != nil {
			return err
		}
		if out.Status == store.ConnectionActive {
			return r.event(ctx, EventActivated, out, nil)
		}
		return nil
	})
	if err != nil {
		return store.Connection{}, fmt.Errorf("create connection: %w", err)
	}
	r.cache.putConn(out, r.now())
	return out, nil
}

// UpdateConnection changes a connection of the tenant in ctx. Activating
// needs complete settings; deactivating ends the connection's sessions.
func (r *Registry) UpdateConnection(ctx context.Context, id string, u Update) (store.Connection, error) {
	conn, err := r.cfg.Store.Connection(ctx, id)
	if err != nil {
		return store.Connection{}, storeErr(err, id)
	}
	before := conn.Status
	if u.Name != nil {
		if conn.Name, err = checkConnName(*u.Name); err != nil {
			return store.Connection{}, err
		}
	}
	if conn.Secrets == nil {
		conn.Secrets = map[string]string{}
	}
	changedIdP := false
	switch conn.Type {
	case store.ConnectionSAML:
		if u.OIDC != nil {
			return store.Connection{}, fmt.Errorf("%w: oidc settings on a saml connection", ErrConfig)
		}
		cfg, err := DecodeSAMLConfig(conn.Config)
		if err != nil {
			return store.Connection{}, err
		}
		if u.SAML != nil {
			if err := r.applySAML(ctx, &cfg, u.SAML); err != nil {
				return store.Connection{}, err
			}
			changedIdP = true
		}
		conn.Config, _ = json.Marshal(cfg)
	case store.ConnectionOIDC:
		if u.SAML != nil {
			return store.Connection{}, fmt.Errorf("%w: saml settings on an oidc connection", ErrConfig)
		}
		cfg, err := DecodeOIDCConfig(conn.Config)
		if err != nil {
			return store.Connection{}, err
		}
		if u.OIDC != nil {
			if err := r.applyOIDC(ctx, &cfg, conn.Secrets, u.OIDC); err != nil {
				return store.Connection{}, err
			}
			changedIdP = true
		}
		conn.Config, _ = json.Marshal(cfg)
	}

	switch {
	case u.Status == nil:
		// A draft becomes active once complete; an inactive one stays off
		// until someone turns it on.
		if conn.Status == store.ConnectionDraft && complete(conn) {
			conn.Status = store.ConnectionActive
		}
	case *u.Status == store.ConnectionActive:
		if !complete(conn) {
			return store.Connection{}, fmt.Errorf("%w: cannot activate: missing %s", ErrConfig, strings.Join(missing(conn), ", "))
		}
		conn.Status = store.ConnectionActive
	case *u.Status == store.ConnectionInactive:
		conn.Status = store.ConnectionInactive
	case *u.Status == store.ConnectionDraft && conn.Status == store.ConnectionDraft:
		// A draft stays a draft while the portal's wizard fills it in
		// and tests it; the admin activates it once a test login passed.
	default:
		return store.Connection{}, fmt.Errorf("%w: status must be \"active\" or \"inactive\"", ErrConfig)
	}
	if conn.Status == store.ConnectionActive && !complete(conn) {
		return store.Connection{}, fmt.Errorf("%w: the change would leave an active connection without %s", ErrConfig, strings.Join(missing(conn), ", "))
	}
	if conn.Status == store.ConnectionActive && (changedIdP || before != store.ConnectionActive) {
		if err := r.probe(ctx, conn); err != nil {
			return store.Connection{}, err
		}
	}

	var (
		out store.Connection
		rv  *store.Revocation
	)
	err = r.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		var err error
		out, err = r.cfg.Store.UpdateConnection(ctx, conn)
		if err != nil {
			return err
		}
		switch {
		case before != store.ConnectionActive && out.Status == store.ConnectionActive:
			return r.event(ctx, EventActivated, out, nil)
		case before == store.ConnectionActive && out.Status != store.ConnectionActive:
			if rv, err = r.recordRevocation(ctx, out, "connection.deactivated"); err != nil {
				return err
			}
			return r.event(ctx, EventDeactivated, out, nil)
		}
		return nil
	})
	if err != nil {
		return store.Connection{}, fmt.Errorf("update connection: %w", storeErr(err, id))
	}
	// This node's SSO endpoints see the change at once; others within
	// CacheTTL.
	r.cache.putConn(out, r.now())
	if before == store.ConnectionActive && out.Status != store.ConnectionActive {
		r.endSessions(ctx, out, rv)
	}
	return out, nil
}

// DeleteConnection removes a connection of the tenant in ctx and ends its
// sessions.
func (r *Registry) DeleteConnection(ctx context.Context, id string) error {
	conn, err := r.cfg.Store.Connection(ctx, id)
	if err != nil {
		return storeErr(err, id)
	}
	var rv *store.Revocation
	err = r.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		if err := r.cfg.Store.DeleteConnection(ctx, id); err != nil {
			return err
		}
		var err error
		if rv, err = r.recordRevocation(ctx, conn, "connection.deleted"); err != nil {
			return err
		}
		if conn.Status == store.ConnectionActive {
			return r.event(ctx, EventDeactivated, conn, map[string]any{"deleted": true})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete connection: %w", storeErr(err, id))
	}
	r.cache.dropConn(id, r.now())
	r.endSessions(ctx, conn, rv)
	return nil
}

// Revoker applies revocations once their transaction has committed (an
// *events.Revoker). An error means the session store did not acknowledge
// and the revocation stays queued, to be applied as soon as it answers.
type Revoker interface {
	Apply(ctx context.Context, revs ...store.Revocation) ([]sessions.Session, error)
}

// recordRevocation records, in the transaction of ctx, the order to end
// every session made through conn, when a Revoker will apply it.
func (r *Registry) recordRevocation(ctx context.Context, conn store.Connection, reason string) (*store.Revocation, error) {
	if r.cfg.Revoker == nil || r.cfg.Sessions == nil {
		return nil, nil
	}
	rv, err := r.cfg.Store.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeConnection, TenantID: conn.TenantID, SubjectID: conn.ID, Reason: reason})
	if err != nil {
		return nil, fmt.Errorf("record revocation: %w", err)
	}
	return &rv, nil
}

// endSessions revokes every session made through conn: by applying rv,
// recorded with the change (durable: a failure leaves it queued for the
// Revoker's retries), or directly without a Revoker. A failure is logged,
// not returned: the connection change itself has committed, and an
// inactive connection refuses new logins regardless.
//
// It revokes again once every node's cache has expired: another node may
// still hold the connection as active for up to CacheTTL and let a login
// through, and that session must not outlive the deactivation.
func (r *Registry) endSessions(ctx context.Context, conn store.Connection, rv *store.Revocation) {
	if r.cfg.Sessions == nil {
		return
	}
	if rv != nil {
		if _, err := r.cfg.Revoker.Apply(ctx, *rv); err != nil {
			r.cfg.Logger.WarnContext(ctx, "revocation of a deactivated connection's sessions queued until the session store answers",
				"tenant", conn.TenantID, "connection", conn.ID, "revocation", rv.ID, "err", err)
		}
	} else if _, err := r.cfg.Sessions.RevokeConnection(ctx, conn.TenantID, conn.ID); err != nil {
		r.cfg.Logger.ErrorContext(ctx, "revoke sessions of deactivated connection", "tenant", conn.TenantID, "connection", conn.ID, "err", err)
	}
	if r.cfg.CacheTTL <= 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	time.AfterFunc(r.sweepDelay(), func() { r.sweepSessions(ctx, conn) })
}

// sweepDelay is how long after a deactivation every node's cache has
// surely dropped the active connection, and the logins it let through
// have finished.
func (r *Registry) sweepDelay() time.Duration {
	return max(2*r.cfg.CacheTTL, r.cfg.CacheTTL+time.Second)
}

// sweepSessions is endSessions' second pass, skipped when the connection
// was turned back on meanwhile (its new sessions are legitimate).
func (r *Registry) sweepSessions(ctx context.Context, conn store.Connection) {
	cur, err := r.cfg.Store.Connection(ctx, conn.ID)
	switch {
	case err == nil && cur.Status == store.ConnectionActive:
		return
	case err != nil && !errors.Is(err, store.ErrNotFound):
		r.cfg.Logger.ErrorContext(ctx, "re-read deactivated connection", "tenant", conn.TenantID, "connection", conn.ID, "err", err)
		return
	}
	if _, err := r.cfg.Sessions.RevokeConnection(ctx, conn.TenantID, conn.ID); err != nil {
		r.cfg.Logger.ErrorContext(ctx, "revoke sessions of deactivated connection", "tenant", conn.TenantID, "connection", conn.ID, "err", err)
	}
}

func (r *Registry) event(ctx context.Context, typ string, conn store.Connection, extra map[string]any) error {
	data := map[string]any{"connection_id": conn.ID, "tenant_id": conn.TenantID, "type": conn.Type, "name": conn.Name, "status": conn.Status}
	for k, v := range extra {
		data[k] = v
	}
	b, _ := json.Marshal(data)
	_, err := r.cfg.Store.AppendEvent(ctx, store.Event{TenantID: conn.TenantID, Type: typ, Data: b})
	return err
}

// probe builds the connector of a connection about to become active, so
// that a bad IdP configuration (an unreachable OIDC issuer) is a clear 4xx
// now rather than failed logins later.
func (r *Registry) probe(ctx context.Context, conn store.Connection) error {
	var err error
	switch conn.Type {
	case store.ConnectionSAML:
		_, err = newSAMLConnector(r, conn)
	case store.ConnectionOIDC:
		_, err = newOIDCConnector(ctx, r, conn)
	}
	if err != nil && !errors.Is(err, ErrConfig) {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return err
}

func complete(conn store.Connection) bool { return len(missing(conn)) == 0 }

func missing(conn store.Connection) []string {
	switch conn.Type {
	case store.ConnectionSAML:
		c, err := DecodeSAMLConfig(conn.Config)
		if err != nil {
			return []string{"valid configuration"}
		}
		return samlMissing(c)
	case store.ConnectionOIDC:
		c, err := DecodeOIDCConfig(conn.Config)
		if err != nil {
			return []string{"valid configuration"}
		}
		return oidcMissing(c, conn.Secrets)
	}
	return []string{"type"}
}

func storeErr(err error, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if errors.Is(err, store.ErrInvalid) {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return err
}

func checkConnName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: name must be 1 to 200 characters", ErrConfig)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("%w: name contains control characters", ErrConfig)
		}
	}
	return name, nil
}

// applySAML merges s into cfg, fetching metadata when a URL is given.
func (r *Registry) applySAML(ctx context.Context, cfg *SAMLConfig, s *SAMLSettings) error {
	if s == nil {
		return nil
	}
	hasXML := s.IdPMetadataXML != nil && strings.TrimSpace(*s.IdPMetadataXML) != ""
	hasURL := s.IdPMetadataURL != nil && *s.IdPMetadataURL != ""
	manual := s.IdPEntityID != nil || s.IdPSSOURL != nil || s.IdPCertificatesPEM != nil || s.IdPSSOBinding != nil
	switch {
	case hasXML && hasURL:
		return fmt.Errorf("%w: give idp_metadata_xml or idp_metadata_url, not both", ErrConfig)
	case (hasXML || hasURL) && manual:
		return fmt.Errorf("%w: give IdP metadata or the manual fields (idp_entity_id, idp_sso_url, idp_certificates_pem), not both", ErrConfig)
	}
	var idp *idpSettings
	switch {
	case hasXML:
		got, err := parseIdPMetadata([]byte(*s.IdPMetadataXML))
		if err != nil {
			return err
		}
		idp = &got
		cfg.IdPMetadataURL, cfg.MetadataFetchedAt = "", nil
	case hasURL:
		if err := checkURL("idp_metadata_url", *s.IdPMetadataURL, r.cfg.AllowInsecureURLs); err != nil {
			return err
		}
		got, err := fetchIdPMetadata(ctx, r.cfg.HTTPClient, *s.IdPMetadataURL)
		if err != nil {
			return err
		}
		idp = &got
		now := r.now().UTC()
		cfg.IdPMetadataURL, cfg.MetadataFetchedAt = *s.IdPMetadataURL, &now
	case s.IdPMetadataURL != nil:
		// An explicit empty URL stops refreshing; the last settings stay.
		cfg.IdPMetadataURL, cfg.MetadataFetchedAt = "", nil
	}
	if idp != nil {
		cfg.IdPEntityID, cfg.IdPSSOURL, cfg.IdPSSOBinding = idp.EntityID, idp.SSOURL, idp.SSOBinding
		cfg.IdPCertificates = mergeCertificates(cfg.IdPCertificates, idp.Certificates)
	}
	if manual {
		cfg.IdPMetadataURL, cfg.MetadataFetchedAt = "", nil
	}
	if s.IdPEntityID != nil {
		v := strings.TrimSpace(*s.IdPEntityID)
		if len(v) > 1024 {
			return fmt.Errorf("%w: idp_entity_id longer than 1024 characters", ErrConfig)
		}
		cfg.IdPEntityID = v
	}
	if s.IdPSSOURL != nil {
		if *s.IdPSSOURL != "" {
			if err := checkURL("idp_sso_url", *s.IdPSSOURL, r.cfg.AllowInsecureURLs); err != nil {
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
			return fmt.Errorf("%w: idp_sso_binding must be \"redirect\" or \"post\"", ErrConfig)
		}
	}
	if s.IdPCertificatesPEM != nil {
		certs, err := parseCertificates(strings.Join(*s.IdPCertificatesPEM, "\n"))
		if err != nil {
			return err
		}
		cfg.IdPCertificates = mergeCertificates(cfg.IdPCertificates, certs)
	}
	if s.AllowIdPInitiated != nil {
		cfg.AllowIdPInitiated = *s.AllowIdPInitiated
	}
	if s.AttributeMapping != nil {
		if err := s.AttributeMapping.Validate(); err != nil {
			return err
		}
		cfg.AttributeMapping = s.AttributeMapping
	}
	if s.NameIDFormat != nil {
		switch *s.NameIDFormat {
		case "", NameIDPersistent, NameIDEmail, NameIDUnspecified:
			cfg.NameIDFormat = *s.NameIDFormat
		default:
			return fmt.Errorf("%w: name_id_format must be persistent, email or unspecified (transient cannot identify a user)", ErrConfig)
		}
	}
	if s.ClockSkewSeconds != nil {
		if *s.ClockSkewSeconds < 0 || time.Duration(*s.ClockSkewSeconds)*time.Second > MaxClockSkew {
			return fmt.Errorf("%w: clock_skew_seconds must be between 0 and %d", ErrConfig, int(MaxClockSkew/time.Second))
		}
		cfg.ClockSkewSeconds = *s.ClockSkewSeconds
	}
	if s.AllowSHA1 != nil {
		cfg.AllowSHA1 = *s.AllowSHA1
	}
	if s.AllowAnyEmailDomain != nil {
		cfg.AllowAnyEmailDomain = *s.AllowAnyEmailDomain
	}
	return nil
}

// applyOIDC merges s into cfg and secrets.
func (r *Registry) applyOIDC(_ context.Context, cfg *OIDCConfig, secrets map[string]string, s *OIDCSettings) error {
	if s == nil {
		return nil
	}
	if s.Issuer != nil {
		iss := strings.TrimRight(strings.TrimSpace(*s.Issuer), "/")
		if err := checkURL("issuer", iss, r.cfg.AllowInsecureURLs); err != nil {
			return err
		}
		if _, err := entraTenantOf(iss); err != nil {
			return err
		}
		cfg.Issuer = iss
	}
	if s.ClientID != nil {
		v := strings.TrimSpace(*s.ClientID)
		if v == "" || len(v) > 512 {
			return fmt.Errorf("%w: client_id must be 1 to 512 characters", ErrConfig)
		}
		cfg.ClientID = v
	}
	if s.ClientSecret != nil {
		if *s.ClientSecret == "" || len(*s.ClientSecret) > 4096 {
			return fmt.Errorf("%w: client_secret must be 1 to 4096 characters", ErrConfig)
		}
		secrets[SecretClientSecret] = *s.ClientSecret
	}
	if s.Scopes != nil {
		scopes := *s.Scopes
		hasOpenID := false
		for _, sc := range scopes {
			if sc == "" || strings.ContainsAny(sc, " \t\"") {
				return fmt.Errorf("%w: scope %q is not a scope token", ErrConfig, sc)
			}
			hasOpenID = hasOpenID || sc == "openid"
		}
		if len(scopes) > 0 && !hasOpenID {
			return fmt.Errorf("%w: scopes must include openid", ErrConfig)
		}
		cfg.Scopes = scopes
	}
	if s.HostedDomain != nil {
		cfg.HostedDomain = strings.ToLower(strings.TrimSpace(*s.HostedDomain))
	}
	if s.AttributeMapping != nil {
		if err := s.AttributeMapping.Validate(); err != nil {
			return err
		}
		cfg.AttributeMapping = s.AttributeMapping
	}
	if s.AllowAnyEmailDomain != nil {
		cfg.AllowAnyEmailDomain = *s.AllowAnyEmailDomain
	}
	return nil
}
