package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// discovery is the provider metadata of contract section 1, field by
// field: what the broker does, nothing the library could also do.
type discovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	PromptValuesSupported             []string `json:"prompt_values_supported"`
	BackchannelLogoutSupported        bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool     `json:"backchannel_logout_session_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
	// RequestURIParameterSupported is false, said out loud: OpenID
	// Connect Discovery makes an absent request_uri_parameter_supported
	// mean true.
	RequestURIParameterSupported bool `json:"request_uri_parameter_supported"`
	// Every authorization response carries iss (RFC 9207).
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
}

func discoveryDoc(iss string) discovery {
	return discovery{
		Issuer:                            iss,
		AuthorizationEndpoint:             iss + PathAuthorize,
		TokenEndpoint:                     iss + PathToken,
		UserinfoEndpoint:                  iss + PathUserinfo,
		JWKSURI:                           iss + PathJWKS,
		IntrospectionEndpoint:             iss + PathIntrospect,
		RevocationEndpoint:                iss + PathRevoke,
		EndSessionEndpoint:                iss + PathEndSession,
		ScopesSupported:                   supportedScopes,
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query", "form_post"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token"},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256", "ES256"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "none"},
		IntrospectionAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
		RevocationAuthMethodsSupported:    []string{"client_secret_basic", "client_secret_post", "none"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid",
			"email", "email_verified", "name", "given_name", "family_name", "groups",
			"tenant_id", "connection_id", "connection_type", "idp_subject"},
		PromptValuesSupported:                      []string{"none", "login", "consent", "select_account"},
		AuthorizationResponseIssParameterSupported: true,
		BackchannelLogoutSupported:                 true,
		BackchannelLogoutSessionSupported:          true,
	}
}

func discoveryJSON(iss string) ([]byte, error) {
	b, err := json.Marshal(discoveryDoc(iss))
	if err != nil {
		return nil, fmt.Errorf("broker: encode discovery: %w", err)
	}
	return b, nil
}

func (p *Provider) serveDiscovery(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, p.discovery)
}

// jwksMaxAge bounds how old the key set a node answers may be, and
// jwksReadWait how long a request waits for a read of the keys.
const (
	jwksMaxAge   = time.Second
	jwksReadWait = 500 * time.Millisecond
)

// serveJWKS writes the key snapshot's pre-encoded JWKS: active and
// overlapping keys, so tokens signed before a rotation still verify.
//
// A rotation made elsewhere (another node, `idbroker keys rotate`)
// reaches the snapshot at this node's next reload, up to 30 s away, while
// a short-overlap rotation signs with the new keys at once on the node
// that read them first. A relying party fetches the set when it meets a
// key id it lacks, through a load balancer that may pick this node: so
// the set is answered from a read of the keys at most jwksMaxAge old
// (signing.Manager.Fresh). A node reads the keys for it at most once per
// jwksMaxAge, and only the requests of that moment wait for the read;
// the others are answered from the snapshot at once, as the busiest
// endpoint of the broker must be (a read per request, or a wait for
// one, cut it from ~30,000 answers a second to 250). If the keys cannot
// be read within jwksReadWait, the snapshot is the set.
func (p *Provider) serveJWKS(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), jwksReadWait)
	_ = p.keys.Fresh(ctx, jwksMaxAge)
	cancel()
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "application/jwk-set+json", p.keys.JWKSJSON())
}
