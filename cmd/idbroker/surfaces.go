package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/admin-portal/domainverify"
	"github.com/idbroker/idbroker/admin-portal/openapi"
	"github.com/idbroker/idbroker/admin-portal/portal"
	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/cmd/idbroker/internal/devmode"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/metrics"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/lifecycle"
	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/slo"
	"github.com/idbroker/idbroker/store"
	metering "github.com/idbroker/idbroker/usage"
)

// keyReloadInterval is how often a running broker re-reads the signing
// keys, which is how a rotation made elsewhere reaches it.
const keyReloadInterval = signing.DefaultReloadInterval

// startSigning creates the signing keys on first start (idempotently, even
// with several nodes starting together) and keeps the in-memory key set
// fresh until ctx is done.
func startSigning(ctx context.Context, bg *sync.WaitGroup, st store.Store, log *slog.Logger) (*signing.Manager, error) {
	m, err := signing.NewManager(st, signing.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := m.EnsureKeys(ctx); err != nil {
		return nil, err
	}
	bg.Go(func() { m.Run(ctx, keyReloadInterval) })
	return m, nil
}

// connectionMaintenance is how often IdP metadata URLs are re-read and
// expiring IdP certificates reported.
const connectionMaintenance = time.Hour

// usageSnapshots is how often the daily usage snapshot is attempted; the
// first attempt of a UTC day records it, on whichever node runs first.
const usageSnapshots = time.Hour

// erasureInterval is how often deleted tenants past their restore window
// are looked for.
const erasureInterval = time.Hour

// mountSurfaces builds every HTTP surface, mounts it on srv and starts the
// background work, in bg, until ctx is done:
//
//	broker        the OpenID Provider toward apps (discovery, authorize, token, …)
//	connections   the SAML and OIDC endpoints toward tenant IdPs
//	scim          /scim/v2/{dir} for Okta and Entra provisioning
//	adminportal   the operator API, /api/v1
//	portal        the self-serve portal for tenant IT admins, /portal
//	events        webhook deliveries from the outbox, and the revocation
//	              queue applied to the session store (no routes)
//	metrics       GET /metrics (Prometheus)
//
// Rate limits (cfg.RateLimits) run after each surface's authentication, on
// budgets kept in cache (Redis when configured, so shared by every node).
//
// The returned func logs what a user needs once the port is bound (the
// --dev demo URL).
//
// tp is the tracer provider of the background work (webhook and logout
// deliveries, revocations, erasure); nil when tracing is off.
func mountSurfaces(ctx context.Context, bg *sync.WaitGroup, srv *httpserver.Server, reg *metrics.Registry, tp trace.TracerProvider, cfg Config, st store.Store, cache sessionStore, keys *signing.Manager, log *slog.Logger) (announce func(), err error) {
	// Introspection and token checks read sessions through a local cache
	// that revocations on any node invalidate.
	cached, err := sessions.NewCached(ctx, cache, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("session cache: %w", err)
	}
	// Every request to a tenant- or app-supplied URL goes through safehttp;
	// IDBROKER_ALLOW_PRIVATE_NETWORKS (or --dev) lifts its address rule.
	outbound := func(o safehttp.Options) *http.Client {
		o.AllowPrivate = cfg.AllowPrivateNetworks
		return safehttp.NewClient(o)
	}

	// A limiter outage lets requests through (logged): sign-ins staying
	// available matters more than the limits.
	guard := ratelimit.New(cache, ratelimit.Options{Logger: log.With("surface", "ratelimit"), OnLimited: reg.RateLimited})
	limits := rateLimitRules(cfg.RateLimits)
	limit := func(r ratelimit.Rule) echo.MiddlewareFunc {
		if !r.Enabled() {
			return nil
		}
		return guard.Middleware(r)
	}

	// Each tenant's sign-in budget follows its override, else its tier,
	// else IDBROKER_RATE_LIMIT_LOGIN_TENANT, resolved from the tenant's row
	// as routing reads it for each sign-in: a change applies everywhere at
	// once, and the check is the limiter's one round trip.
	tenantLimits := ratelimit.NewTenantLimits(limits.LoginTenant)

	// Sign-in completions and token answers are measured per tenant in
	// memory and written once a minute, per node (GET /tenants/{id}/slo).
	measurements, err := slo.New(slo.Config{
		Store:  st,
		Node:   nodeName(),
		Logger: log.With("surface", "slo"),
		OnObserve: func(tenantID string, kind store.SLOKind, o slo.Outcome, elapsed time.Duration) {
			reg.ObserveTenant(tenantID, string(kind), o.String(), elapsed)
		},
	})
	if err != nil {
		return nil, err
	}

	// Usage is metered where it happens and snapshotted daily (usageSnapshots).
	meter := metering.New(st, nil, log.With("surface", "usage"))

	// Revocations (deprovisioning, tenant pause and delete, connection
	// deactivation, revoke_sessions, a reused authorization code's
	// session) are recorded in the transaction of
	// their change and applied through this node's Revoker; its Run
	// retries, on every node, whatever the session store did not
	// acknowledge (Redis down) until it does.
	// The sessions they end get back-channel logouts, queued in the same
	// transaction that retires the order and delivered by logouts below.
	var logouts *events.LogoutDispatcher
	revoker, err := events.NewRevoker(events.RevokerConfig{
		Store:    st,
		Sessions: cached,
		Logger:   log.With("surface", "revocations"),
		// While an order waits for the session store (a frozen Redis
		// breaks no subscription), this node's cache vouches for nothing.
		Pending: cached.Hold,
		// Its batches; an order applied at once is in its request's span.
		TracerProvider: tp,
		Ended: func(store.Revocation, []sessions.Session) {
			logouts.Kick() // set below, before any request can revoke
		},
	})
	if err != nil {
		return nil, err
	}
	// A Redis restarted from an older snapshot, promoted from a lagging
	// replica, restored or emptied has lost revocations: the sessions they
	// ended are back. Every revocation is kept in the database for a
	// session's lifetime; this node reads the session store only once it
	// is the one the database says every kept revocation reached, and
	// replays them all into any other (events.Rewinds). Until the first
	// check, and during a replay, session reads answer 503.
	rewinds, err := events.NewRewinds(events.RewindConfig{
		Store:    st,
		Sessions: cached,
		Keep:     broker.DefaultSessionTTL,
		Logger:   log.With("surface", "revocations"),
	})
	if err != nil {
		return nil, err
	}
	first, cancelFirst := context.WithTimeout(ctx, 10*time.Second)
	if _, err := rewinds.Check(first); err != nil {
		// Run tries again every second; meanwhile sessions answer 503.
		log.Warn("session store not yet checked for lost revocations", "err", err)
	}
	cancelFirst()
	// One tenant's sign-ins finishing at once hold at most SignInTenant of
	// this node's CPU and database connections; counted in memory, per
	// node, no round trip. Refused answers at the ACS and callback get the
	// end-user page; code exchanges are only slowed (their code is spent).
	signIns := &ratelimit.Concurrency{Name: "signin_tenant", Limit: cfg.RateLimits.SignInTenant, Wait: ratelimit.ConcurrencyWait,
		OnLimited: reg.RateLimited, OnWait: reg.TenantCapWaited}
	exchanges := &ratelimit.Concurrency{Name: "token_tenant", Limit: cfg.RateLimits.SignInTenant, Wait: ratelimit.ConcurrencyWait,
		OnWait: reg.TenantCapWaited}
	registry := connections.NewRegistry(connections.Config{
		Types:             connectionTypes(),
		Issuer:            cfg.Issuer,
		Store:             st,
		Once:              cache,
		Sessions:          cached,
		Revoker:           revoker,
		HTTPClient:        outbound(safehttp.Options{}),
		AllowInsecureURLs: cfg.Dev,
		Logger:            log.With("surface", "connections"),
		Admit:             signIns.Admit,
		OnCertificates:    reg.CertificateExpiry,
	})
	provider, err := broker.New(broker.Config{
		Issuer:     cfg.Issuer,
		Store:      st,
		Sessions:   cached,
		Once:       cache,
		Revoker:    revoker,
		Keys:       keys,
		Connectors: registry,
		Usage:      meter,
		// Back-channel logout: no redirects, a short deadline.
		HTTPClient:     outbound(safehttp.Options{Timeout: 10 * time.Second, MaxRedirects: -1}),
		Logger:         log.With("surface", "broker"),
		LoginLimit:     limit(limits.Login),
		TokenLimit:     limit(limits.Token),
		OnUnverified:   reg.SSOUnverified,
		OnSignInFailed: reg.SignInFailed,
		SLO:            measurements,
		TenantLoginLimit: func(ctx context.Context, t store.Tenant) (bool, time.Duration) {
			return tenantLimits.CheckTenant(ctx, guard, t)
		},
		TenantTokenPace: exchanges.Pace,
	})
	if err != nil {
		return nil, err
	}
	if logouts, err = events.NewLogoutDispatcher(events.LogoutConfig{
		Store:          st,
		Sender:         provider,
		Logger:         log.With("surface", "backchannel"),
		TracerProvider: tp,
		OnOutcome: func(s store.DeliveryStatus) {
			reg.OutboundDelivery(metrics.KindBackchannelLogout, string(s))
		},
		// An application whose logout endpoint hangs holds up no other's.
		Patience: events.DefaultPatience,
	}); err != nil {
		return nil, err
	}
	// One tenant's SCIM writes hold at most SCIMTenantWrites of this
	// node's database connections at once; the rest are told to retry.
	scimWrites := &ratelimit.Concurrency{Name: "scim_tenant_writes", Limit: cfg.RateLimits.SCIMTenantWrites, Wait: ratelimit.ConcurrencyWait, OnWait: reg.TenantCapWaited,
		Key: ratelimit.ByTenant, Counts: func(c echo.Context) bool { return scim.IsWrite(c.Request().Method) },
		OnLimited: reg.RateLimited}
	directories, err := scim.New(scim.Config{
		Issuer:       cfg.Issuer,
		Store:        st,
		Sessions:     cached,
		Usage:        meter,
		Revoker:      revoker,
		Logger:       log.With("surface", "scim"),
		Limit:        scimLimits(limit(limits.SCIM), scimWrites.Middleware()),
		AuthFailures: guard.FailureLimit(scimAuthFailureRule),
	})
	if err != nil {
		return nil, err
	}
	resolver, err := domainverify.NewResolver(cfg.DNSResolver)
	if err != nil {
		return nil, err
	}
	selfServe, err := portal.New(portal.Config{
		Issuer:      cfg.Issuer,
		Store:       st,
		Connections: registry,
		SCIMBaseURL: directories.BaseURL,
		Resolver:    resolver,
		Product:     cfg.PortalProductName,
		LogoURL:     cfg.PortalLogoURL,
		Logger:      log.With("surface", "portal"),
	})
	if err != nil {
		return nil, err
	}
	api := adminportal.NewAPI(adminportal.APIConfig{
		AllowPrivateNetworks: cfg.AllowPrivateNetworks,
		Store:                st,
		Resolver:             resolver,
		Portal:               selfServe,
		Sessions:             cached,
		Revoker:              revoker,
		Connections:          registry,
		SCIMBaseURL:          directories.BaseURL,
		// Application changes take effect at once on this node.
		ApplicationCache: provider,
		Logger:           log.With("surface", "api"),
		Limit:            limit(limits.API),
		AuthFailures:     guard.FailureLimit(apiAuthFailureRule),
		Usage:            meter,
		SLO:              st,
		// POST /webhooks/{id}/recover reaches back no further.
		EventRetention: cfg.EventRetention,
	})
	operators := console.New(console.Config{
		Issuer:   cfg.Issuer,
		Store:    st,
		Tenants:  api, // pausing from the console is the API's PATCH
		Describe: describeCertificates(registry),
		// A failing webhook's page says when it will be disabled.
		WebhookDisableAfter: cfg.WebhookDisableAfter,
		// A tenant's page shows its service levels, as GET /tenants/{id}/slo.
		SLO: func(ctx context.Context, t store.Tenant) (slo.Result, error) {
			return slo.Report(ctx, st, t, time.Now())
		},
		// And its portal links are the API's POST /portal_links.
		PortalLink: func(ctx context.Context, a store.Actor, intent string) (string, time.Time, error) {
			return api.CreatePortalLink(ctx, a, intent, "")
		},
		// The support page lists a user's sessions and ends them as POST
		// /users/{id}/revoke_sessions does.
		Sessions:   cached,
		RevokeUser: api.RevokeUserSessions,
		// Failed sign-ins of unknown emails lock out as an operator's
		// do, counted where every node sees them.
		Attempts: cache,
		// Operators are few: a minute's budget per address that no
		// person reaches, against floods of guesses and made-up emails.
		SignInLimit: guard.Middleware(consoleSignInRule),
		Logger:      log.With("surface", "console"),
	})
	webhooks, err := events.New(events.Config{
		Store:          st,
		Client:         outbound(safehttp.Options{Timeout: events.DefaultTimeout}),
		Logger:         log.With("surface", "webhooks"),
		TracerProvider: tp,
		OnOutcome: func(s store.DeliveryStatus) {
			reg.OutboundDelivery(metrics.KindWebhook, string(s))
		},
		// A receiver that hangs holds up no other webhook's deliveries.
		Patience:     events.DefaultPatience,
		DisableAfter: cfg.WebhookDisableAfter,
		OnDisabled:   func(store.Webhook) { reg.WebhookDisabled() },
	})
	if err != nil {
		return nil, err
	}

	// Errors the server answers itself (a body over its limit, an unknown
	// route, a panic) speak each surface's own format.
	srv.RenderErrors(directories.Prefix(), directories.RenderError)
	for _, prefix := range []string{"/oauth/", broker.PathUserinfo} {
		srv.RenderErrors(prefix, provider.RenderOAuthError)
	}
	// The SSO URLs are a browser's too (the IdP posts the user's browser
	// to the ACS), and so are the portal's and the console's pages.
	for _, prefix := range []string{broker.PathAuthorize, broker.PathLogin, "/sso/"} {
		srv.RenderErrors(prefix, provider.RenderPageError)
	}
	srv.RenderErrors(portal.Path, selfServe.RenderError)
	srv.RenderErrors(console.Path, operators.RenderError)
	// A person who types a wrong URL gets a page; programs (and the
	// operator API, whoever calls it) keep JSON.
	srv.RenderBrowserErrors(provider.RenderPageError, "/api/")

	e := srv.Echo()
	if cfg.MetricsListen == "" {
		// Else /metrics is served on its own listener (serveMetrics).
		reg.Mount(e)
	}
	provider.Mount(e)
	// Test logins started in the portal end in the portal, never at the
	// broker.
	registry.Mount(e, selfServe.Complete(provider.Complete), provider.MeasureSignIn(), provider.PageLimit(limit(limits.Callback)))
	directories.Mount(e)
	api.Mount(e)
	selfServe.Mount(e)
	announce = func() {}
	operators.Mount(e)
	// A person who opens the issuer in a browser gets a page, not JSON.
	e.GET("/favicon.ico", func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, "/static/favicon.svg")
	})
	if cfg.Dev {
		if announce, err = mountDev(ctx, bg, e, cfg, st, registry, api, log); err != nil {
			return nil, err
		}
	} else {
		e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusFound, console.Path) })
	}

	if err := provider.Run(ctx); err != nil {
		return nil, err
	}
	bg.Go(provider.Wait)
	bg.Go(func() { logouts.Run(ctx) })
	bg.Go(func() { registry.Run(ctx, connectionMaintenance) })
	bg.Go(func() { webhooks.Run(ctx) })
	bg.Go(func() { meter.Run(ctx, usageSnapshots) })
	bg.Go(func() { measurements.Run(ctx, slo.DefaultFlushInterval) })
	bg.Go(func() { revoker.Run(ctx) })
	bg.Go(func() { rewinds.Run(ctx) })
	// Tenants deleted longer ago than the restore window are erased from
	// the database and the cache (lifecycle.Eraser).
	eraser := &lifecycle.Eraser{Store: st, Log: log.With("surface", "lifecycle"), TracerProvider: tp}
	if c, ok := cache.(lifecycle.Cache); ok {
		eraser.Cache = c
	}
	bg.Go(func() { eraser.Run(ctx, erasureInterval) })
	// Tombstones older than the horizon (the backup retention) protect no
	// backup that may still be restored: forgotten (lifecycle.TombstonePruner).
	if ts, ok := st.(lifecycle.TombstoneStore); ok && cfg.RedisURL != "" && cfg.TombstoneHorizon > 0 {
		tombs := &lifecycle.TombstonePruner{Store: ts, Horizon: cfg.TombstoneHorizon, Log: log.With("surface", "lifecycle")}
		bg.Go(func() { tombs.Run(ctx, erasureInterval) })
	}
	// Events older than the retention go, with their deliveries, so the
	// outbox does not grow with every sign-in for ever.
	pruner := &events.Pruner{Store: st, Retention: cfg.EventRetention, Log: log.With("surface", "events")}
	bg.Go(func() { pruner.Run(ctx, erasureInterval) })
	return announce, nil
}

// nodeName names this process among the nodes writing SLO measurements:
// the host name (a pod's name) and a random suffix, so that a restarted
// process never continues another's rows.
func nodeName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// describeCertificates reads a connection's IdP certificates for the
// console's health column.
func describeCertificates(reg *connections.Registry) func(store.Connection) ([]console.Certificate, error) {
	return func(conn store.Connection) ([]console.Certificate, error) {
		v, err := reg.Describe(conn)
		if err != nil {
			return nil, err
		}
		sv, ok := v.Details.(*saml.View)
		if !ok {
			return nil, nil
		}
		out := make([]console.Certificate, 0, len(sv.IdPCertificates))
		for _, c := range sv.IdPCertificates {
			out = append(out, console.Certificate{NotAfter: c.NotAfter, Expiring: c.Expiring, Expired: c.Expired})
		}
		return out, nil
	}
}

// mountDev seeds, idempotently, what --dev promises (tenant Example with the
// verified domain example.com, a SAML connection to the built-in test IdP,
// a demo app) and serves the IdP at /dev/idp and the app at /dev/app. The
// returned func tells the user where to start, once the port is bound.
func mountDev(ctx context.Context, bg *sync.WaitGroup, e *echo.Echo, cfg Config, st store.Store, registry *connections.Registry, api *adminportal.API, log *slog.Logger) (func(), error) {
	dev, err := devmode.Seed(ctx, st, registry, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	if dev.Restored {
		log.WarnContext(ctx, "dev: the demo tenant had been deleted; restored it so that the demo works", "tenant_id", dev.TenantID)
	}
	dev.Mount(e)
	op, created, err := console.SeedDevOperator(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	dev.MountLanding(e, devmode.Landing{
		ConsoleEmail: op.Email,
		APIReference: openapi.Path,
		APIPage:      console.Path + "/api",
		// Each click on the landing page's portal button is a fresh link.
		PortalLink: func(ctx context.Context, tenantID string) (string, error) {
			link, _, err := api.CreatePortalLink(store.WithTenant(ctx, tenantID),
				store.Actor{Type: "system", ID: "dev"}, "sso", "")
			return link, err
		},
	})
	return func() {
		log.Info("dev: start here", "url", cfg.Issuer+"/")
		if created {
			// Printed once, at creation: nothing else knows them.
			log.Warn("dev: console operator created; these credentials are shown only now",
				"url", cfg.Issuer+console.Path, "email", op.Email, "password", op.Password, "totp_secret", op.TOTPSecret)
		}
		log.Info("dev: open the demo app and sign in through the built-in test IdP",
			"url", cfg.Issuer+"/dev/app", "tenant_id", dev.TenantID, "connection_id", dev.ConnectionID, "client_id", dev.AppID)
		// Through the broker's own SCIM endpoint, as the demo app's button
		// does: in the background, since announce runs before the server
		// accepts its first connection; joined at shutdown like the rest.
		bg.Go(func() {
			if users, err := dev.RestoreDemoUsers(ctx); err != nil && ctx.Err() == nil {
				log.Warn("dev: could not re-provision the demo users", "err", err)
			} else if len(users) > 0 {
				log.Warn("dev: re-provisioned the demo users an earlier run deprovisioned, so that the demo works", "users", users)
			}
		})
		if cfg.BootstrapAPIKey == "" {
			log.Info("dev: to call the operator API, create a key with \"idbroker apikey create\" or set " + envBootstrapAPIKey)
		}
	}, nil
}

// connectionTypes are the kinds of upstream IdP this broker offers, by
// the name the API and the store use. A new type is its package under
// connections/ and one line here.
func connectionTypes() connections.Types {
	return connections.Types{
		saml.Name: saml.New(),
		oidc.Name: oidc.New(),
	}
}

// scimLimits runs the SCIM surface's per-tenant rate limit, then its cap
// on writes in flight (either may be nil): a request the rate limit
// refuses takes no place of the cap.
func scimLimits(rate, writes echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		next = writes(next)
		if rate != nil {
			next = rate(next)
		}
		return next
	}
}
