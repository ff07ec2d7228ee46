package connections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Config configures a Registry.
type Config struct {
	// Types are the connection types this broker offers, by name.
	// Required.
	Types Types
	// Issuer is the broker's public base URL (IDBROKER_ISSUER), without a
	// trailing slash. Required.
	Issuer string
	// Store is required.
	Store store.Store
	// Once keeps started logins and seen assertion ids, shared by all
	// nodes. Required.
	Once sessions.OnceCache
	// Sessions, when set, lets a deactivated or deleted connection end
	// its sessions at once.
	Sessions sessions.Store
	// Revoker, when set (with Sessions), makes ending those sessions
	// durable: the order is recorded in the transaction that deactivates
	// or deletes the connection and applied by Revoker after it commits,
	// retried until the session store acknowledges (an *events.Revoker).
	Revoker Revoker
	// HTTPClient reaches IdPs (metadata URLs, OIDC discovery, JWKS, token
	// and userinfo endpoints). Nil means a safehttp client with the
	// defaults — loopback and private networks refused.
	HTTPClient *http.Client
	// AllowInsecureURLs accepts http:// IdP URLs (serve --dev, tests).
	AllowInsecureURLs bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives what is not returned to a caller (background refresh
	// failures). Nil discards.
	Logger *slog.Logger
	// LoginTTL is how long a started login may take at the IdP. Default
	// 10 minutes.
	LoginTTL time.Duration
	// CacheTTL is how long the SSO endpoints trust a connection, a
	// tenant's status and its verified domains as last read from the
	// store, so that the ACS and the OIDC callback run no SQL of their
	// own. Changes made through this Registry apply on this node at once;
	// other nodes see them within CacheTTL. Zero means DefaultCacheTTL; a
	// negative value reads the store on every request.
	CacheTTL time.Duration
	// CacheSize bounds the connections and the tenants cached, each.
	// Zero means DefaultCacheSize.
	CacheSize int
	// Admit, if set, is asked for a place before an answer posted to the
	// ACS or the OIDC callback is read, once its connection names the
	// tenant: reading it (signatures, the IdP's token endpoint) and
	// completing the sign-in is the expensive part of one, and a tenant
	// finishing many at once must leave this node's CPU and database
	// connections to the others. ok false answers the sign-in ErrBusy;
	// otherwise release is called once the answer is written. It must
	// cost the hot path no round trip (ratelimit.Concurrency.Admit).
	Admit func(ctx context.Context, tenantID string) (release func(), ok bool)
	// OnCertificates, if set, is told after each whole maintenance pass
	// (Maintain) how many active connections trust only certificates
	// that expire within CertificateAlertWindow (expiring) or have
	// expired (expired): for a gauge an operator alerts on, without a
	// label per connection.
	OnCertificates func(expiring, expired int)
}

// CertificateAlertWindow is how far ahead Config.OnCertificates counts a
// connection whose every trusted certificate expires: time for the
// vendor to reach a tenant that let the 30-day
// connection.certificate_expiring go by.
const CertificateAlertWindow = 14 * 24 * time.Hour

// Registry builds and caches one Connector per connection, serves the
// contract's SSO URLs, and manages connection settings. It is safe for
// concurrent use.
//
// The SSO endpoints answer from a cache (see Config.CacheTTL): a warm ACS
// or OIDC callback runs no SQL. Changes made through the Registry apply on
// its own node at once; on other nodes within CacheTTL, sooner when Watch
// hears of the revocation a deactivation causes; and a deactivation
// revokes the connection's sessions again once that bound has passed, so
// a login let through by a node that had not heard yet does not survive.
type Registry struct {
	cfg  Config
	deps Deps

	cache *cache
	// opening joins the requests that need the same connector built (see
	// connector).
	opening singleflight.Group

	// forced records when each connection's metadata was last re-read
	// out of turn (refreshSoon).
	forcedMu sync.Mutex
	forced   map[string]time.Time

	// Background work outside a request (forced metadata refreshes),
	// cancelled and joined when Run ends.
	bgMu      sync.Mutex
	bg        sync.WaitGroup
	bgCtx     context.Context
	bgCancel  context.CancelFunc
	bgStopped bool
}

// NewRegistry returns a Registry over cfg. It panics on missing Types,
// Store, Once or Issuer: a wiring mistake that must not reach a running
// server.
func NewRegistry(cfg Config) *Registry {
	if len(cfg.Types) == 0 || cfg.Store == nil || cfg.Once == nil || cfg.Issuer == "" {
		panic("connections: NewRegistry needs Types, Issuer, Store and Once")
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = safehttp.NewClient(safehttp.Options{})
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LoginTTL <= 0 {
		cfg.LoginTTL = 10 * time.Minute
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	bgCtx, bgCancel := context.WithCancel(context.Background())
	r := &Registry{
		cfg:      cfg,
		cache:    newCache(cfg.CacheTTL, cfg.CacheSize),
		forced:   map[string]time.Time{},
		bgCtx:    bgCtx,
		bgCancel: bgCancel,
	}
	r.deps = Deps{
		Issuer: cfg.Issuer, Once: cfg.Once, HTTPClient: cfg.HTTPClient,
		AllowInsecureURLs: cfg.AllowInsecureURLs, Now: cfg.Now, Logger: cfg.Logger,
		LoginTTL: cfg.LoginTTL, Profiles: profileChecker{r}, Refresh: r.refreshSoon,
		Applications: cfg.Store,
	}
	return r
}

func (r *Registry) now() time.Time { return r.cfg.Now() }

// Connector returns the Connector of conn, built once and rebuilt when the
// connection changes (its UpdatedAt moves). conn must be active.
func (r *Registry) Connector(ctx context.Context, conn store.Connection) (Connector, error) {
	if conn.Status != store.ConnectionActive {
		return nil, fmt.Errorf("%w: %s is %s", ErrConnectionInactive, conn.ID, conn.Status)
	}
	return r.connector(ctx, conn)
}

// connector returns conn's Connector from the cache, or builds it. Building
// may reach the IdP (OIDC discovery, up to the outbound client's 10 s), and
// a build that fails is not cached: while an IdP is slow or down, every
// sign-in to the tenant needed a build. The requests needing the same
// version of a connection at once now share one build, so a slow IdP
// costs one outbound request at a time per connection, not one per
// sign-in (which anyone can start, up to the tenant's sign-in limit: a
// thousand connections and goroutines held open for 10 s at the default).
// The build runs apart from the request that started it, so that this
// request leaving does not fail the others waiting on it.
func (r *Registry) connector(ctx context.Context, conn store.Connection) (Connector, error) {
	if c := r.cache.connector(conn); c != nil {
		return c, nil
	}
	key := conn.ID + " " + conn.UpdatedAt.UTC().Format(time.RFC3339Nano)
	ch := r.opening.DoChan(key, func() (any, error) {
		if c := r.cache.connector(conn); c != nil {
			return c, nil // built by the flight that just ended
		}
		c, err := r.open(context.WithoutCancel(ctx), conn)
		if err != nil {
			return nil, err
		}
		r.cache.putConnector(conn, c)
		return c, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(Connector), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("connections: build the connector of %s: %w", conn.ID, context.Cause(ctx))
	}
}

// open builds conn's Connector through its Type.
func (r *Registry) open(ctx context.Context, conn store.Connection) (Connector, error) {
	t, err := r.cfg.Types.lookup(conn.Type)
	if err != nil {
		return nil, err
	}
	return t.Open(ctx, r.deps, conn)
}

// load finds a connection named in a URL: its tenant first (the one
// narrow cross-tenant lookup), then the row under that tenant. Within
// CacheTTL of the last read it answers from the cache, without SQL.
func (r *Registry) load(ctx context.Context, connID string) (context.Context, store.Connection, error) {
	if !validConnID(connID) {
		return ctx, store.Connection{}, fmt.Errorf("%w: %q", ErrNotFound, connID)
	}
	now := r.now()
	if conn, ok := r.cache.conn(connID, now); ok {
		return store.WithTenant(ctx, conn.TenantID), conn, nil
	}
	tenantID, err := r.cfg.Store.ResolveConnection(ctx, connID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ctx, store.Connection{}, fmt.Errorf("%w: %s", ErrNotFound, connID)
		}
		return ctx, store.Connection{}, fmt.Errorf("%w: resolve connection: %v", ErrUpstream, err)
	}
	ctx = store.WithTenant(ctx, tenantID)
	conn, err := r.cfg.Store.Connection(ctx, connID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ctx, store.Connection{}, fmt.Errorf("%w: %s", ErrNotFound, connID)
		}
		return ctx, store.Connection{}, fmt.Errorf("%w: load connection: %v", ErrUpstream, err)
	}
	r.cache.putConn(conn, now)
	return ctx, conn, nil
}

func validConnID(id string) bool {
	if !strings.HasPrefix(id, "conn_") || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// profileChecker is the Registry's ProfileChecker, kept off its own
// method set.
type profileChecker struct{ r *Registry }

// CheckProfile applies the rules every protocol shares: a subject, a
// well-formed email, and that email in one of the tenant's verified
// domains unless the connection relaxes it.
func (pc profileChecker) CheckProfile(ctx context.Context, p Profile, rules ProfileRules) (Profile, error) {
	r := pc.r
	if strings.TrimSpace(p.IdPSubject) == "" {
		return Profile{}, fmt.Errorf("%w: the IdP sent no subject (NameID or sub)", ErrProfile)
	}
	email := normaliseEmail(p.Email)
	if email == "" && strings.TrimSpace(p.Email) == "" {
		return Profile{}, fmt.Errorf("%w: no email in the response; map the attribute that carries it", ErrProfile)
	}
	if email == "" {
		return Profile{}, fmt.Errorf("%w: no usable email in the response (got %q, not one email address); map an email attribute", ErrProfile, p.Email)
	}
	p.Email = email
	tn, err := r.tenantInfo(ctx, p.TenantID)
	if err != nil {
		return Profile{}, err
	}
	verified := tn.verified
	inVerified := false
	for _, d := range verified {
		inVerified = inVerified || d == emailDomain(email)
	}
	if !inVerified && !rules.AnyEmailDomain {
		// Said so that an admin reading it in the portal's test result
		// knows which domain to verify.
		known := "none is verified yet"
		if len(verified) > 0 {
			known = "verified: " + strings.Join(verified, ", ")
		}
		return Profile{}, fmt.Errorf("%w: the email's domain %q is not one of the organisation's verified domains (%s)",
			ErrDomainNotAllowed, emailDomain(email), known)
	}
	// The tenant's own IdP vouches for addresses in the tenant's own
	// verified domains; for others (a connection that allows any domain)
	// its word is only a claim, whatever it says of them: an IdP of one
	// tenant saying "verified" of an address in a domain another tenant
	// owns must not let an application that links accounts by verified
	// email sign its holder in as that address's owner. An IdP that says
	// an address in the tenant's domains is unverified is believed.
	p.EmailVerified = inVerified && (rules.EmailVerified == nil || *rules.EmailVerified)
	return p, nil
}

// tenantInfo returns the status and verified domains of the tenant in
// ctx, from the cache within CacheTTL of the last read.
func (r *Registry) tenantInfo(ctx context.Context, tenantID string) (tenantEntry, error) {
	now := r.now()
	if e, ok := r.cache.tenant(tenantID, now); ok {
		return e, nil
	}
	tn, err := r.cfg.Store.Tenant(ctx)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return tenantEntry{}, fmt.Errorf("%w: tenant %s no longer exists", ErrTenantInactive, tenantID)
		}
		// The broker's database, not the IdP: an ErrUpstream here told
		// the tenant admin their IdP was unreachable (and the user their
		// sign-in failed) while the broker was down.
		return tenantEntry{}, fmt.Errorf("%w: tenant: %w", ErrUnavailable, err)
	}
	domains, err := r.cfg.Store.Domains(ctx)
	if err != nil {
		return tenantEntry{}, fmt.Errorf("%w: tenant domains: %w", ErrUnavailable, err)
	}
	e := tenantEntry{status: tn.Status, loaded: now}
	for _, d := range domains {
		if d.Verified {
			e.verified = append(e.verified, d.Domain)
		}
	}
	r.cache.putTenant(tenantID, e)
	return e, nil
}

// checkTenant refuses a login into a tenant that is paused or gone.
func (r *Registry) checkTenant(ctx context.Context, tenantID string) error {
	tn, err := r.tenantInfo(ctx, tenantID)
	if err != nil {
		return err
	}
	if !tn.status.Live() {
		return fmt.Errorf("%w: tenant %s is %s", ErrTenantInactive, tenantID, tn.status)
	}
	return nil
}

// ForgetTenant drops what this node caches about a tenant (its status,
// verified domains and connections), so that a change made outside the
// Registry (a domain verified or removed, the tenant paused) applies here
// at once rather than within CacheTTL.
func (r *Registry) ForgetTenant(tenantID string) { r.cache.staleTenant(tenantID) }

// HasType reports whether typ is a registered connection type: the
// operator API reads a request's settings object under each type's name.
func (r *Registry) HasType(typ store.ConnectionType) bool {
	_, ok := r.cfg.Types[typ]
	return ok
}

// CheckType returns an ErrConfig naming the registered types unless typ
// is one of them.
func (r *Registry) CheckType(typ store.ConnectionType) error {
	_, err := r.cfg.Types.lookup(typ)
	return err
}
