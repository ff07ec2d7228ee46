package connections

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// oidcConnector is one OIDC connection: a zitadel relying party built from
// the IdP's discovery document, with state, nonce and PKCE verifier kept
// server-side in the OnceCache rather than in the library's fixed-name
// cookies (which collide when two logins run in one browser).
type oidcConnector struct {
	reg     *Registry
	conn    store.Connection
	cfg     OIDCConfig
	rp      rp.RelyingParty
	mapping AttributeMapping
	// entraTenant is the Entra tenant id when the issuer is Entra ID:
	// users are then keyed by tid + oid, never by the mutable email.
	entraTenant string
}

type oidcPending struct {
	ConnectionID    string `json:"c"`
	BrokerRequestID string `json:"b"`
	Nonce           string `json:"n"`
	Verifier        string `json:"v"`
}

type nonceKey struct{}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// entraTenantOf returns the Entra tenant id in an Entra issuer, "" for
// another IdP, and an error for a multi-tenant Entra issuer (common,
// organizations, consumers), whose tokens any Entra tenant can mint.
func entraTenantOf(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return "", fmt.Errorf("%w: issuer: %v", ErrConfig, err)
	}
	if u.Host != "login.microsoftonline.com" && u.Host != "sts.windows.net" && !strings.HasSuffix(u.Host, ".microsoftonline.us") {
		return "", nil
	}
	seg := strings.Split(strings.Trim(u.Path, "/"), "/")[0]
	if !guidRE.MatchString(seg) {
		return "", fmt.Errorf("%w: Entra ID issuer must name the tenant id (https://login.microsoftonline.com/{tenant-id}/v2.0), not %q", ErrConfig, seg)
	}
	return strings.ToLower(seg), nil
}

func defaultOIDCPreset(issuer string) string {
	switch {
	case strings.HasPrefix(issuer, "https://accounts.google.com"):
		return PresetGoogle
	case strings.Contains(issuer, "microsoftonline"), strings.Contains(issuer, "sts.windows.net"):
		return PresetEntra
	case strings.Contains(issuer, ".okta.com"), strings.Contains(issuer, ".oktapreview.com"):
		return PresetOkta
	}
	return PresetGeneric
}

func newOIDCConnector(ctx context.Context, reg *Registry, conn store.Connection) (*oidcConnector, error) {
	cfg, err := DecodeOIDCConfig(conn.Config)
	if err != nil {
		return nil, err
	}
	secret := conn.Secrets[SecretClientSecret]
	if !cfg.Complete() || secret == "" {
		return nil, fmt.Errorf("%w: OIDC connection %s is incomplete (missing %s)", ErrConfig, conn.ID, strings.Join(oidcMissing(cfg, conn.Secrets), ", "))
	}
	tid, err := entraTenantOf(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	c := &oidcConnector{reg: reg, conn: conn, cfg: cfg, entraTenant: tid,
		mapping: cfg.AttributeMapping.resolve(defaultOIDCPreset(cfg.Issuer))}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c.rp, err = rp.NewRelyingPartyOIDC(dctx, cfg.Issuer, cfg.ClientID, secret,
		oidcRedirectURI(reg.cfg.Issuer, conn.ID), oidcScopes(cfg.Scopes),
		rp.WithHTTPClient(reg.cfg.HTTPClient),
		rp.WithVerifierOpts(
			rp.WithNonce(func(ctx context.Context) string { n, _ := ctx.Value(nonceKey{}).(string); return n }),
			rp.WithIssuedAtOffset(DefaultClockSkew),
		),
		rp.WithSigningAlgsFromDiscovery(),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: OIDC discovery of %s: %v", ErrUpstream, cfg.Issuer, err)
	}
	return c, nil
}

// Begin redirects to the IdP's authorization endpoint with state, nonce
// and an S256 PKCE challenge.
func (c *oidcConnector) Begin(ctx context.Context, w http.ResponseWriter, r *http.Request, req LoginRequest) error {
	state, nonce, verifier := randomToken(), randomToken(), randomToken()
	rec, _ := json.Marshal(oidcPending{ConnectionID: c.conn.ID, BrokerRequestID: req.RequestID, Nonce: nonce, Verifier: verifier})
	if err := c.reg.cfg.Once.Put(ctx, pendingKey("oidc", state), rec, c.reg.cfg.LoginTTL); err != nil {
		return fmt.Errorf("oidc: remember login: %w", err)
	}
	sum := sha256.Sum256([]byte(verifier))
	opts := []rp.AuthURLOpt{
		rp.WithCodeChallenge(base64.RawURLEncoding.EncodeToString(sum[:])),
		rp.AuthURLOpt(rp.WithURLParam("nonce", nonce)),
	}
	if req.LoginHint != "" {
		opts = append(opts, rp.AuthURLOpt(rp.WithURLParam("login_hint", req.LoginHint)))
	}
	if req.ForceAuthn {
		opts = append(opts, rp.WithPrompt(oidc.PromptLogin))
	}
	if c.cfg.HostedDomain != "" {
		opts = append(opts, rp.AuthURLOpt(rp.WithURLParam("hd", c.cfg.HostedDomain)))
	}
	http.Redirect(w, r, rp.AuthURL(state, c.rp, opts...), http.StatusFound)
	return nil
}

// Finish handles the callback: state, IdP error, code exchange with the
// PKCE verifier, id_token validation (signature, iss, aud, exp, nonce),
// then the userinfo merge.
func (c *oidcConnector) Finish(ctx context.Context, r *http.Request) (Result, error) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 128 {
		return Result{}, fmt.Errorf("%w: callback without a valid state", ErrRequestMismatch)
	}
	b, err := c.reg.cfg.Once.Take(ctx, pendingKey("oidc", state))
	if err != nil {
		if errors.Is(err, sessions.ErrNotFound) {
			return Result{}, fmt.Errorf("%w: state is unknown, expired or already used", ErrRequestMismatch)
		}
		return Result{}, fmt.Errorf("%w: login state: %v", ErrUpstream, err)
	}
	var rec oidcPending
	if json.Unmarshal(b, &rec) != nil || rec.ConnectionID != c.conn.ID {
		return Result{}, fmt.Errorf("%w: state belongs to another connection", ErrRequestMismatch)
	}
	res := Result{RequestID: rec.BrokerRequestID}
	if e := q.Get("error"); e != "" {
		return res, fmt.Errorf("%w: %s: %s", ErrIdPError, e, truncate(q.Get("error_description"), 300))
	}
	code := q.Get("code")
	if code == "" {
		return res, fmt.Errorf("%w: callback without a code", ErrMalformed)
	}
	ctx = context.WithValue(ctx, nonceKey{}, rec.Nonce)
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, code, c.rp, rp.WithCodeVerifier(rec.Verifier))
	if err != nil {
		return res, classifyOIDCError(err)
	}
	claims := attrs{}
	raw := map[string]any{}
	for k, v := range tokens.IDTokenClaims.Claims {
		raw[k] = v
		claims[k] = claimStrings(v)
	}
	// Userinfo can carry what the id_token left out (groups, names); it
	// never overrides the id_token's subject, issuer or tenant.
	if c.rp.UserinfoEndpoint() != "" && tokens.AccessToken != "" {
		info, err := rp.Userinfo[*oidc.UserInfo](ctx, tokens.AccessToken, tokens.TokenType, tokens.IDTokenClaims.Subject, c.rp)
		if err != nil {
			return res, fmt.Errorf("%w: userinfo: %v", ErrUpstream, err)
		}
		for k, v := range info.Claims {
			if _, ok := raw[k]; !ok {
				raw[k] = v
				claims[k] = claimStrings(v)
			}
		}
	}
	p, err := c.profile(ctx, tokens.IDTokenClaims, claims, raw)
	if err != nil {
		return res, err
	}
	res.Profile = p
	return res, nil
}

func (c *oidcConnector) profile(ctx context.Context, idt *oidc.IDTokenClaims, claims attrs, raw map[string]any) (Profile, error) {
	p := Profile{TenantID: c.conn.TenantID, ConnectionID: c.conn.ID, ConnectionType: store.ConnectionOIDC, Raw: raw}
	p.IdPSubject = idt.Subject
	if len(c.mapping.Subject) > 0 {
		p.IdPSubject = claims.first(c.mapping.Subject)
	}
	var verified *bool
	if v, ok := raw["email_verified"]; ok {
		b := v == true || v == "true"
		verified = &b
	}
	if c.entraTenant != "" {
		tid, oid := claims.first([]string{"tid"}), claims.first([]string{"oid"})
		if !strings.EqualFold(tid, c.entraTenant) {
			return Profile{}, mismatch(ErrProfile, "Entra tid", tid, c.entraTenant)
		}
		if oid == "" {
			return Profile{}, fmt.Errorf("%w: Entra id_token has no oid claim", ErrProfile)
		}
		// nOAuth: the email claim of an Entra user is editable by the
		// user's own admin and unverified; the key is tid + oid.
		p.IdPSubject = strings.ToLower(tid) + ":" + oid
		verified = nil
	}
	if c.cfg.HostedDomain != "" {
		if hd := claims.first([]string{"hd"}); !strings.EqualFold(hd, c.cfg.HostedDomain) {
			return Profile{}, mismatch(ErrProfile, "Google hd", hd, c.cfg.HostedDomain)
		}
	}
	c.mapping.fill(&p, claims)
	if verified != nil && !*verified {
		return Profile{}, fmt.Errorf("%w: the IdP says email %q is not verified", ErrProfile, p.Email)
	}
	return c.reg.finishProfile(ctx, p, c.cfg.AllowAnyEmailDomain, verified)
}

func classifyOIDCError(err error) error {
	switch {
	case errors.Is(err, oidc.ErrNonceInvalid):
		return fmt.Errorf("%w: %v", ErrRequestMismatch, err)
	case errors.Is(err, oidc.ErrIssuerInvalid):
		return fmt.Errorf("%w: %v", ErrIssuerMismatch, err)
	case errors.Is(err, oidc.ErrAudience), errors.Is(err, oidc.ErrAzpInvalid), errors.Is(err, oidc.ErrAzpMissing):
		return fmt.Errorf("%w: %v", ErrAudienceMismatch, err)
	case errors.Is(err, oidc.ErrExpired), errors.Is(err, oidc.ErrIatToOld):
		return fmt.Errorf("%w: %v", ErrExpired, err)
	case errors.Is(err, oidc.ErrIatInFuture):
		return fmt.Errorf("%w: %v", ErrNotYetValid, err)
	case errors.Is(err, oidc.ErrSignatureInvalid), errors.Is(err, oidc.ErrSignatureMissing),
		errors.Is(err, oidc.ErrSignatureUnsupportedAlg), errors.Is(err, oidc.ErrSignatureInvalidPayload),
		errors.Is(err, oidc.ErrAtHash):
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return fmt.Errorf("%w: code exchange: %v", ErrUpstream, err)
}

// claimStrings flattens a claim value to strings for mapping.
func claimStrings(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case bool, float64:
		return []string{fmt.Sprint(t)}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
