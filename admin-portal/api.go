package adminportal

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/admin-portal/domainverify"
	"github.com/idbroker/idbroker/admin-portal/openapi"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/slo"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/usage"
)

// TXTResolver looks up DNS TXT records; *net.Resolver satisfies it. Tests
// substitute a fake DNS.
type TXTResolver = domainverify.Resolver

// APIConfig configures the operator API.
type APIConfig struct {
	// Store is required.
	Store Store
	// Resolver checks domain verification records; nil means
	// net.DefaultResolver.
	Resolver TXTResolver
	// Logger receives what the client is not told (causes of 500s, deleted
	// tenants). Nil discards.
	Logger *slog.Logger
	// Sessions revokes broker sessions (POST /users/{id}/revoke_sessions);
	// nil leaves that route out.
	Sessions sessions.Store
	// Revoker applies the revocations that operator actions record in
	// their transactions (revoke_sessions, tenant pause and delete); nil
	// with Sessions set means an events.Revoker over Store and Sessions.
	Revoker Revoker
	// Connections manages upstream IdP connections (POST
	// /tenants/{id}/connections, GET/PATCH/DELETE /connections/{id}); nil
	// leaves those routes out.
	Connections *connections.Registry
	// SCIMBaseURL names a directory's SCIM base URL (scim.Server.BaseURL);
	// nil leaves the directory routes out.
	SCIMBaseURL func(directoryID string) string
	// ApplicationCache is told of every changed or deleted application
	// (the broker's *broker.Provider); nil tells no one.
	ApplicationCache ApplicationCache
	// Portal makes the links of POST /portal_links (*portal.Portal); nil
	// leaves that route out.
	Portal PortalLinks
	// Limit, if set, runs after authentication, with the operator's key
	// known (OperatorKeyID): the per-key rate limit.
	Limit echo.MiddlewareFunc
	// AuthFailures, if set, bounds the refused API keys of one client
	// address (a *ratelimit.FailureLimit): Check runs before a key is
	// looked up, Failed once one is refused; each returns the 429 to
	// answer instead, or nil.
	AuthFailures interface {
		Check(echo.Context) error
		Failed(echo.Context) error
	}
	// Usage answers the usage routes (GET /tenants/{id}/usage, GET
	// /usage/export); nil leaves them out.
	Usage *usage.Meter
	// SLO reads the service-level measurements (GET /tenants/{id}/slo);
	// nil leaves that route out.
	SLO slo.Reader
	// AllowPrivateNetworks accepts webhook and back-channel logout URLs
	// whose host is a loopback, private or link-local address or a
	// localhost name (IDBROKER_ALLOW_PRIVATE_NETWORKS, as the outbound
	// client it mirrors); by default they are refused at registration.
	AllowPrivateNetworks bool
	// EventRetention is how long events are kept (IDBROKER_EVENT_RETENTION_DAYS,
	// as events.Pruner reads it): zero means events.DefaultRetention,
	// negative for ever. POST /webhooks/{id}/recover refuses a since
	// older than that.
	EventRetention time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// API is the operator API. Create it with NewAPI and Mount it.
type API struct {
	store         Store
	resolver      TXTResolver
	log           *slog.Logger
	verifyTimeout time.Duration
	sessions      sessions.Store
	revoker       Revoker
	connections   *connections.Registry
	scimBaseURL   func(directoryID string) string
	appCache      ApplicationCache
	limit         echo.MiddlewareFunc
	authFailures  interface {
		Check(echo.Context) error
		Failed(echo.Context) error
	}
	usage        *usage.Meter
	now          func() time.Time
	portal       PortalLinks
	slo          slo.Reader
	logouts      LogoutStore // nil: the store keeps no logout queue
	allowPrivate bool
	retention    time.Duration // events kept; negative: for ever
	// touchLog logs a failed record of an API key's use (a read-only
	// database fails every one) once per interval, not once per call.
	touchLog *httpserver.OutageLog
}

// NewAPI returns the operator API over cfg.Store. It panics when Store is
// nil, a wiring mistake that must not reach a running server.
func NewAPI(cfg APIConfig) *API {
	if cfg.Store == nil {
		panic("adminportal: NewAPI needs a Store")
	}
	a := &API{
		store:         cfg.Store,
		resolver:      cfg.Resolver,
		log:           cfg.Logger,
		verifyTimeout: 10 * time.Second,
		sessions:      cfg.Sessions,
		connections:   cfg.Connections,
		scimBaseURL:   cfg.SCIMBaseURL,
		appCache:      cfg.ApplicationCache,
		limit:         cfg.Limit,
		authFailures:  cfg.AuthFailures,
		usage:         cfg.Usage,
		now:           cfg.Now,
		portal:        cfg.Portal,
		slo:           cfg.SLO,
		allowPrivate:  cfg.AllowPrivateNetworks,
		retention:     cmp.Or(cfg.EventRetention, events.DefaultRetention),
		touchLog:      httpserver.NewOutageLog(),
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.resolver == nil {
		a.resolver = net.DefaultResolver
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.logouts, _ = cfg.Store.(LogoutStore)
	a.revoker = cfg.Revoker
	if rs, ok := cfg.Store.(events.RevocationStore); ok && a.revoker == nil && a.sessions != nil {
		r, err := events.NewRevoker(events.RevokerConfig{Store: rs, Sessions: cfg.Sessions, Logger: a.log})
		if err != nil {
			panic("adminportal: " + err.Error())
		}
		a.revoker = r
	}
	return a
}

// Revoker applies revocations once their transaction has committed (an
// *events.Revoker). An error means the session store did not acknowledge
// and the revocation stays queued, to be applied as soon as it answers.
type Revoker interface {
	Apply(ctx context.Context, revs ...store.Revocation) ([]sessions.Session, error)
}

// Mount registers the API under /api/v1. Every route, including unknown
// ones, passes the one error mapper and the one authentication middleware,
// so that an unauthenticated caller learns nothing, not even which paths
// exist; the one exception is the API's OpenAPI document, which describes
// what the source already says.
//
// Every route registered here is documented in admin-portal/openapi's
// openapi.yaml (a test of cmd/idbroker fails otherwise).
func (a *API) Mount(e *echo.Echo) {
	// HEAD too, public like the GET: a read-only document (and HEAD must
	// not meet the group's authentication below, which would answer 401).
	e.Match([]string{http.MethodGet, http.MethodHead}, openapi.Path, openapi.Serve)
	e.Pre(collapseSlashes)

	mw := []echo.MiddlewareFunc{a.mapErrors, a.authenticate}
	if a.limit != nil {
		mw = append(mw, a.limit)
	}
	g := e.Group(apiBase, mw...)

	g.POST("/tenants", a.createTenant)
	getAndHead(g, "/tenants", a.listTenants)
	g.POST("/tenants/:id/restore", a.restoreTenant)

	t := g.Group("/tenants/:id", a.loadTenant, a.forgetTenantOnChange)
	getAndHead(t, "", a.getTenant)
	t.PATCH("", a.updateTenant)
	t.DELETE("", a.deleteTenant)
	getAndHead(t, "/domains", a.listDomains)
	t.POST("/domains", a.addDomain)
	getAndHead(t, "/domains/:dom", a.getDomain)
	t.DELETE("/domains/:dom", a.deleteDomain)
	t.POST("/domains/:dom/verify", a.verifyDomain)

	a.mountConnections(g, t)
	a.mountDirectories(g, t)
	a.mountEvents(g)
	a.mountUsage(g, t)
	a.mountSLO(t)
	if a.logouts != nil {
		a.mountLogouts(t)
	}
	getAndHead(g, "/audit_events", a.listAuditEvents)

	a.mountApplications(g)
	if a.sessions != nil {
		g.POST("/users/:id/revoke_sessions", a.revokeUserSessions)
		g.DELETE("/users/:id", a.deleteUser)
	}
	if a.portal != nil {
		g.POST("/portal_links", a.createPortalLink)
	}
}

// getAndHead registers h for GET and for HEAD at path of g. RFC 9110
// §9.3.2: a server that answers GET answers HEAD the same, status and
// headers (ETag, Content-Type, Content-Length where GET has one), without
// the body, which net/http drops. Registering HEAD as a route of its own
// also puts it in the Allow of the path's 405s.
func getAndHead(g *echo.Group, path string, h echo.HandlerFunc) {
	g.Match([]string{http.MethodGet, http.MethodHead}, path, h)
}

// readOnly reports whether method only reads (GET, HEAD).
func readOnly(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}
