// Package saml is the SAML 2.0 connection type: the broker as a service
// provider toward a tenant's IdP, one SP (entity id, ACS URL, signing key)
// per connection, over crewjam/saml with the checks a broker needs on top
// (a connection's own clock skew, replay cache shared by all nodes, named
// validation failures, no DTDs or comments).
//
// It implements connections.Type and is registered by the wiring under
// Name:
//
//	GET  /sso/saml/{conn}/metadata   SP metadata, for a connection in any status
//	POST /sso/saml/{conn}/acs        Assertion Consumer Service (HTTP-POST only)
//
// Its Maintain re-reads IdP metadata URLs (so that a rolled certificate is
// trusted as soon as the IdP publishes it) and announces certificates
// within CertificateExpiryWarning of their expiry, once each.
package saml

import (
	"cmp"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
)

// Name is the type's name, as stored and as the API spells it.
const Name store.ConnectionType = "saml"

// DefaultMetadataRefresh is how often IdP metadata URLs are re-read.
const DefaultMetadataRefresh = 12 * time.Hour

// Type is the SAML connection type.
type Type struct {
	// MetadataRefresh is how often IdP metadata URLs are re-read; zero
	// means DefaultMetadataRefresh.
	MetadataRefresh time.Duration
	// NewKey makes a new connection's SP key; nil makes an RSA-2048 key
	// from crypto/rand. Tests hand out keys made in advance
	// (samltest.Keys): making one costs 0.1-0.7 s, which was most of the
	// CPU of the tests that create SAML connections.
	NewKey func() (*rsa.PrivateKey, error)
}

// New returns the SAML connection type with its defaults.
func New() Type { return Type{} }

var (
	_ connections.Type       = Type{}
	_ connections.Maintainer = Type{}
)

// Configure creates the connection's own SP key on first use, then merges
// the "saml" settings of a request.
func (t Type) Configure(ctx context.Context, deps connections.Deps, conn *store.Connection, raw json.RawMessage) error {
	var s *Settings
	if raw != nil {
		s = new(Settings)
		if err := connections.DecodeRequest(raw, s); err != nil {
			return fmt.Errorf("saml: %w", err)
		}
	}
	cfg, err := DecodeConfig(conn.Config)
	if err != nil {
		return err
	}
	if conn.Secrets[SecretSPKey] == "" && cfg.SPCertificatePEM == "" {
		keyPEM, certPEM, err := newSPKey(deps.URL(*conn, ""), deps.Now(), t.NewKey)
		if err != nil {
			return err
		}
		if conn.Secrets == nil {
			conn.Secrets = map[string]string{}
		}
		conn.Secrets[SecretSPKey] = keyPEM
		cfg.SPCertificatePEM = certPEM
	}
	if err := apply(ctx, deps, &cfg, s); err != nil {
		return err
	}
	conn.Config, err = json.Marshal(cfg)
	return err
}

// Missing lists what the connection needs before it can be activated.
func (Type) Missing(conn store.Connection) []string {
	c, err := DecodeConfig(conn.Config)
	if err != nil {
		return []string{"valid configuration"}
	}
	return c.Missing()
}

// Open builds the connection's Connector.
func (Type) Open(_ context.Context, deps connections.Deps, conn store.Connection) (connections.Connector, error) {
	return open(deps, conn)
}

// Describe renders the "saml" object of the connection's View.
func (Type) Describe(deps connections.Deps, conn store.Connection, now time.Time) (any, error) {
	return describe(deps, conn, now)
}

// Routes are the SP metadata and the ACS.
func (Type) Routes() []connections.Route {
	return []connections.Route{
		{Method: http.MethodGet, Path: "metadata", Serve: serveMetadata},
		{Method: http.MethodPost, Path: "acs", Finish: true},
	}
}

// serveMetadata publishes the connection's SP metadata: from the cached
// connector of an active connection (this URL is public, and building a
// connector parses the SP's private key), or from one built for the
// request when the connection is a draft or inactive — the tenant admin
// needs the metadata to configure the IdP before the connection is
// complete.
func serveMetadata(ctx context.Context, deps connections.Deps, conn store.Connection, cn connections.Connector, w http.ResponseWriter, r *http.Request) error {
	sc, ok := cn.(*samlConnector)
	if !ok {
		var err error
		if sc, err = openForMetadata(deps, conn); err != nil {
			deps.Logger.ErrorContext(ctx, "SP metadata", "connection", conn.ID, "err", err)
			http.Error(w, "SAML connection has no SP key", http.StatusNotFound)
			return nil
		}
	}
	b, err := sc.Metadata()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

// Maintain refreshes metadata when due (or at once, when forced) and
// records expiring certificates, returning the new config when either
// changed it.
func (t Type) Maintain(ctx context.Context, deps connections.Deps, conn store.Connection, force bool) (json.RawMessage, []connections.Event, error) {
	cfg, err := DecodeConfig(conn.Config)
	if err != nil {
		return nil, nil, err
	}
	now := deps.Now()
	changed := false
	var refreshErr error
	if cfg.IdPMetadataURL != "" && (force || cfg.MetadataFetchedAt == nil || now.Sub(*cfg.MetadataFetchedAt) >= cmp.Or(t.MetadataRefresh, DefaultMetadataRefresh)) {
		// In an aggregate, the IdP is the one the connection took.
		idp, err := fetchIdPMetadata(ctx, deps, cfg.IdPMetadataURL, cfg.IdPEntityID)
		if err != nil {
			// Keep the last good settings: an IdP's metadata endpoint
			// being down must not break its logins.
			refreshErr = err
		} else {
			if idp.EntityID != cfg.IdPEntityID || idp.SSOURL != cfg.IdPSSOURL || idp.SSOBinding != cfg.IdPSSOBinding ||
				!sameCertificates(idp.Certificates, cfg.IdPCertificates) || idp.WantsSignedRequests != cfg.IdPWantsSignedRequests ||
				idp.EmailNameIDOnly != cfg.IdPEmailNameIDOnly {
				cfg.IdPEntityID, cfg.IdPSSOURL, cfg.IdPSSOBinding = idp.EntityID, idp.SSOURL, idp.SSOBinding
				cfg.IdPCertificates = mergeCertificates(cfg.IdPCertificates, idp.Certificates)
				// An IdP that starts requiring signed AuthnRequests
				// refuses unsigned ones from then on.
				cfg.IdPWantsSignedRequests = idp.WantsSignedRequests
				cfg.IdPEmailNameIDOnly = idp.EmailNameIDOnly
			}
			t := now.UTC()
			cfg.MetadataFetchedAt = &t
			changed = true
		}
	}
	var events []connections.Event
	for i := range cfg.IdPCertificates {
		c := &cfg.IdPCertificates[i]
		if !c.ExpiringNotified && now.Add(CertificateExpiryWarning).After(c.NotAfter) {
			c.ExpiringNotified = true
			events = append(events, connections.Event{Type: connections.EventCertificateExpiring, Data: map[string]any{
				"certificate_sha256": c.SHA256, "subject": c.Subject, "not_after": c.NotAfter,
			}})
			changed = true
		}
	}
	if !changed {
		return nil, nil, refreshErr
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, nil, err
	}
	return b, events, refreshErr
}

var _ connections.CertificateHolder = Type{}

// TrustedUntil is when the last IdP signing certificate conn trusts
// expires.
func (Type) TrustedUntil(conn store.Connection) (time.Time, bool) {
	cfg, err := DecodeConfig(conn.Config)
	if err != nil || len(cfg.IdPCertificates) == 0 {
		return time.Time{}, false
	}
	var until time.Time
	for _, c := range cfg.IdPCertificates {
		if c.NotAfter.After(until) {
			until = c.NotAfter
		}
	}
	return until, true
}
