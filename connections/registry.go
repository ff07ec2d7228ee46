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

	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idbroker/idbroker/safehttp"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Config configures a Registry.
type Config struct {
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
	// MetadataRefresh is how often IdP metadata URLs are re-read. Default
	// 12 hours.
	MetadataRefresh time.Duration
}

// Registry builds and caches one Connector per connection, serves the
// contract's SSO URLs, and manages connection settings. It is safe for
// concurrent use.
type Registry struct {
	cfg       Config
	dsigClock *dsig.Clock

	mu    sync.Mutex
	cache map[string]cached
	// domains caches each tenant's verified domains briefly, so that the
	// ACS hot path usually runs no SQL for the domain rule.
	domains map[string]cachedDomains
}

type cachedDomains struct {
	verified []string
	at       time.Time
}

// domainCacheTTL bounds how long a domain that stopped being verified can
// still admit a login.
const domainCacheTTL = 10 * time.Second

type cached struct {
	updatedAt time.Time
	connector Connector
}

// NewRegistry returns a Registry over cfg. It panics on a missing Store,
// Once or Issuer: a wiring mistake that must not reach a running server.
func NewRegistry(cfg Config) *Registry {
	if cfg.Store == nil || cfg.Once == nil || cfg.Issuer == "" {
		panic("connections: NewRegistry needs Issuer, Store and Once")
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
	if cfg.MetadataRefresh <= 0 {
		cfg.MetadataRefresh = 12 * time.Hour
	}
	return &Registry{
		cfg:       cfg,
		dsigClock: dsig.NewFakeClock(funcClock{Clock: clockwork.NewRealClock(), now: cfg.Now}),
		cache:     map[string]cached{},
		domains:   map[string]cachedDomains{},
	}
}

// funcClock is a clockwork.Clock whose Now is the registry's, so that the
// SAML library and XML signature checks see the same time we do.
type funcClock struct {
	clockwork.Clock
	now func() time.Time
}

func (c funcClock) Now() time.Time { return c.now() }

func (r *Registry) now() time.Time { return r.cfg.Now() }

// Connector returns the Connector of conn, built once and rebuilt when the
// connection changes (its UpdatedAt moves). conn must be active.
func (r *Registry) Connector(ctx context.Context, conn store.Connection) (Connector, error) {
	if conn.Status != store.ConnectionActive {
		return nil, fmt.Errorf("%w: %s is %s", ErrConnectionInactive, conn.ID, conn.Status)
	}
	return r.connector(ctx, conn)
}

func (r *Registry) connector(ctx context.Context, conn store.Connection) (Connector, error) {
	r.mu.Lock()
	e, ok := r.cache[conn.ID]
	r.mu.Unlock()
	if ok && e.updatedAt.Equal(conn.UpdatedAt) {
		return e.connector, nil
	}
	var (
		c   Connector
		err error
	)
	switch conn.Type {
	case store.ConnectionSAML:
		c, err = newSAMLConnector(r, conn)
	case store.ConnectionOIDC:
		c, err = newOIDCConnector(ctx, r, conn)
	default:
		err = fmt.Errorf("%w: unknown connection type %q", ErrConfig, conn.Type)
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if cur, ok := r.cache[conn.ID]; !ok || !cur.updatedAt.After(conn.UpdatedAt) {
		r.cache[conn.ID] = cached{updatedAt: conn.UpdatedAt, connector: c}
	}
	r.mu.Unlock()
	return c, nil
}

// forget drops a cached connector (deleted connection).
func (r *Registry) forget(connID string) {
	r.mu.Lock()
	delete(r.cache, connID)
	r.mu.Unlock()
}

// load finds a connection named in a URL: its tenant first (the one
// narrow cross-tenant lookup), then the row under that tenant.
func (r *Registry) load(ctx context.Context, connID string) (context.Context, store.Connection, error) {
	if !validConnID(connID) {
		return ctx, store.Connection{}, fmt.Errorf("%w: %q", ErrNotFound, connID)
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

// finishProfile applies the rules every protocol shares: a subject, a
// well-formed email, and that email in one of the tenant's verified
// domains unless the connection relaxes it.
func (r *Registry) finishProfile(ctx context.Context, p Profile, anyDomain bool, emailVerified *bool) (Profile, error) {
	if strings.TrimSpace(p.IdPSubject) == "" {
		return Profile{}, fmt.Errorf("%w: the IdP sent no subject (NameID or sub)", ErrProfile)
	}
	email := normaliseEmail(p.Email)
	if email == "" {
		return Profile{}, fmt.Errorf("%w: no usable email in the response (got %q); map an email attribute", ErrProfile, p.Email)
	}
	p.Email = email
	verified, err := r.verifiedDomains(ctx, p.TenantID)
	if err != nil {
		return Profile{}, err
	}
	inVerified := false
	for _, d := range verified {
		inVerified = inVerified || d == emailDomain(email)
	}
	if !inVerified && !anyDomain {
		return Profile{}, fmt.Errorf("%w: email domain was %q, expected one of the tenant's verified domains [%s]",
			ErrDomainNotAllowed, emailDomain(email), strings.Join(verified, ", "))
	}
	switch {
	case emailVerified != nil:
		p.EmailVerified = *emailVerified
	default:
		// The tenant's own IdP vouches for addresses in the tenant's own
		// verified domains; for others it is only a claim.
		p.EmailVerified = inVerified
	}
	return p, nil
}

func (r *Registry) verifiedDomains(ctx context.Context, tenantID string) ([]string, error) {
	now := r.now()
	r.mu.Lock()
	c, ok := r.domains[tenantID]
	r.mu.Unlock()
	if ok && now.Sub(c.at) < domainCacheTTL && now.Sub(c.at) >= 0 {
		return c.verified, nil
	}
	domains, err := r.cfg.Store.Domains(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: tenant domains: %v", ErrUpstream, err)
	}
	var verified []string
	for _, d := range domains {
		if d.Verified {
			verified = append(verified, d.Domain)
		}
	}
	r.mu.Lock()
	if len(r.domains) > 10000 {
		clear(r.domains)
	}
	r.domains[tenantID] = cachedDomains{verified: verified, at: now}
	r.mu.Unlock()
	return verified, nil
}
