package adminportal

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/secrets"
	"github.com/idbroker/idbroker/store"
)

// ClientSecretPrefix starts every application client secret.
const ClientSecretPrefix = "idb_cs"

// Bounds of an application's URI lists.
const (
	maxRedirectURIs = 20
	maxURILen       = 2000
)

type createApplicationRequest struct {
	Name                     string   `json:"name"`
	RedirectURIs             []string `json:"redirect_uris"`
	PostLogoutRedirectURIs   []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI     string   `json:"backchannel_logout_uri"`
	Public                   bool     `json:"public"`
	IDTokenSignedResponseAlg string   `json:"id_token_signed_response_alg"`
}

// applicationJSON is an application as the API shows it. ClientSecret is
// set only in the answer to its creation: only its hash is kept.
type applicationJSON struct {
	ID                       string   `json:"id"`
	ClientID                 string   `json:"client_id"`
	ClientSecret             *string  `json:"client_secret"`
	Name                     string   `json:"name"`
	RedirectURIs             []string `json:"redirect_uris"`
	PostLogoutRedirectURIs   []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI     *string  `json:"backchannel_logout_uri"`
	Public                   bool     `json:"public"`
	IDTokenSignedResponseAlg string   `json:"id_token_signed_response_alg"`
}

// createApplication registers an OIDC client of the broker. Confidential
// clients get a secret, shown once; public clients (SPAs, native apps)
// none, and must use PKCE.
func (a *API) createApplication(c echo.Context) error {
	var req createApplicationRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	name, err := checkName("name", req.Name)
	if err != nil {
		return err
	}
	if len(req.RedirectURIs) == 0 {
		return invalid("redirect_uris", "redirect_uris needs at least one URI")
	}
	if err := checkURIs("redirect_uris", req.RedirectURIs, req.Public); err != nil {
		return err
	}
	if err := checkURIs("post_logout_redirect_uris", req.PostLogoutRedirectURIs, req.Public); err != nil {
		return err
	}
	if req.BackchannelLogoutURI != "" {
		if err := checkURI("backchannel_logout_uri", req.BackchannelLogoutURI, false); err != nil {
			return err
		}
		if u, _ := url.Parse(req.BackchannelLogoutURI); u.RawQuery != "" {
			// The logout token is POSTed as a form; a query would be ambiguous.
			return invalid("backchannel_logout_uri", "backchannel_logout_uri must not carry a query")
		}
	}
	alg := req.IDTokenSignedResponseAlg
	switch alg {
	case "":
		alg = "RS256"
	case "RS256", "ES256":
	default:
		return invalid("id_token_signed_response_alg", `id_token_signed_response_alg must be "RS256" or "ES256"`)
	}
	app := store.Application{
		ID:                     store.NewID(store.PrefixApplication),
		Name:                   name,
		Public:                 req.Public,
		RedirectURIs:           req.RedirectURIs,
		PostLogoutRedirectURIs: req.PostLogoutRedirectURIs,
		BackchannelLogoutURI:   req.BackchannelLogoutURI,
		IDTokenSigningAlg:      alg,
	}
	var secret string
	if !req.Public {
		secret = secrets.NewToken(ClientSecretPrefix)
		app.SecretHash = secrets.HashToken(secret)
	}
	app, err = a.store.CreateApplication(c.Request().Context(), app)
	if err != nil {
		return fmt.Errorf("create application: %w", err)
	}
	out := applicationJSON{
		ID: app.ID, ClientID: app.ID, Name: app.Name, RedirectURIs: app.RedirectURIs,
		PostLogoutRedirectURIs: app.PostLogoutRedirectURIs, Public: app.Public,
		IDTokenSignedResponseAlg: app.IDTokenSigningAlg,
	}
	if out.PostLogoutRedirectURIs == nil {
		out.PostLogoutRedirectURIs = []string{}
	}
	if secret != "" {
		out.ClientSecret = &secret
	}
	if app.BackchannelLogoutURI != "" {
		out.BackchannelLogoutURI = &app.BackchannelLogoutURI
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, out)
}

func checkURIs(field string, uris []string, public bool) error {
	if len(uris) > maxRedirectURIs {
		return invalid(field, "%s holds at most %d URIs", field, maxRedirectURIs)
	}
	seen := make(map[string]bool, len(uris))
	for i, u := range uris {
		f := fmt.Sprintf("%s[%d]", field, i)
		if seen[u] {
			return invalid(f, "%s: %s is listed twice", f, u)
		}
		seen[u] = true
		if err := checkURI(f, u, public); err != nil {
			return err
		}
	}
	return nil
}

// checkURI accepts absolute https URIs, http only on loopback (local
// development, RFC 8252 native apps), and private-use schemes for public
// (native) clients. No fragments (RFC 6749 §3.1.2).
func checkURI(field, raw string, public bool) error {
	if len(raw) > maxURILen {
		return invalid(field, "%s is longer than %d characters", field, maxURILen)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return invalid(field, "%s must be an absolute URI", field)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return invalid(field, "%s must not contain a fragment", field)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return invalid(field, "%s has no host", field)
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return invalid(field, "%s must use https (http is allowed for localhost only)", field)
		}
	default:
		if !public || !strings.Contains(u.Scheme, ".") {
			return invalid(field, "%s: custom schemes are for public (native) clients and must be reverse-DNS, like com.example.app", field)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
