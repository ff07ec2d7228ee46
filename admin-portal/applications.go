package adminportal

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// ClientSecretPrefix starts every application client secret.
const ClientSecretPrefix = "idb_cs"

// Bounds of an application's URI lists.
const (
	maxRedirectURIs = 20
	maxURILen       = 2000
)

// ApplicationCache is a cache of applications that must forget one when
// it changes. The broker's (*broker.Provider, ForgetApplication) is the
// one that matters: without the call, the node that served a PATCH or
// DELETE would keep the old copy until its cache TTL ends.
type ApplicationCache interface {
	ForgetApplication(id string)
}

// Bounds of an application's token lifetimes, in seconds; 0 means the
// broker default (access 10 min, id 1 h, refresh 30 days).
const (
	minTokenTTL   = 60
	maxAccessTTL  = 24 * 60 * 60
	maxIDTokenTTL = 24 * 60 * 60
	maxRefreshTTL = 365 * 24 * 60 * 60
	minRefreshTTL = 5 * 60
)

// mountApplications registers the application calls of contract section
// 4. Applications are the vendor's own and shared by every tenant, so no
// tenant is resolved; and for the same reason they leave no audit rows
// (audit rows are tenant-scoped and hash-chained per tenant): changes are
// logged with the operator's key id instead.
func (a *API) mountApplications(g *echo.Group) {
	g.POST("/applications", a.createApplication)
	getAndHead(g, "/applications", a.listApplications)
	getAndHead(g, "/applications/:app", a.getApplication)
	g.PATCH("/applications/:app", a.updateApplication)
	g.DELETE("/applications/:app", a.deleteApplication)
	g.POST("/applications/:app/secret", a.rotateApplicationSecret)
	g.DELETE("/applications/:app/secret/previous", a.endApplicationSecretOverlap)
}

type createApplicationRequest struct {
	Name                     string   `json:"name"`
	RedirectURIs             []string `json:"redirect_uris"`
	PostLogoutRedirectURIs   []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI     string   `json:"backchannel_logout_uri"`
	InitiateLoginURI         string   `json:"initiate_login_uri"`
	Public                   bool     `json:"public"`
	IDTokenSignedResponseAlg string   `json:"id_token_signed_response_alg"`
	// AccessTokenSignedResponseAlg: "" signs access tokens like id_tokens.
	AccessTokenSignedResponseAlg string `json:"access_token_signed_response_alg"`
	tokenLifetimes
	// RefreshTokenReuseIntervalSeconds: 0 (the default) is strict rotation.
	RefreshTokenReuseIntervalSeconds *int64 `json:"refresh_token_reuse_interval_seconds"`
}

// reuseInterval checks refresh_token_reuse_interval_seconds (nil when not
// given) and returns it as a duration.
func reuseInterval(v *int64) (*time.Duration, error) {
	if v == nil {
		return nil, nil
	}
	if max := int64(store.MaxRefreshTokenReuseInterval / time.Second); *v < 0 || *v > max {
		return nil, invalid("refresh_token_reuse_interval_seconds",
			"refresh_token_reuse_interval_seconds must be from 0 (strict rotation, the default) to %d", max)
	}
	d := time.Duration(*v) * time.Second
	return &d, nil
}

// tokenLifetimes are the per-application lifetimes, in seconds, accepted
// on POST and PATCH; 0 sets the broker default again.
type tokenLifetimes struct {
	AccessTokenTTLSeconds  *int64 `json:"access_token_ttl_seconds"`
	IDTokenTTLSeconds      *int64 `json:"id_token_ttl_seconds"`
	RefreshTokenTTLSeconds *int64 `json:"refresh_token_ttl_seconds"`
}

// check validates the lifetimes given and returns them as durations (nil
// where not given).
func (l tokenLifetimes) check() (access, id, refresh *time.Duration, err error) {
	conv := func(field string, v *int64, min, max int64) (*time.Duration, error) {
		if v == nil {
			return nil, nil
		}
		if *v != 0 && (*v < min || *v > max) {
			return nil, invalid(field, "%s must be 0 (the default) or from %d to %d", field, min, max)
		}
		d := time.Duration(*v) * time.Second
		return &d, nil
	}
	if access, err = conv("access_token_ttl_seconds", l.AccessTokenTTLSeconds, minTokenTTL, maxAccessTTL); err != nil {
		return
	}
	if id, err = conv("id_token_ttl_seconds", l.IDTokenTTLSeconds, minTokenTTL, maxIDTokenTTL); err != nil {
		return
	}
	refresh, err = conv("refresh_token_ttl_seconds", l.RefreshTokenTTLSeconds, minRefreshTTL, maxRefreshTTL)
	return
}

// applicationJSON is an application as the API shows it. ClientSecret is
// set only in the answer to its creation: only its hash is kept.
type applicationJSON struct {
	ID                           string   `json:"id"`
	ClientID                     string   `json:"client_id"`
	ClientSecret                 *string  `json:"client_secret,omitempty"`
	Name                         string   `json:"name"`
	RedirectURIs                 []string `json:"redirect_uris"`
	PostLogoutRedirectURIs       []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI         *string  `json:"backchannel_logout_uri"`
	InitiateLoginURI             *string  `json:"initiate_login_uri"`
	Public                       bool     `json:"public"`
	IDTokenSignedResponseAlg     string   `json:"id_token_signed_response_alg"`
	AccessTokenSignedResponseAlg string   `json:"access_token_signed_response_alg"`
	AccessTokenTTLSeconds        *int64   `json:"access_token_ttl_seconds"` // null: the broker default
	IDTokenTTLSeconds            *int64   `json:"id_token_ttl_seconds"`
	RefreshTokenTTLSeconds       *int64   `json:"refresh_token_ttl_seconds"`
	// RefreshTokenReuseIntervalSeconds: how long a spent refresh token
	// still answers; 0 is strict rotation.
	RefreshTokenReuseIntervalSeconds int64 `json:"refresh_token_reuse_interval_seconds"`
	// PreviousSecretExpiresAt: until then, after a rotation, the replaced
	// client secret still authenticates the application; null otherwise.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

func toApplicationJSON(app store.Application) applicationJSON {
	secs := func(d time.Duration) *int64 {
		if d <= 0 {
			return nil
		}
		s := int64(d / time.Second)
		return &s
	}
	out := applicationJSON{
		ID: app.ID, ClientID: app.ID, Name: app.Name, RedirectURIs: app.RedirectURIs,
		PostLogoutRedirectURIs: app.PostLogoutRedirectURIs, Public: app.Public,
		IDTokenSignedResponseAlg:         app.IDTokenSigningAlg,
		AccessTokenSignedResponseAlg:     cmp.Or(app.AccessTokenSigningAlg, app.IDTokenSigningAlg),
		AccessTokenTTLSeconds:            secs(app.AccessTokenTTL),
		IDTokenTTLSeconds:                secs(app.IDTokenTTL),
		RefreshTokenTTLSeconds:           secs(app.RefreshTokenTTL),
		RefreshTokenReuseIntervalSeconds: int64(app.RefreshTokenReuseInterval / time.Second),
		CreatedAt:                        app.CreatedAt, UpdatedAt: app.UpdatedAt,
	}
	if out.RedirectURIs == nil {
		out.RedirectURIs = []string{}
	}
	if out.PostLogoutRedirectURIs == nil {
		out.PostLogoutRedirectURIs = []string{}
	}
	if app.BackchannelLogoutURI != "" {
		out.BackchannelLogoutURI = &app.BackchannelLogoutURI
	}
	if app.InitiateLoginURI != "" {
		out.InitiateLoginURI = &app.InitiateLoginURI
	}
	if exp := app.PreviousSecretExpiresAt; exp != nil && exp.After(time.Now()) {
		out.PreviousSecretExpiresAt = exp
	}
	return out
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
	if err := checkBackchannelURI(req.BackchannelLogoutURI, a.allowPrivate); err != nil {
		return err
	}
	if err := checkInitiateLoginURI(req.InitiateLoginURI); err != nil {
		return err
	}
	accessTTL, idTTL, refreshTTL, err := req.tokenLifetimes.check()
	if err != nil {
		return err
	}
	reuse, err := reuseInterval(req.RefreshTokenReuseIntervalSeconds)
	if err != nil {
		return err
	}
	alg := req.IDTokenSignedResponseAlg
	switch alg {
	case "":
		alg = "RS256"
	case "RS256", "ES256":
	default:
		return invalid("id_token_signed_response_alg", `id_token_signed_response_alg must be "RS256" or "ES256"`)
	}
	switch req.AccessTokenSignedResponseAlg {
	case "", "RS256", "ES256":
	default:
		return invalid("access_token_signed_response_alg", `access_token_signed_response_alg must be "RS256" or "ES256"`)
	}
	app := store.Application{
		ID:                     store.NewID(store.PrefixApplication),
		Name:                   name,
		Public:                 req.Public,
		RedirectURIs:           req.RedirectURIs,
		PostLogoutRedirectURIs: req.PostLogoutRedirectURIs,
		BackchannelLogoutURI:   req.BackchannelLogoutURI,
		InitiateLoginURI:       req.InitiateLoginURI,
		IDTokenSigningAlg:      alg,
		AccessTokenSigningAlg:  req.AccessTokenSignedResponseAlg,
	}
	for _, f := range []struct {
		dst *time.Duration
		src *time.Duration
	}{{&app.AccessTokenTTL, accessTTL}, {&app.IDTokenTTL, idTTL}, {&app.RefreshTokenTTL, refreshTTL}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if reuse != nil {
		app.RefreshTokenReuseInterval = *reuse
	}
	var secret string
	if !req.Public {
		secret = secrets.NewToken(ClientSecretPrefix)
		app.SecretHash = secrets.HashToken(secret)
	}
	err = a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		var err error
		if app, err = a.store.CreateApplication(ctx, app); err != nil {
			return fmt.Errorf("create application: %w", err)
		}
		return a.auditVendor(ctx, c, "application.created", applicationResource(app),
			map[string]any{"redirect_uris": app.RedirectURIs, "public": app.Public})
	})
	if err != nil {
		return err
	}
	out := toApplicationJSON(app)
	if secret != "" {
		out.ClientSecret = &secret
	}
	op, _ := operatorFrom(c.Request().Context())
	a.log.InfoContext(c.Request().Context(), "application created", "application_id", app.ID, "api_key_id", op.ID)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, out)
}

// checkBackchannelURI accepts "" (none) or an https (loopback http) URI
// without a query: the logout token is POSTed as a form, and a query
// would be ambiguous. Its host must not be a forbidden address
// (checkOutboundHost): loopback http is for development, where
// IDBROKER_ALLOW_PRIVATE_NETWORKS is set.
func checkBackchannelURI(uri string, allowPrivate bool) error {
	if uri == "" {
		return nil
	}
	if err := checkURI("backchannel_logout_uri", uri, false); err != nil {
		return err
	}
	u, _ := url.Parse(uri)
	if u.RawQuery != "" {
		return invalid("backchannel_logout_uri", "backchannel_logout_uri must not carry a query")
	}
	return checkOutboundHost("backchannel_logout_uri", u, allowPrivate)
}

// checkInitiateLoginURI accepts "" (none) or an https (loopback http) URI
// without a fragment, as OpenID Connect Core §4 and Dynamic Client
// Registration ask of initiate_login_uri. Unlike the back-channel URI the
// broker never calls it: the browser is sent there, as to a redirect URI,
// so a private host is no SSRF and is allowed. A query is kept: the
// broker adds iss and login_hint to it.
func checkInitiateLoginURI(uri string) error {
	if uri == "" {
		return nil
	}
	return checkURI("initiate_login_uri", uri, false)
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
// (native) clients. No fragments (RFC 6749 §3.1.2). Wildcards are
// refused rather than stored: URIs are compared exactly, so a "*" would
// never match and the operator would learn it only at the first sign-in.
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
	if strings.Contains(u.Host, "*") {
		return invalid(field, "%s: wildcards are not supported; URIs are matched exactly, so list each one", field)
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
