package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// errUnknownClient is an application that does not exist (or not yet on
// this node: the cache refreshes within its TTL).
var errUnknownClient = errors.New("broker: unknown client")

// appCache keeps applications in memory for a short TTL, so that the token
// and introspection endpoints authenticate clients without SQL. Misses are
// cached too, which keeps a client hammering with a wrong client_id off the
// database.
type appCache struct {
	store Store
	ttl   time.Duration
	now   func() time.Time

	mu      sync.RWMutex
	entries map[string]appEntry
}

type appEntry struct {
	app     store.Application
	missing bool
	until   time.Time
}

func newAppCache(s Store, ttl time.Duration, now func() time.Time) *appCache {
	return &appCache{store: s, ttl: ttl, now: now, entries: make(map[string]appEntry)}
}

// get returns application id, or errUnknownClient.
func (c *appCache) get(ctx context.Context, id string) (store.Application, error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if ok && now.Before(e.until) {
		if e.missing {
			return store.Application{}, errUnknownClient
		}
		return e.app, nil
	}
	if !store.HasPrefix(id, store.PrefixApplication) {
		return store.Application{}, errUnknownClient // not worth a query, nor a cache slot
	}
	a, err := c.store.Application(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.put(id, appEntry{missing: true, until: now.Add(c.ttl)})
		return store.Application{}, errUnknownClient
	case err != nil:
		return store.Application{}, fmt.Errorf("broker: load application: %w", err)
	}
	c.put(id, appEntry{app: a, until: now.Add(c.ttl)})
	return a, nil
}

// getBytes is get for an id still in the request's bytes: a cache hit
// converts and copies nothing.
func (c *appCache) getBytes(ctx context.Context, id []byte) (store.Application, error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.entries[string(id)]
	c.mu.RUnlock()
	if ok && now.Before(e.until) {
		if e.missing {
			return store.Application{}, errUnknownClient
		}
		return e.app, nil
	}
	return c.get(ctx, string(id))
}

// forget drops application id, so that the next request reads it again:
// the same node sees a change or deletion at once, others within the TTL.
func (c *appCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
}

func (c *appCache) put(id string, e appEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) > 10_000 { // a bound against ids made up by attackers
		clear(c.entries)
	}
	c.entries[id] = e
}

// authenticate checks a client's credentials: a confidential client must
// present its secret (compared in constant time against the stored hash),
// a public one none.
func (c *appCache) authenticate(ctx context.Context, clientID, secret string) (store.Application, error) {
	a, err := c.get(ctx, clientID)
	if err != nil {
		return store.Application{}, err
	}
	if a.Public {
		if secret != "" {
			return store.Application{}, fmt.Errorf("%w: a public client has no secret", errBadSecret)
		}
		return a, nil
	}
	if secret == "" {
		return store.Application{}, errBadSecret
	}
	return c.checkSecret(ctx, a, secrets.HashToken(secret))
}

// secretRecheck is how old a cached application must be before a secret
// it refuses makes this node read the application again: a secret rotated
// on another node is accepted here within it, not within the cache TTL,
// while a client hammering with a wrong secret costs one query per
// interval, not one per request.
const secretRecheck = time.Second

// checkSecret accepts sum (the hash of a presented secret) when it is a's
// secret, or its previous one during a rotation's overlap. A refusal by a
// cached copy older than secretRecheck is asked again of the store, since
// the secret may have been rotated on another node.
func (c *appCache) checkSecret(ctx context.Context, a store.Application, sum []byte) (store.Application, error) {
	now := c.now()
	if a.SecretMatches(sum, now) {
		return a, nil
	}
	c.mu.RLock()
	e, ok := c.entries[a.ID]
	c.mu.RUnlock()
	if !ok || e.missing || now.Before(e.until.Add(secretRecheck-c.ttl)) {
		return store.Application{}, errBadSecret
	}
	fresh, err := c.store.Application(ctx, a.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.put(a.ID, appEntry{missing: true, until: now.Add(c.ttl)})
		return store.Application{}, errUnknownClient
	case err != nil:
		return store.Application{}, fmt.Errorf("broker: load application: %w", err)
	}
	c.put(a.ID, appEntry{app: fresh, until: now.Add(c.ttl)})
	if fresh.Public || !fresh.SecretMatches(sum, now) {
		return store.Application{}, errBadSecret
	}
	return fresh, nil
}

var (
	errBadSecret = errors.New("broker: wrong client secret")
	// errPublicClient is a public client at an endpoint only confidential
	// clients may use (introspection).
	errPublicClient = errors.New("broker: public client")
)

// lifetimes of an application's tokens, defaults applied.
func idTokenTTL(a store.Application) time.Duration {
	return orDefault(a.IDTokenTTL, DefaultIDTokenTTL)
}
func accessTokenTTL(a store.Application) time.Duration {
	return orDefault(a.AccessTokenTTL, DefaultAccessTokenTTL)
}
func refreshTokenTTL(a store.Application) time.Duration {
	return orDefault(a.RefreshTokenTTL, DefaultRefreshTokenTTL)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func signingAlg(a store.Application) string {
	if a.IDTokenSigningAlg == "ES256" {
		return "ES256"
	}
	return "RS256"
}

// accessTokenAlg: an application may sign access tokens with ES256 while
// its id_tokens stay RS256; by default both use the id_token's algorithm.
func accessTokenAlg(a store.Application) string {
	switch a.AccessTokenSigningAlg {
	case "ES256", "RS256":
		return a.AccessTokenSigningAlg
	}
	return signingAlg(a)
}

// client is an application as zitadel/oidc's op sees it.
type client struct {
	app   store.Application
	login func(id string) string
}

var _ op.Client = client{}

func (c client) GetID() string                    { return c.app.ID }
func (c client) RedirectURIs() []string           { return c.app.RedirectURIs }
func (c client) PostLogoutRedirectURIs() []string { return c.app.PostLogoutRedirectURIs }

// ApplicationType: public clients are native apps or SPAs; "native" is
// the type under which op accepts their loopback and custom-scheme
// redirect URIs. The broker itself insists on exact matches beforehand.
func (c client) ApplicationType() op.ApplicationType {
	if c.app.Public {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c client) AuthMethod() oidc.AuthMethod {
	if c.app.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c client) LoginURL(id string) string            { return c.login(id) }
func (c client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c client) IDTokenLifetime() time.Duration       { return idTokenTTL(c.app) }
func (c client) DevMode() bool                        { return false }
func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c client) ClockSkew() time.Duration             { return 0 }
func (c client) IsScopeAllowed(scope string) bool     { return slices.Contains(supportedScopes, scope) }
func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// supportedScopes are the scopes of contract section 1; others are dropped
// from requests.
var supportedScopes = []string{"openid", "email", "profile", "groups", "offline_access"}

// ForgetApplication makes this node read application id afresh on its next
// use. The operator API calls it after changing or deleting an application,
// so the change holds on this node at once; other nodes pick it up within
// Config.AppCacheTTL (DefaultAppCacheTTL), the bound on how stale their
// cached copy may be.
func (p *Provider) ForgetApplication(id string) { p.apps.forget(id) }

// redirectURIAllowed reports whether uri is one of a's redirect URIs:
// byte for byte, or, for a public application, a loopback URI registered
// with another port or none. RFC 8252 §7.3 makes an authorization server
// accept any port there: a native app (a CLI, a desktop app) listens on
// whatever port the system gives it at the time of the request. Scheme
// (http), host (as written: 127.0.0.1, [::1] or localhost, which MSAL and
// others use), path and query must still be the registered ones, so only
// a process on the user's own machine can receive the code, as with the
// registered port; PKCE, which public applications must use, binds the
// code to the app that asked. Confidential applications keep exact
// matching.
func redirectURIAllowed(a store.Application, uri string) bool {
	if slices.Contains(a.RedirectURIs, uri) {
		return true
	}
	if !a.Public {
		return false
	}
	req, ok := loopbackURI(uri)
	if !ok {
		return false
	}
	for _, r := range a.RedirectURIs {
		reg, ok := loopbackURI(r)
		if ok && reg.Hostname() == req.Hostname() && reg.EscapedPath() == req.EscapedPath() &&
			reg.RawQuery == req.RawQuery && reg.ForceQuery == req.ForceQuery {
			return true
		}
	}
	return false
}

// loopbackURI parses uri when it is an http URI of a loopback host,
// without user info or fragment, and with a numeric port if any.
func loopbackURI(uri string) (*url.URL, bool) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.Opaque != "" || strings.Contains(uri, "#") {
		return nil, false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return nil, false
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, false
	}
	h := u.Hostname()
	if h == "localhost" {
		return u, true
	}
	ip := net.ParseIP(h)
	return u, ip != nil && ip.IsLoopback()
}
