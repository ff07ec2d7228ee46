package oidc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// oidcConnector is one OIDC connection: a zitadel relying party built from
// the IdP's discovery document, with state, nonce and PKCE verifier kept
// server-side in the OnceCache rather than in the library's fixed-name
// cookies (which collide when two logins run in one browser).
type oidcConnector struct {
	deps    connections.Deps
	conn    store.Connection
	cfg     Config
	rp      rp.RelyingParty
	mapping connections.AttributeMapping
	// entraTenant is the Entra tenant id when the issuer is Entra ID:
	// users are then keyed by tid + oid, never by the mutable email.
	entraTenant string
	// issParam is the IdP's discovery saying that its authorization
	// responses carry iss (RFC 9207): one without it is then refused.
	issParam bool
	// jwksURI is the discovery document's jwks_uri, named when the keys
	// cannot be read (the library keeps it to itself).
	jwksURI string
}

type oidcPending struct {
	ConnectionID    string `json:"c"`
	BrokerRequestID string `json:"b"`
	Nonce           string `json:"n"`
	Verifier        string `json:"v"`
}

type nonceKey struct{}

// issuedAtSkew is how far in the future an id_token's iat may be, and
// how long after its exp it is still accepted (see GetExpiration).
const issuedAtSkew = 90 * time.Second

// randomToken is a fresh 256-bit handle: state, nonce and PKCE verifier
// (43 URL-safe characters, as RFC 7636 allows).
func randomToken() string { return secrets.NewToken("") }

// pendingKey is the OnceCache key of a started login, by its state.
func pendingKey(state string) string { return "login:oidc:" + state }

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// errEntraDomain is an Entra issuer that names the tenant by one of its
// domains (https://login.microsoftonline.com/contoso.com/v2.0), as Entra
// accepts in URLs: its discovery document names the tenant id, which
// open then tells the admin to set.
var errEntraDomain = errors.New("oidc: the Entra ID issuer names a domain, not the tenant id")

// entraTenantOf returns the Entra tenant id in an Entra issuer, "" for
// another IdP, and an error for a multi-tenant Entra issuer (common,
// organizations, consumers), whose tokens any Entra tenant can mint, or
// errEntraDomain.
func entraTenantOf(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return "", connections.Invalid("issuer", "issuer is not a URL")
	}
	if !entraHosts[strings.ToLower(u.Host)] && !strings.HasSuffix(u.Host, ".microsoftonline.us") {
		return "", nil
	}
	seg := strings.Split(strings.Trim(u.Path, "/"), "/")[0]
	switch {
	case guidRE.MatchString(seg):
		return strings.ToLower(seg), nil
	case strings.Contains(seg, "."):
		return "", errEntraDomain
	}
	return "", entraNeedsTenantID(seg)
}

// entraHosts are the hosts of Entra ID's issuers, in the global cloud and
// in the one operated by 21Vianet in China (its current and its older
// host); Azure Government's are under .microsoftonline.us.
var entraHosts = map[string]bool{
	"login.microsoftonline.com": true, "sts.windows.net": true,
	"login.partner.microsoftonline.cn": true, "login.chinacloudapi.cn": true, "sts.chinacloudapi.cn": true,
}

func entraNeedsTenantID(seg string) error {
	return connections.Invalid("issuer", "Entra ID issuer must name the tenant id (https://login.microsoftonline.com/{tenant-id}/v2.0), not %q", seg)
}

func defaultPreset(issuer string) string {
	switch {
	case strings.HasPrefix(issuer, "https://accounts.google.com"):
		return connections.PresetGoogle
	case strings.Contains(issuer, "microsoftonline"), strings.Contains(issuer, "sts.windows.net"), strings.Contains(issuer, "chinacloudapi.cn"):
		return connections.PresetEntra
	case strings.Contains(issuer, ".okta.com"), strings.Contains(issuer, ".oktapreview.com"):
		return connections.PresetOkta
	}
	return connections.PresetGeneric
}

// open builds the connector of a complete connection, reading the IdP's
// discovery document.
func open(ctx context.Context, deps connections.Deps, conn store.Connection) (*oidcConnector, error) {
	cfg, err := DecodeConfig(conn.Config)
	if err != nil {
		return nil, err
	}
	secret := conn.Secrets[SecretClientSecret]
	if m := missing(cfg, conn.Secrets); len(m) > 0 {
		return nil, fmt.Errorf("%w: OIDC connection %s is incomplete (missing %s)", connections.ErrConfig, conn.ID, strings.Join(m, ", "))
	}
	tid, err := entraTenantOf(cfg.Issuer)
	domainNamed := errors.Is(err, errEntraDomain)
	if err != nil && !domainNamed {
		return nil, err
	}
	c := &oidcConnector{deps: deps, conn: conn, cfg: cfg, entraTenant: tid,
		mapping: cfg.AttributeMapping.Resolve(defaultPreset(cfg.Issuer))}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// The library reads the discovery document but keeps none of RFC
	// 9207's field: the tap reads it on the way.
	auth := &clientAuthTransport{next: deps.HTTPClient.Transport}
	tap := &discoveryTap{next: jsonAsTextTransport{next: auth}}
	hc := *deps.HTTPClient
	hc.Transport = tap
	verifierOpts := []rp.VerifierOption{
		rp.WithNonce(func(ctx context.Context) string { n, _ := ctx.Value(nonceKey{}).(string); return n }),
		rp.WithIssuedAtOffset(issuedAtSkew),
	}
	if strings.TrimSuffix(cfg.Issuer, "/") == googleIssuer {
		verifierOpts = append(verifierOpts, rp.WithISSVerifier(googleISS))
	}
	relyingParty := func(issuer string) (rp.RelyingParty, error) {
		return rp.NewRelyingPartyOIDC(dctx, issuer, cfg.ClientID, secret,
			deps.URL(conn, "callback"), scopes(cfg.Scopes),
			rp.WithHTTPClient(&hc),
			// The header; clientAuthTransport changes to the form when
			// the IdP asks (oauth2's own detection sends the code twice).
			rp.WithAuthStyle(oauth2.AuthStyleInHeader),
			rp.WithVerifierOpts(verifierOpts...),
			rp.WithSigningAlgsFromDiscovery(),
		)
	}
	c.rp, err = relyingParty(cfg.Issuer)
	if errors.Is(err, oidc.ErrIssuerInvalid) {
		// Issuers compare exactly, and some end in a slash (Auth0's
		// https://tenant.auth0.com/) where most do not; both forms read
		// the same discovery document. An admin who typed the other
		// form gets the one the IdP names, and id_tokens are held to it.
		if alt, altErr := relyingParty(otherSlash(cfg.Issuer)); altErr == nil {
			c.rp, err = alt, nil
		}
	}
	if errors.Is(err, oidc.ErrIssuerInvalid) {
		// The IdP answered; the setting is wrong. Say what it should be.
		return nil, connections.Invalid("issuer", "the OIDC discovery document at %s names the issuer %s, not %q: set the issuer to exactly that",
			discoveryURL(cfg.Issuer), documentIssuer(dctx, deps, cfg.Issuer), cfg.Issuer)
	}
	if err != nil {
		return nil, connections.Unreachable("issuer", "read the OIDC discovery document at", discoveryURL(cfg.Issuer), discoveryCause(err))
	}
	if domainNamed {
		// Entra's documents name the tenant id, so discovery refused the
		// domain above; should one not, no sign-in goes without a tenant
		// to hold its tokens to.
		return nil, connections.Invalid("issuer", "Entra ID issuer must name the tenant id (https://login.microsoftonline.com/{tenant-id}/v2.0), not one of its domains")
	}
	c.issParam = tap.issParam.Load()
	if u, ok := tap.jwksURI.Load().(string); ok {
		c.jwksURI = u
	}
	auth.tokenURL.Store(c.rp.OAuthConfig().Endpoint.TokenURL)
	if methods := tap.authMethods.Load(); methods != nil {
		// Discovery names the methods (the default, when it does not, is
		// client_secret_basic): start with the form when the header is
		// not among them.
		m := methods.([]string)
		auth.post.Store(!slices.Contains(m, "client_secret_basic") && slices.Contains(m, "client_secret_post"))
	}
	if v := c.rp.IDTokenVerifier(); v != nil && c.jwksURI != "" {
		v.KeySet = &anyKidKeySet{next: v.KeySet, jwksURI: c.jwksURI, client: &hc}
	}
	return c, nil
}

// googleIssuer is Google's issuer as its discovery document names it.
const googleIssuer = "https://accounts.google.com"

// googleISS holds a Google id_token's iss to Google's issuer, in either of
// the two forms Google documents its id_tokens to carry: the URL, or the
// bare host "accounts.google.com" that some of its token endpoints still
// issue. Both name the same issuer; any other is refused.
func googleISS(iss string) error {
	if iss == "accounts.google.com" {
		return nil
	}
	return oidc.DefaultISSVerifier(googleIssuer)(iss)
}

// discoveryTap passes requests through to next and notes, from the last
// discovery document it sees, whether the IdP advertises
// authorization_response_iss_parameter_supported (RFC 9207 §3), and
// where its keys are.
type discoveryTap struct {
	next     http.RoundTripper
	issParam atomic.Bool
	jwksURI  atomic.Value // string
	// authMethods is token_endpoint_auth_methods_supported, when given.
	authMethods atomic.Value // []string
}

func (t *discoveryTap) RoundTrip(r *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasSuffix(r.URL.Path, oidc.DiscoveryEndpoint) {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var doc struct {
		IssParam    bool     `json:"authorization_response_iss_parameter_supported"`
		JWKSURI     string   `json:"jwks_uri"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	_ = json.Unmarshal(b, &doc) // the library reports a document it cannot read
	t.issParam.Store(doc.IssParam)
	t.jwksURI.Store(doc.JWKSURI)
	if len(doc.AuthMethods) > 0 {
		t.authMethods.Store(doc.AuthMethods)
	}
	return resp, nil
}

// checkIss holds the authorization response in q to RFC 9207: an iss
// that is not the connection's issuer is a response of another IdP,
// passed off as this one's (a mix-up attack, RFC 9700 §4.4), and an
// IdP that advertises iss and sends none is not to be believed either.
// An IdP that neither advertises nor sends it is taken as before.
func (c *oidcConnector) checkIss(q url.Values) error {
	want := c.rp.Issuer()
	iss, sent := q["iss"]
	switch {
	case sent && (len(iss) != 1 || iss[0] != want):
		return fmt.Errorf("%w: the authorization response names the issuer %q, not the connection's %q: it may come from another IdP passed off as this one (mix-up, RFC 9207); if the IdP's issuer has changed, update the connection's issuer",
			connections.ErrIssuerMismatch, connections.OneLine(strings.Join(iss, ", "), 300), want)
	case !sent && c.issParam:
		return fmt.Errorf("%w: the IdP's discovery document says its authorization responses carry iss (authorization_response_iss_parameter_supported, RFC 9207), and this one has none",
			connections.ErrIssuerMismatch)
	}
	return nil
}

// documentIssuer is the issuer the discovery document of issuer names,
// quoted, or "another one" when it cannot be read again.
func documentIssuer(ctx context.Context, deps connections.Deps, issuer string) string {
	b, err := safehttp.Get(ctx, deps.HTTPClient, discoveryURL(issuer), 1<<20)
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err != nil || json.Unmarshal(b, &doc) != nil || doc.Issuer == "" {
		return "another one"
	}
	return strconv.Quote(connections.OneLine(doc.Issuer, 300))
}

// otherSlash is issuer with its trailing slash removed, or added when it
// has none.
func otherSlash(issuer string) string {
	if strings.HasSuffix(issuer, "/") {
		return strings.TrimRight(issuer, "/")
	}
	return issuer + "/"
}

// Begin redirects to the IdP's authorization endpoint with state, nonce
// and an S256 PKCE challenge.
func (c *oidcConnector) Begin(ctx context.Context, w http.ResponseWriter, r *http.Request, req connections.LoginRequest) error {
	state, nonce, verifier := randomToken(), randomToken(), randomToken()
	rec, _ := json.Marshal(oidcPending{ConnectionID: c.conn.ID, BrokerRequestID: req.RequestID, Nonce: nonce, Verifier: verifier})
	if err := c.deps.Once.Put(ctx, pendingKey(state), rec, c.deps.LoginTTL); err != nil {
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
		maxAge := int64(0)
		if req.MaxAge != nil {
			maxAge = *req.MaxAge
		}
		for k, v := range forcedAuthParams(c.cfg.Issuer, maxAge) {
			opts = append(opts, rp.AuthURLOpt(rp.WithURLParam(k, v)))
		}
	}
	if c.cfg.HostedDomain != "" {
		opts = append(opts, rp.AuthURLOpt(rp.WithURLParam("hd", c.cfg.HostedDomain)))
	}
	http.Redirect(w, r, rp.AuthURL(state, c.rp, opts...), http.StatusFound)
	return nil
}

// forcedAuthParams are the authorization parameters that make the IdP
// authenticate the user again (the application asked prompt=login or
// max_age). max_age is always sent: the IdP must then say auth_time, which
// the broker passes on to the application. prompt=login is not sent to
// Google, whose authorization endpoint answers any prompt value but none,
// consent and select_account with an error page the user cannot get past;
// Google honours max_age.
func forcedAuthParams(issuer string, maxAge int64) map[string]string {
	p := map[string]string{"max_age": strconv.FormatInt(maxAge, 10)}
	if strings.TrimSuffix(issuer, "/") != googleIssuer {
		p["prompt"] = oidc.PromptLogin
	}
	return p
}

// Finish handles the callback: state, IdP error, code exchange with the
// PKCE verifier, id_token validation (signature, iss, aud, exp, nonce),
// then the userinfo merge.
func (c *oidcConnector) Finish(ctx context.Context, r *http.Request) (connections.Result, error) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 128 {
		return connections.Result{}, fmt.Errorf("%w: callback without a valid state", connections.ErrRequestMismatch)
	}
	b, err := c.deps.Once.Take(ctx, pendingKey(state))
	if err != nil {
		if errors.Is(err, sessions.ErrNotFound) {
			return connections.Result{}, fmt.Errorf("%w: state is unknown, expired or already used", connections.ErrRequestMismatch)
		}
		return connections.Result{}, fmt.Errorf("%w: login state: %w", connections.ErrUnavailable, err)
	}
	var rec oidcPending
	if json.Unmarshal(b, &rec) != nil || rec.ConnectionID != c.conn.ID {
		return connections.Result{}, fmt.Errorf("%w: state belongs to another connection", connections.ErrRequestMismatch)
	}
	res := connections.Result{RequestID: rec.BrokerRequestID}
	// RFC 9207 §2.4: errors too are checked, before anything else of
	// the response is believed.
	if err := c.checkIss(q); err != nil {
		return res, err
	}
	if e := q.Get("error"); e != "" {
		msg := connections.OneLine(e, 100)
		if d := connections.OneLine(q.Get("error_description"), 300); d != "" {
			msg += ": " + d
		}
		return res, fmt.Errorf("%w: %s", connections.ErrIdPError, msg)
	}
	code := q.Get("code")
	if code == "" {
		return res, fmt.Errorf("%w: callback without a code", connections.ErrMalformed)
	}
	ctx = context.WithValue(ctx, nonceKey{}, rec.Nonce)
	tokens, idToken, err := c.exchange(ctx, code, rec.Verifier)
	if err != nil {
		if why := c.explainIDToken(err, idToken); why != nil {
			return res, why
		}
		return res, classifyOIDCError(err, c.rp.OAuthConfig().Endpoint.TokenURL, c.jwksURI)
	}
	claims := connections.Attrs{}
	raw := map[string]any{}
	for k, v := range tokens.IDTokenClaims.Claims {
		raw[k] = v
		claims[k] = claimStrings(v)
	}
	// Userinfo can carry what the id_token left out (groups, names); it
	// never overrides the id_token's subject, issuer or tenant.
	var infoErr error
	if c.rp.UserinfoEndpoint() != "" && tokens.AccessToken != "" {
		info, err := rp.Userinfo[*userInfo](ctx, tokens.AccessToken, tokens.TokenType, tokens.IDTokenClaims.Subject, c.rp)
		switch {
		case errors.Is(err, rp.ErrUserInfoSubNotMatching):
			// Reached and answered, for someone else: nothing of it may
			// be merged into this user's profile.
			return res, fmt.Errorf("%w: the userinfo endpoint %s answered for another subject than the id_token's %q",
				connections.ErrProfile, c.rp.UserinfoEndpoint(), tokens.IDTokenClaims.Subject)
		case err != nil:
			// The id_token is the authentication; userinfo only adds to
			// it. An endpoint this access token does not open (Entra's,
			// when the connection's scopes name another API) or one that
			// is down must not fail a sign-in the id_token answers.
			infoErr = connections.Unreachable("", "read the userinfo endpoint", c.rp.UserinfoEndpoint(), err)
		default:
			for k, v := range info.Claims {
				if _, ok := raw[k]; !ok {
					raw[k] = v
					claims[k] = claimStrings(v)
				}
			}
		}
	}
	p, err := c.profile(ctx, tokens.IDTokenClaims.IDTokenClaims, claims, raw)
	if err != nil {
		// The claims, verified but refused by a profile rule (a domain
		// not verified, no email), are what the tenant admin's test
		// sign-in shows as what the IdP sent; a failed sign-in's profile
		// is never provisioned.
		res.Profile = connections.Profile{Raw: raw}
		if infoErr != nil {
			// What is missing may have been in the answer not read.
			return res, fmt.Errorf("%w (the userinfo endpoint, which may hold it, was not read: %v)", err, infoErr)
		}
		return res, err
	}
	if infoErr != nil {
		c.deps.Logger.WarnContext(ctx, "oidc: signed in from the id_token alone", "connection", c.conn.ID, "err", infoErr)
	}
	res.Profile = p
	return res, nil
}

func (c *oidcConnector) profile(ctx context.Context, idt *oidc.IDTokenClaims, claims connections.Attrs, raw map[string]any) (connections.Profile, error) {
	p := connections.Profile{TenantID: c.conn.TenantID, ConnectionID: c.conn.ID, ConnectionType: c.conn.Type, Raw: raw}
	p.IdPSubject = idt.Subject
	if idt.AuthTime != 0 {
		p.AuthTime = idt.GetAuthTime()
	}
	if len(c.mapping.Subject) > 0 {
		p.IdPSubject = claims.First(c.mapping.Subject)
	}
	var verified *bool
	if v, ok := raw["email_verified"]; ok && v != nil { // null: the IdP does not know
		s, _ := v.(string)
		b := v == true || strings.EqualFold(s, "true")
		verified = &b
	}
	if c.entraTenant != "" {
		tid, oid := claims.First([]string{"tid"}), claims.First([]string{"oid"})
		if !strings.EqualFold(tid, c.entraTenant) {
			return connections.Profile{}, connections.Mismatch(connections.ErrProfile, "Entra tid", tid, c.entraTenant)
		}
		if oid == "" {
			return connections.Profile{}, fmt.Errorf("%w: Entra id_token has no oid claim", connections.ErrProfile)
		}
		// nOAuth: the email claim of an Entra user is editable by the
		// user's own admin and unverified; the key is tid + oid.
		p.IdPSubject = strings.ToLower(tid) + ":" + oid
		// The oid is never another person's: whoever holds another one
		// of this tenant is someone else, whatever their email.
		p.KeyScheme, p.PersonAttribute = strings.ToLower(tid)+":", "oid"
		verified = nil
	}
	if c.cfg.HostedDomain != "" {
		if hd := claims.First([]string{"hd"}); !strings.EqualFold(hd, c.cfg.HostedDomain) {
			return connections.Profile{}, connections.Mismatch(connections.ErrProfile, "Google hd", hd, c.cfg.HostedDomain)
		}
	}
	c.mapping.Fill(&p, claims)
	if verified != nil && !*verified {
		return connections.Profile{}, fmt.Errorf("%w: the IdP says email %s is not verified (email_verified is false): have the user verify it at the IdP, or the IdP's admin mark it verified", connections.ErrProfile, shown(p.Email))
	}
	return c.deps.Profiles.CheckProfile(ctx, p, connections.ProfileRules{AnyEmailDomain: c.cfg.AllowAnyEmailDomain, EmailVerified: verified})
}

// idTokenClaims and userInfo are the library's, read with the string
// forms of its boolean claims in any letter case: it takes "true" and
// "false" (as Cognito sends them) but refuses "True", which other IdPs
// send. Claims keeps what the IdP sent.
type (
	idTokenClaims struct{ *oidc.IDTokenClaims }
	userInfo      struct{ *oidc.UserInfo }
)

// GetExpiration is exp as the library's check needs it to apply the
// same allowance as to iat, the other way. The library tests
// now + offset < exp with the one offset it has (issuedAtSkew, meant for
// an iat ahead of our clock), which took 90 s off every id_token's life:
// one with 90 s or less left (an IdP issuing one-minute id_tokens, or
// one whose clock is four minutes slow with five-minute ones) was refused
// as expired. Moved by twice the skew, the test is now < exp + skew.
// Nothing else reads it: the claims keep exp as sent.
func (c *idTokenClaims) GetExpiration() time.Time {
	return c.IDTokenClaims.GetExpiration().Add(2 * issuedAtSkew)
}

func (c *idTokenClaims) UnmarshalJSON(b []byte) error {
	c.IDTokenClaims = new(oidc.IDTokenClaims)
	return unmarshalLenient(b, c.IDTokenClaims, &c.IDTokenClaims.Claims, timeClaims)
}

func (u *userInfo) UnmarshalJSON(b []byte) error {
	u.UserInfo = new(oidc.UserInfo)
	// UserInfo has no times the checks rest on: none is read as one.
	return unmarshalLenient(b, u.UserInfo, &u.UserInfo.Claims, nil)
}

// lenientBools are the claims the library reads as booleans.
var lenientBools = []string{"email_verified", "phone_number_verified"}

// optionalClaims are the standard claims the library types that the
// broker does not rely on, each with a check that the library can read
// it. One it cannot (a locale of "English", a picture given as an
// object, a phone number or preferred_username given as a number, an acr
// number, an address string) is left out of what the library reads,
// rather than failing the whole sign-in as a malformed answer; the
// claims keep it as sent. The claims the checks depend on (iss, sub,
// aud, exp, iat, auth_time, nonce, azp, at_hash) and email_verified are
// never left out.
var optionalClaims = map[string]func(json.RawMessage) bool{
	"acr": readsAs[string], "amr": readsAs[oidc.AuthenticationMethodsReferences], "act": readsAs[oidc.ActorClaims],
	"client_id": readsAs[string], "jti": readsAs[string], "sid": readsAs[string], "c_hash": readsAs[string], "nbf": readsAs[oidc.Time],
	"name": readsAs[string], "given_name": readsAs[string], "family_name": readsAs[string], "middle_name": readsAs[string],
	"nickname": readsAs[string], "profile": readsAs[string], "picture": readsAs[string], "website": readsAs[string],
	"gender": readsAs[oidc.Gender], "birthdate": readsAs[string], "zoneinfo": readsAs[string], "locale": readsAs[oidc.Locale],
	"updated_at": readsAs[oidc.Time], "preferred_username": readsAs[string], "email": readsAs[string],
	"phone_number": readsAs[string], "address": readsAs[oidc.UserInfoAddress],
}

// timeClaims are the times the id_token's checks rest on. The library
// reads a JSON number (a fraction dropped) or an RFC 3339 string; some
// IdPs send the number as a string of digits ("1700000000", auth_time
// most often), which means the same and is read as that number.
var timeClaims = []string{"auth_time", "iat", "exp", "nbf"}

// maxTime bounds a time claim: 9999-12-31. Beyond it a number is no
// time in seconds (milliseconds, a mistake) and the library, converting
// it to an int64, would make up one.
const maxTime = 253402300799

// readTime checks a time claim. It returns the JSON number to read in
// place of a string of digits (with an optional fraction), nil when raw
// is for the library to read as sent, and an error for a number out of
// range or a string that is neither digits nor an RFC 3339 date.
func readTime(raw json.RawMessage) (json.RawMessage, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	inRange := func(f float64) error {
		if f < 0 || f > maxTime || f != f {
			return fmt.Errorf("%v is not a time in seconds since 1970", f)
		}
		return nil
	}
	switch x := v.(type) {
	case float64:
		return nil, inRange(x)
	case string:
		if t, err := time.Parse(time.RFC3339, x); err == nil {
			return nil, inRange(float64(t.Unix()))
		}
		if !isDecimal(x) {
			return nil, fmt.Errorf("%q is neither a number of seconds nor an RFC 3339 date", x)
		}
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return nil, err
		}
		return json.RawMessage(x), inRange(f)
	}
	return nil, nil // null (no time) and other types: the library's to refuse
}

// isDecimal reports whether s is digits with an optional fraction: a
// JSON number without sign or exponent, and never longer than a time.
func isDecimal(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	digits := func(d string) bool {
		for i := 0; i < len(d); i++ {
			if d[i] < '0' || d[i] > '9' {
				return false
			}
		}
		return d != ""
	}
	return len(whole) <= 12 && len(frac) <= 9 && digits(whole) && (!dot || digits(frac))
}

// readsAs reports whether raw decodes as a T.
func readsAs[T any](raw json.RawMessage) bool {
	var v T
	return json.Unmarshal(raw, &v) == nil
}

// unmarshalLenient decodes b into v after writing the string "true" or
// "false", in any letter case, of lenientBools as booleans, leaving out a
// null one (as if absent) and the optionalClaims the library cannot
// read, and writing the times given as strings of digits as numbers
// (refusing a time out of range); claims then gets every claim as sent.
func unmarshalLenient(b []byte, v any, claims *map[string]any, times []string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	fixed := b
	for _, name := range lenientBools {
		raw, ok := fields[name]
		if !ok {
			continue
		}
		if string(bytes.TrimSpace(raw)) == "null" {
			delete(fields, name)
			fixed = nil
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			continue
		}
		switch strings.ToLower(s) {
		case "true", "false":
			fields[name] = json.RawMessage(strings.ToLower(s))
			fixed = nil
		}
	}
	for _, name := range times {
		raw, ok := fields[name]
		if !ok {
			continue
		}
		num, err := readTime(raw)
		if err != nil {
			return fmt.Errorf("claim %s: %w", name, err)
		}
		if num != nil {
			fields[name] = num
			fixed = nil
		}
	}
	for name, ok := range optionalClaims {
		if raw, present := fields[name]; present && !ok(raw) {
			delete(fields, name)
			fixed = nil
		}
	}
	if fixed == nil {
		var err error
		if fixed, err = json.Marshal(fields); err != nil {
			return err
		}
	}
	if err := json.Unmarshal(fixed, v); err != nil {
		return err
	}
	if !bytes.Equal(fixed, b) {
		// What the IdP sent, for the admin and for mappings.
		var sent map[string]any
		if err := json.Unmarshal(b, &sent); err != nil {
			return err
		}
		if *claims == nil {
			*claims = make(map[string]any, len(sent))
		}
		for k, orig := range sent {
			(*claims)[k] = orig
		}
	}
	return nil
}

// classifyOIDCError names why the code exchange or the id_token failed,
// for the tenant admin: the IdP unreachable (token endpoint, JWKS), its
// answer unreadable, refused, or not valid for this connection.
func classifyOIDCError(err error, tokenURL, jwksURL string) error {
	// The library reports keys it could not fetch as an invalid
	// signature, which would send the admin after certificates.
	if strings.Contains(err.Error(), "unable to fetch key for signature validation") {
		if jwksURL == "" {
			jwksURL = "(the discovery document's jwks_uri)"
		}
		return connections.Unreachable("", "fetch the IdP's signing keys (JWKS) from", jwksURL, keysCause(err))
	}
	switch {
	case errors.Is(err, oidc.ErrNonceInvalid):
		return fmt.Errorf("%w: %v", connections.ErrRequestMismatch, err)
	case errors.Is(err, oidc.ErrIssuerInvalid):
		return fmt.Errorf("%w: %v", connections.ErrIssuerMismatch, err)
	case errors.Is(err, oidc.ErrAudience), errors.Is(err, oidc.ErrAzpInvalid), errors.Is(err, oidc.ErrAzpMissing):
		return fmt.Errorf("%w: %v", connections.ErrAudienceMismatch, err)
	case errors.Is(err, oidc.ErrExpired), errors.Is(err, oidc.ErrIatToOld):
		return fmt.Errorf("%w: %v", connections.ErrExpired, err)
	case errors.Is(err, oidc.ErrIatInFuture):
		return fmt.Errorf("%w: %v", connections.ErrNotYetValid, err)
	case errors.Is(err, oidc.ErrSignatureInvalid), errors.Is(err, oidc.ErrSignatureMissing),
		errors.Is(err, oidc.ErrSignatureUnsupportedAlg), errors.Is(err, oidc.ErrSignatureInvalidPayload),
		errors.Is(err, oidc.ErrAtHash):
		return fmt.Errorf("%w: %v", connections.ErrSignature, err)
	}
	// The token endpoint answered, with an OAuth error: the IdP is up,
	// and "check it is reachable" would send the admin the wrong way.
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" && re.ErrorCode != "server_error" && re.ErrorCode != "temporarily_unavailable" &&
		(re.Response == nil || re.Response.StatusCode < 500) {
		detail := re.ErrorCode
		if d := strings.TrimSpace(re.ErrorDescription); d != "" {
			detail += ": " + connections.OneLine(d, 300)
		}
		switch re.ErrorCode {
		case "invalid_client", "unauthorized_client":
			return fmt.Errorf("%w: the token endpoint %s refused the connection's client credentials (%s); check client_id and client_secret, and that the IdP accepts client_secret_basic or client_secret_post",
				connections.ErrConfig, tokenURL, detail)
		}
		return fmt.Errorf("%w: the token endpoint %s refused the code (%s)", connections.ErrIdPError, tokenURL, detail)
	}
	var ue *url.Error
	if errors.As(err, &ue) || errors.As(err, &re) {
		return connections.Unreachable("", "exchange the code at the token endpoint", tokenURL, err)
	}
	// The token endpoint answered 200, with something that is not a
	// usable token response: the IdP was reached, its answer is wrong.
	if errors.Is(err, rp.ErrMissingIDToken) {
		return fmt.Errorf("%w: the token endpoint %s answered without an id_token: check that the IdP's application is an OpenID Connect one and the connection's scopes include openid",
			connections.ErrMalformed, tokenURL)
	}
	return fmt.Errorf("%w: the answer of the token endpoint %s could not be read: %s", connections.ErrMalformed, tokenURL, connections.OneLine(err.Error(), 300))
}

// keysCause reduces the library's failure to fetch the JWKS to its cause,
// without the response body it quotes.
func keysCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue
	}
	if se, ok := errors.AsType[*safehttp.StatusError](err); ok {
		return se
	}
	msg := err.Error()
	if _, status, ok := strings.Cut(msg, "http status not ok: "); ok {
		if code, err := strconv.Atoi(strings.SplitN(status, " ", 2)[0]); err == nil {
			return &safehttp.StatusError{Code: code}
		}
	}
	return errors.New("the answer is not a JSON Web Key Set")
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

// discoveryURL is where an issuer's discovery document is read.
func discoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + oidc.DiscoveryEndpoint
}

// discoveryCause reduces the library's discovery error to its cause:
// without the "Discovery has failed" sentinel it is joined to, and
// without the response body it quotes.
func discoveryCause(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var rest []error
		for _, e := range j.Unwrap() {
			if e != oidc.ErrDiscoveryFailed {
				rest = append(rest, e)
			}
		}
		if len(rest) == 1 {
			err = rest[0]
		}
	}
	msg := err.Error()
	if status, ok := strings.CutPrefix(msg, "http status not ok: "); ok {
		if code, err := strconv.Atoi(strings.SplitN(status, " ", 2)[0]); err == nil {
			return &safehttp.StatusError{Code: code}
		}
	}
	if strings.HasPrefix(msg, "failed to unmarshal response") {
		return errors.New("the answer is not a JSON discovery document")
	}
	return err
}
