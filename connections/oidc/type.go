// Package oidc is the OpenID Connect connection type: the broker as a
// relying party of a tenant's IdP (Okta, Entra ID, Google Workspace, any
// OpenID Provider), over zitadel/oidc, with state, nonce and PKCE verifier
// kept server-side and the IdP families' rules on top (Entra users keyed
// by tid + oid, Google's hd checked).
//
// It implements connections.Type and is registered by the wiring under
// Name:
//
//	GET /sso/oidc/{conn}/callback   redirect URI
package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
)

// Name is the type's name, as stored and as the API spells it.
const Name store.ConnectionType = "oidc"

// Type is the OIDC connection type.
type Type struct{}

// New returns the OIDC connection type.
func New() Type { return Type{} }

var _ connections.Type = Type{}

// Configure merges the "oidc" settings of a request.
func (Type) Configure(ctx context.Context, deps connections.Deps, conn *store.Connection, raw json.RawMessage) error {
	var s *Settings
	if raw != nil {
		s = new(Settings)
		if err := connections.DecodeRequest(raw, s); err != nil {
			return fmt.Errorf("oidc: %w", err)
		}
	}
	cfg, err := DecodeConfig(conn.Config)
	if err != nil {
		return err
	}
	if conn.Secrets == nil {
		conn.Secrets = map[string]string{}
	}
	if err := apply(ctx, deps, &cfg, conn.Secrets, s); err != nil {
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
	return missing(c, conn.Secrets)
}

// Open builds the connection's Connector, reading the IdP's discovery
// document.
func (Type) Open(ctx context.Context, deps connections.Deps, conn store.Connection) (connections.Connector, error) {
	return open(ctx, deps, conn)
}

// Describe renders the "oidc" object of the connection's View.
func (Type) Describe(deps connections.Deps, conn store.Connection, _ time.Time) (any, error) {
	return describe(deps, conn)
}

// Routes is the redirect URI.
func (Type) Routes() []connections.Route {
	return []connections.Route{{Method: http.MethodGet, Path: "callback", Finish: true}}
}
