package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/web"
)

// Connectors turns a stored connection into the upstream login that serves
// it. Package connections implements it (connections.Registry).
type Connectors interface {
	Connector(ctx context.Context, c store.Connection) (connections.Connector, error)
}

// Defaults for the zero values of Config and of an application's lifetimes.
const (
	DefaultIDTokenTTL      = time.Hour
	DefaultAccessTokenTTL  = 10 * time.Minute
	DefaultRefreshTokenTTL = 30 * 24 * time.Hour
	// DefaultSessionTTL bounds a broker session and so every refresh token
	// issued in it: revoking a session must end everything that came from it.
	DefaultSessionTTL = 30 * 24 * time.Hour
	// DefaultSSOTTL is how long after the IdP login the SSO cookie lets
	// another application in without going back to the IdP.
	DefaultSSOTTL = 12 * time.Hour
	// DefaultAppCacheTTL bounds how stale an application read from memory
	// may be (a new redirect URI, a deleted client).
	DefaultAppCacheTTL = 30 * time.Second

	codeTTL    = 60 * time.Second
	pendingTTL = 15 * time.Minute
)

// Paths of the endpoints, as discovery advertises them.
const (
	PathAuthorize  = "/authorize"
	PathLogin      = "/login"
	PathToken      = "/oauth/token"
	PathIntrospect = "/oauth/introspect"
	PathRevoke     = "/oauth/revoke"
	PathUserinfo   = "/userinfo"
	PathEndSession = "/oauth/logout"
	PathLoggedOut  = "/logged_out"
	PathJWKS       = "/.well-known/jwks.json"
	PathDiscovery  = "/.well-known/openid-configuration"
	SessionCookie  = "idb_session"
	// SecureSessionCookie names the SSO cookie when it is Secure: the
	// __Host- prefix makes browsers refuse it from any other host (a
	// sibling subdomain planting its own session, to sign the user in as
	// someone else) and with a Domain or a narrower Path.
	SecureSessionCookie = "__Host-" + SessionCookie
	pathStaticPrefix    = "/static"
)

// Config configures a Provider.
type Config struct {
	// Issuer is the public base URL (IDBROKER_ISSUER), without a trailing
	// slash. Required.
	Issuer string
	// Store, Sessions, Once and Keys are required. Sessions should be a
	// *sessions.Cached so that introspection stays in process.
	Store    Store
	Sessions sessions.Store
	Once     sessions.OnceCache
	// Families keeps refresh-token families; nil means Once, which must
	// then implement sessions.Families (Memory and Redis do).
	Families sessions.Families
	// Revoker, if set, makes the revocation of a reused code's session
	// durable: the order is recorded in the store's revocation queue and
	// applied by Revoker, retried until the session store acknowledges
	// (an *events.Revoker). Nil revokes directly, and a reuse seen while
	// the session store is down is answered 503.
	Revoker Revoker
	// ActiveTTL bounds how long "this user and tenant are active" is
	// trusted by token issuance, refresh and userinfo (DefaultActiveTTL).
	ActiveTTL time.Duration
	Keys      *signing.Manager
	// Connectors starts upstream logins. Required.
	Connectors Connectors
	// Usage meters completed sign-ins and the users of refreshes (package
	// usage); nil meters nothing.
	Usage LoginMeter
	// HTTPClient sends back-channel logouts; nil means a safehttp client
	// that refuses private addresses.
	HTTPClient *http.Client
	// Logger receives what callers are not told; nil discards.
	Logger *slog.Logger

	// Lifetimes; zero values take the defaults above.
	SessionTTL  time.Duration
	SSOTTL      time.Duration
	AppCacheTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// LoginLimit, if set, runs first on /authorize and /login (a
	// per-address limit on starting sign-ins); a 429 it returns is shown
	// as the end-user error page.
	LoginLimit echo.MiddlewareFunc
	// TokenLimit, if set, runs on /oauth/token and /oauth/revoke once the
	// request is read, with ClientID known; a 429 it returns is answered
	// as an OAuth error. Introspection is deliberately not limited: it is
	// the hot path, and its callers are authenticated apps.
	TokenLimit echo.MiddlewareFunc
	// TenantLoginLimit, if set, is asked once a sign-in is routed to a
	// tenant, before the browser is sent to its IdP: a per-tenant budget
	// so that a flood aimed at one tenant cannot starve the others. It
	// reports whether the sign-in may go on, else after how long to retry
	// (answered as the end-user page with 429 and Retry-After). It is
	// given the tenant's row as routing has just read it, so that the
	// tenant's own limit (its tier, an override) needs no read of its own.
	TenantLoginLimit func(ctx context.Context, t store.Tenant) (ok bool, retryAfter time.Duration)
	// TenantTokenPace, if set, is asked for a place once an authorization
	// code names its tenant, before the session is read and the tokens
	// signed (the exchange's CPU and round trips): a tenant finishing many
	// sign-ins at once waits for its own, not for everyone's. The code is
	// spent by then, so it never refuses: it returns, at the latest after
	// a short wait, the release to call once the answer is made. It must
	// cost no round trip (ratelimit.Concurrency.Pace).
	TenantTokenPace func(ctx context.Context, tenantID string) (release func())
	// OnUnverified, if set, is told of every answer on an ACS or callback
	// URL refused without being recorded, by reason (Unverified…): the
	// metrics hook.
	OnUnverified func(reason string)
	// OnSignInFailed, if set, is told of every sign-in refused or failed
	// after the IdP answered (each authentication.failed event), by its
	// reason_code: the metrics hook.
	OnSignInFailed func(reason string)
	// SLO, if set, receives the measurements of token answers and, through
	// MeasureSignIn, of sign-in completions, per tenant.
	SLO SLORecorder
}

// Provider is the OpenID Provider. Create it with New, Mount it on the
// server's echo, and Run it in the background.
type Provider struct {
	issuer string
	secure bool // cookies carry Secure
	// https is an https issuer: the one kind on which a browser keeps a
	// Secure cookie, and so a SameSite=None one (the login binding's,
	// see bindBrowser; an http issuer off localhost is --dev only).
	https      bool
	store      Store
	sessions   sessions.Store
	once       sessions.OnceCache
	families   sessions.Families
	revoker    Revoker
	active     *activeCache
	keys       *signing.Manager
	connectors Connectors
	usage      LoginMeter
	http       *http.Client
	log        *slog.Logger
	outages    *httpserver.OutageLog // causes of 503s, logged once, not per request
	now        func() time.Time
	sessionTTL time.Duration
	ssoTTL     time.Duration

	apps      *appCache
	verifier  *verifier
	handler   http.Handler // zitadel's protocol endpoints
	ec        *echo.Echo   // the echo Mount served on; Complete builds its context there
	discovery []byte
	// bodies recycles introspection request buffers: at 16k requests a
	// second a fresh buffer each would be most of the endpoint's garbage.
	bodies sync.Pool

	loginLimit  echo.MiddlewareFunc
	tokenLimit  echo.MiddlewareFunc
	tenantLimit func(ctx context.Context, t store.Tenant) (bool, time.Duration)
	tokenPace   func(ctx context.Context, tenantID string) (release func())

	onUnverified   func(reason string)
	onSignInFailed func(reason string)
	slo            SLORecorder

	bg sync.WaitGroup // what Run started

	// joint is sessions when the same backend keeps once and families
	// (every deployment; not every test): the paired writes of a step
	// then go in one call (sessions.Joint). Nil means separate calls.
	joint sessions.Joint

	// failures bounds the failed sign-ins written per connection.
	failures failureSample
}

// New checks cfg and builds a Provider. It does no I/O.
func New(cfg Config) (*Provider, error) {
	switch {
	case cfg.Store == nil, cfg.Sessions == nil, cfg.Once == nil, cfg.Keys == nil, cfg.Connectors == nil:
		return nil, errors.New("broker: Store, Sessions, Once, Keys and Connectors are required")
	}
	iss := strings.TrimRight(cfg.Issuer, "/")
	u, err := url.Parse(iss)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("broker: issuer %q must be an absolute http(s) URL", cfg.Issuer)
	}
	p := &Provider{
		outages:    httpserver.NewOutageLog(),
		issuer:     iss,
		secure:     u.Scheme == "https" || !isLocalHost(u.Hostname()),
		https:      u.Scheme == "https",
		store:      cfg.Store,
		sessions:   cfg.Sessions,
		once:       cfg.Once,
		revoker:    cfg.Revoker,
		keys:       cfg.Keys,
		connectors: cfg.Connectors,
		usage:      cfg.Usage,
		http:       cfg.HTTPClient,
		log:        cfg.Logger,
		now:        cfg.Now,
		sessionTTL: cmp.Or(cfg.SessionTTL, DefaultSessionTTL),
		ssoTTL:     cmp.Or(cfg.SSOTTL, DefaultSSOTTL),
		loginLimit: cfg.LoginLimit,
		tokenLimit: cfg.TokenLimit,

		tenantLimit: cfg.TenantLoginLimit,
		tokenPace:   cfg.TenantTokenPace,

		onUnverified:   cfg.OnUnverified,
		onSignInFailed: cfg.OnSignInFailed,
		slo:            cfg.SLO,
	}
	if p.http == nil {
		p.http = safehttp.NewClient(safehttp.Options{Timeout: 10 * time.Second, MaxRedirects: -1})
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.bodies.New = func() any { b := make([]byte, 0, 4096); return &b }
	if p.families = cfg.Families; p.families == nil {
		f, ok := cfg.Once.(sessions.Families)
		if !ok {
			return nil, errors.New("broker: Families is required when Once does not keep refresh families")
		}
		p.families = f
	}
	if j, ok := sessions.JointWith(cfg.Sessions, cfg.Once); ok {
		if f, _ := cfg.Once.(sessions.Families); cfg.Families == nil || cfg.Families == f {
			p.joint = j
		}
	}
	p.active = newActiveCache(cfg.Store, cmp.Or(cfg.ActiveTTL, DefaultActiveTTL), p.now)
	p.apps = newAppCache(cfg.Store, cmp.Or(cfg.AppCacheTTL, DefaultAppCacheTTL), p.now)
	p.verifier = newVerifier(p.issuer, cfg.Keys, p.now)
	if p.discovery, err = discoveryJSON(p.issuer); err != nil {
		return nil, err
	}
	p.handler = p.newOPHandler()
	return p, nil
}

func isLocalHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1" || strings.HasSuffix(h, ".localhost")
}

// Mount registers the broker's routes on e. Complete serves only requests
// that arrive through e.
func (p *Provider) Mount(e *echo.Echo) {
	p.ec = e
	// The two public documents also answer HEAD (the GET's headers, no
	// body), for caches and clients that check before fetching, and so
	// does userinfo (checkUserinfo). No other route of the broker may: its
	// GETs start sign-ins and end sessions.
	// OPTIONS reaches publicCORS too: without it echo answered the
	// preflight itself, with no Access-Control-* header, and a browser app
	// whose fetch adds a header (X-Requested-With, Authorization) could
	// not read discovery or the keys.
	doc := []string{http.MethodGet, http.MethodHead, http.MethodOptions}
	e.Match(doc, PathDiscovery, publicCORS("GET, HEAD", p.serveDiscovery))
	e.Match(doc, PathJWKS, publicCORS("GET, HEAD", p.serveJWKS))
	op := echo.WrapHandler(p.handler)
	login := p.loginLimited()
	e.Match([]string{http.MethodGet, http.MethodPost}, PathAuthorize, p.checkAuthorize(op), login...)
	// Introspection is served by the broker's own lean handler, ahead of
	// zitadel's router (see serveIntrospect).
	e.Any(PathIntrospect, p.serveIntrospect)
	// Token, revocation and userinfo are called by browser apps too: any
	// origin, never with credentials (cors.go).
	e.Any(PathToken, publicCORS("POST", p.measured(store.SLOToken, retryAfter503(p.checkOAuthRequest(p.tokenLimited(op), true)))))
	e.Any(PathRevoke, publicCORS("POST", retryAfter503(p.checkOAuthRequest(p.tokenLimited(op), false))))
	e.Any(PathUserinfo, publicCORS("GET, HEAD, POST", retryAfter503(p.checkUserinfo(op))))
	e.GET(PathLogin, p.serveLogin, login...)
	e.POST(PathLogin, p.submitLogin, login...)
	e.Match([]string{http.MethodGet, http.MethodPost}, PathEndSession, p.endSession)
	e.GET(PathLoggedOut, p.loggedOut)
	e.GET(pathStaticPrefix+"/*", echo.WrapHandler(http.StripPrefix(pathStaticPrefix, web.Static())))
}

// Run subscribes, until ctx ends, to the revocations made on any node, so
// that the cache of active users and tenants forgets at once what they
// end, and the cache of applications an application changed on another
// node (sessions.ReasonApplication: a client secret rotated away stops
// working here at once, not when the entry expires). It returns once
// subscribed, or with the subscription's error.
// (Back-channel logouts are delivered by the events.LogoutDispatcher the
// wiring runs, through SendLogout.)
func (p *Provider) Run(ctx context.Context) error {
	if err := p.sessions.Subscribe(ctx, func(r sessions.Revocation) {
		if r.Reason == sessions.ReasonApplication {
			p.apps.forget(r.ClientID)
			return
		}
		p.active.invalidate(r)
	}); err != nil {
		return fmt.Errorf("broker: subscribe to revocations: %w", err)
	}
	return nil
}

// Wait returns once the background work Run started has ended, which it
// does after Run's context is done: call it at shutdown before closing
// the store and the session store that work uses.
func (p *Provider) Wait() { p.bg.Wait() }

func (p *Provider) url(path string) string { return p.issuer + path }

// LoginMeter records a completed sign-in for billing; package usage
// implements it. Login runs inside the transaction that provisions the
// user, with the tenant in ctx; loginID names the sign-in, so that
// recording it twice counts it once. Active runs when tokens are minted
// (a code redeemed, a refresh), with the tenant in ctx and the session's
// IdP sign-in time: a user active in a month they did not sign in at the
// IdP is a monthly active user, though no login.
type LoginMeter interface {
	Login(ctx context.Context, userID, loginID string) error
	Active(ctx context.Context, userID string, authTime time.Time) error
}
