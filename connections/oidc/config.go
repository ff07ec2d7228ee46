package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/store"
)

// SecretClientSecret is the key in store.Connection.Secrets of the
// connection's client secret, sealed at rest.
const SecretClientSecret = "oidc_client_secret"

// Config is store.Connection.Config of an OIDC connection. The client
// secret lives in store.Connection.Secrets under SecretClientSecret.
type Config struct {
	Issuer   string   `json:"issuer"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes,omitempty"`
	// HostedDomain is Google Workspace's hd: when set, the id_token's hd
	// claim must equal it.
	HostedDomain        string                        `json:"hosted_domain,omitempty"`
	AttributeMapping    *connections.AttributeMapping `json:"attribute_mapping,omitempty"`
	AllowAnyEmailDomain bool                          `json:"allow_any_email_domain,omitempty"`
}

// DecodeConfig reads a stored config strictly.
func DecodeConfig(raw json.RawMessage) (Config, error) {
	var c Config
	return c, connections.DecodeStrict(raw, &c)
}

// missing lists what is still needed before the connection can log users
// in, by the API's field names.
func missing(c Config, secrets map[string]string) []string {
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

func scopes(s []string) []string {
	if len(s) == 0 {
		return []string{"openid", "email", "profile"}
	}
	return s
}

// Settings configures an OIDC connection: the "oidc" object of the
// operator API. Nil fields are left as they are.
type Settings struct {
	Issuer              *string                       `json:"issuer,omitempty"`
	ClientID            *string                       `json:"client_id,omitempty"`
	ClientSecret        *string                       `json:"client_secret,omitempty"`
	Scopes              *[]string                     `json:"scopes,omitempty"`
	HostedDomain        *string                       `json:"hosted_domain,omitempty"`
	AttributeMapping    *connections.AttributeMapping `json:"attribute_mapping,omitempty"`
	AllowAnyEmailDomain *bool                         `json:"allow_any_email_domain,omitempty"`
}

// Request wraps s as the Settings of a create or update request.
func (s Settings) Request() connections.Settings { return connections.SettingsFor(Name, s) }

// apply merges s into cfg and secrets.
func apply(_ context.Context, deps connections.Deps, cfg *Config, secrets map[string]string, s *Settings) error {
	if s == nil {
		return nil
	}
	if s.Issuer != nil {
		// Kept as typed: an issuer is compared exactly, and some end in a
		// slash (open accepts either form of the IdP's own).
		iss := strings.TrimSpace(*s.Issuer)
		// Admins often paste the discovery document's URL, which IdP
		// consoles show beside or instead of the issuer (Okta's
		// "Metadata URI", Entra's "OpenID Connect metadata document"):
		// the issuer is what precedes its well-known path.
		iss = strings.TrimSuffix(iss, oidc.DiscoveryEndpoint)
		if err := connections.CheckURL("issuer", iss, deps.AllowInsecureURLs); err != nil {
			return err
		}
		// An issuer naming an Entra tenant by domain is kept: opening the
		// connection reads its discovery document and names the tenant id
		// to set instead.
		if _, err := entraTenantOf(iss); err != nil && !errors.Is(err, errEntraDomain) {
			return err
		}
		cfg.Issuer = iss
	}
	if s.ClientID != nil {
		v := strings.TrimSpace(*s.ClientID)
		if v == "" || len(v) > 512 {
			return connections.Invalid("client_id", "client_id must be 1 to 512 characters")
		}
		cfg.ClientID = v
	}
	if s.ClientSecret != nil {
		if *s.ClientSecret == "" || len(*s.ClientSecret) > 4096 {
			return connections.Invalid("client_secret", "client_secret must be 1 to 4096 characters")
		}
		secrets[SecretClientSecret] = *s.ClientSecret
	}
	if s.Scopes != nil {
		scopes := *s.Scopes
		hasOpenID := false
		for _, sc := range scopes {
			if sc == "" || strings.ContainsAny(sc, " \t\"") {
				return connections.Invalid("scopes", "scope %q is not a scope token", sc)
			}
			hasOpenID = hasOpenID || sc == "openid"
		}
		if len(scopes) > 0 && !hasOpenID {
			return connections.Invalid("scopes", "scopes must include openid")
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

// View is the "oidc" object of a connection as the API shows it.
type View struct {
	RedirectURI         string                        `json:"redirect_uri"`
	Issuer              string                        `json:"issuer,omitempty"`
	ClientID            string                        `json:"client_id,omitempty"`
	ClientSecretSet     bool                          `json:"client_secret_set"`
	Scopes              []string                      `json:"scopes"`
	HostedDomain        string                        `json:"hosted_domain,omitempty"`
	AttributeMapping    *connections.AttributeMapping `json:"attribute_mapping,omitempty"`
	AllowAnyEmailDomain bool                          `json:"allow_any_email_domain"`
	Missing             []string                      `json:"missing,omitempty"`
}

func describe(deps connections.Deps, conn store.Connection) (*View, error) {
	c, err := DecodeConfig(conn.Config)
	if err != nil {
		return nil, err
	}
	return &View{
		RedirectURI: deps.URL(conn, "callback"),
		Issuer:      c.Issuer, ClientID: c.ClientID,
		ClientSecretSet:     conn.Secrets[SecretClientSecret] != "",
		Scopes:              scopes(c.Scopes),
		HostedDomain:        c.HostedDomain,
		AttributeMapping:    c.AttributeMapping,
		AllowAnyEmailDomain: c.AllowAnyEmailDomain,
		Missing:             missing(c, conn.Secrets),
	}, nil
}
