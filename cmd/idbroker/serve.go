package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/audit"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/metrics"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/internal/tracing"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

const serveHelp = `
Run the broker: the OpenID Provider, the SSO endpoints of every connection,
the SCIM server, the operator API, /healthz, /readyz and /metrics.

At start, serve migrates the database (unless --no-migrate), creates the
token-signing keys if there are none, and makes IDBROKER_BOOTSTRAP_API_KEY a
valid operator key. It stops gracefully on SIGINT or SIGTERM.

--dev is for trying idbroker on a laptop: it allows plain http issuers and
private networks, and seeds a demo tenant (example.com) whose SAML connection
goes to a built-in test IdP at /dev/idp, a demo app at /dev/app (sign in,
then "Deprovision me"), and a console operator whose password and
authenticator key are logged once: open {issuer}/ to start.

Environment (flags override; migrate, apikey, operator, keys and audit read
it too, and their --database-url and --issuer override it likewise):

	IDBROKER_ISSUER                  public base URL (default http://localhost:<listen port>)
	IDBROKER_LISTEN                  host:port to listen on (default :8080)
	IDBROKER_DATABASE_URL            postgres://… or sqlite://path (default sqlite://.idbroker/idbroker.db)
	IDBROKER_REDIS_URL               redis:// or rediss://; empty keeps sessions in process
	IDBROKER_MASTER_KEY              base64 32-byte key sealing secrets at rest; required on Postgres
	IDBROKER_MASTER_KEY_PREVIOUS     older master keys (comma-separated) that still open secrets until "keys rewrap"
	IDBROKER_BOOTSTRAP_API_KEY       an operator API key to accept (at least 32 characters)
	IDBROKER_ALLOW_PRIVATE_NETWORKS  let outbound requests reach private addresses (true/false)
	IDBROKER_LOG_LEVEL               debug, info, warn or error (default info)
	IDBROKER_LOG_FORMAT              text or json (default text)
	IDBROKER_TRUSTED_PROXIES         CIDRs of proxies whose X-Forwarded-For / Forwarded is believed (default none)
	IDBROKER_RATE_LIMIT_SCIM         SCIM requests per tenant, N/duration or 0 (default 600/1m)
	IDBROKER_RATE_LIMIT_API          operator API requests per key (default 1200/1m)
	IDBROKER_RATE_LIMIT_LOGIN        sign-in requests per client address (default 3000/1m)
	IDBROKER_RATE_LIMIT_LOGIN_TENANT sign-ins sent to one tenant's IdP (default 6000/1m)
	IDBROKER_RATE_LIMIT_SSO_CALLBACK SAML ACS / OIDC callback posts per client address (default 3000/1m)
	IDBROKER_RATE_LIMIT_TOKEN        token and revocation requests per client_id and address (default 6000/1m)
	IDBROKER_SCIM_TENANT_WRITES      SCIM writes of one tenant a node serves at once, others wait up to 1s, then 429; 0 for no cap (default 4)
	IDBROKER_SIGNIN_TENANT_CONCURRENCY sign-ins of one tenant a node finishes at once (ACS, OIDC callback, code exchange), others wait up to 1s, then the ACS and callback answer 429; 0 for no cap (default 4, or the CPU count when larger)
	IDBROKER_METRICS_TENANT_LABELS   tenants, the busiest, labelled by id in per-tenant metrics (default 10)
	IDBROKER_METRICS_LISTEN          host:port serving /metrics apart, instead of on IDBROKER_LISTEN (default none)
	IDBROKER_REQUEST_TIMEOUT         how long a request waits on PostgreSQL or Redis before a 503, 1s to 55s (default 30s)
	IDBROKER_EVENT_RETENTION_DAYS    days events and their deliveries are kept, 7 to 3650 or 0 for ever (default 90)
	IDBROKER_TOMBSTONE_HORIZON_DAYS  days revocations are kept in Redis against a database restore: your backup retention, 31 to 3650 or 0 for ever (default 365)
	IDBROKER_AUDIT_CHECKPOINT_INTERVAL how often a signed checkpoint of the audit chains is logged, 1m or more or 0 for none (default 1h)
	IDBROKER_WEBHOOK_DISABLE_AFTER_DAYS days of nothing but failed attempts before a webhook is disabled, 1 to 365 or 0 never (default 5)
	IDBROKER_PORTAL_PRODUCT_NAME     your product's name on the self-serve portal's pages (default idbroker)
	IDBROKER_PORTAL_LOGO_URL         absolute http(s) URL of your logo beside that name (default none)
	IDBROKER_DNS_RESOLVER            host:port of the DNS server domain verification asks (default the system's)

Tracing (off by default; read by the OpenTelemetry SDK):

	OTEL_EXPORTER_OTLP_ENDPOINT      OTLP/HTTP collector base URL; setting it switches tracing on
	OTEL_EXPORTER_OTLP_*             traces endpoint, protocol (http/protobuf), headers, TLS, timeout
	OTEL_TRACES_SAMPLER              sampling (default parentbased_always_on)

Go runtime:

	GOGC                             collector's GC percent (default here 400, not Go's 100)
	GOMEMLIMIT                       soft memory limit (default 90 % of the cgroup's memory limit, if any)`

// serveFlagEnv maps the flags of serve to the variables they override.
func serveFlagEnv() map[string]string {
	return map[string]string{
		"listen":       envListen,
		"issuer":       envIssuer,
		"database-url": envDatabaseURL,
		"redis-url":    envRedisURL,
	}
}

func runServe(ctx context.Context, c *cli, args []string) error {
	fs := newFlagSet(c, "serve [flags]", serveHelp)
	dev := fs.Bool("dev", false, "development mode: demo tenant, http issuer and private networks allowed")
	noMigrate := fs.Bool("no-migrate", false, "do not migrate the database at start (run \"idbroker migrate up\" before)")
	fs.String("listen", "", "host:port to listen on (overrides "+envListen+")")
	fs.String("issuer", "", "public base URL (overrides "+envIssuer+")")
	fs.String("database-url", "", "database URL (overrides "+envDatabaseURL+")")
	fs.String("redis-url", "", "Redis URL for shared sessions (overrides "+envRedisURL+")")
	if err := parseFlags(c, fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(configSource{
		getenv: c.getenv,
		flags:  givenFlags(fs, serveFlagEnv()),
		dev:    *dev,
	})
	if err != nil {
		return err
	}
	log := newLogger(c.stderr, cfg)
	// Tracing is configured by the standard OTEL_* variables, which the
	// OpenTelemetry SDK reads itself; off unless they name an endpoint.
	ver, _ := buildVersion()
	tp, err := tracing.Setup(ctx, tracing.Options{Getenv: c.getenv, ServiceVersion: ver})
	if err != nil {
		return err
	}
	if tp.Enabled() {
		// Log lines written while serving a traced request name it.
		log = slog.New(tracing.LogHandler(log.Handler()))
	}
	// Libraries that log through the default logger (zitadel/oidc's op)
	// then log in the same format, level and stream: main wiring is the one
	// place that may set it.
	slog.SetDefault(slog.New(opLogHandler{log.Handler()}))
	// So does the Redis client, whose own lines would be plain text, one
	// per request while Redis is down.
	sessions.SetRedisLogger(log)
	tuneGC(c.getenv, log)
	return serve(ctx, cfg, !*noMigrate, log, tp)
}

// serve runs the broker until ctx is cancelled (SIGINT or SIGTERM), then
// drains in-flight requests and closes the database and the cache; last,
// it exports the spans still batched (tp, nil when tracing is off).
func serve(ctx context.Context, cfg Config, migrate bool, log *slog.Logger, tp *tracing.Provider) error {
	defer func() {
		// Runs after every other deferred close: no span can start after.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), traceFlushTimeout)
		defer cancel()
		if err := tp.Shutdown(fctx); err != nil {
			log.Warn("spans not exported at shutdown", "err", err)
		}
	}()
	ver, rev := buildVersion()
	log.Info("starting idbroker", "version", ver, "commit", rev, "config", cfg)
	if tp.Enabled() {
		log.Info("tracing on: exporting spans over OTLP/HTTP", "endpoint", tp.Endpoint())
	}
	if cfg.Dev {
		log.Warn("DEVELOPMENT MODE: plain-http issuers and private networks are allowed and a demo tenant is seeded; never run --dev in production")
	}

	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if migrate {
		if err := st.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate database: %w", err)
		}
	} else if err := checkSchema(ctx, st); err != nil {
		return err
	}
	warnNewerSchema(ctx, st, log)

	cache, closeCache, err := openSessions(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeCache()
	// Before anything authenticates against the database: on one restored
	// from a backup, what was revoked since is revoked again first.
	if err := reapplyAtStart(ctx, st, log); err != nil {
		return err
	}

	// Background loops (key reloads, webhook deliveries, IdP metadata
	// refresh) stop with the server, and are waited for before the
	// database and the cache close under them.
	ctx, cancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer func() {
		cancel()
		bg.Wait()
	}()
	keys, err := startSigning(ctx, &bg, st, log)
	if errors.Is(err, secrets.ErrOpen) {
		// The first sealed value a node reads is a signing key: a master
		// key other than the deployment's stops the start here, before
		// this node seals anything the others could not open.
		return fmt.Errorf("signing keys: %w: %s does not open the secrets this database holds "+
			"(this node's key is %s); every node of a deployment needs the same %s, "+
			"and a key replaced but not yet rewrapped (idbroker keys rewrap) in %s", err, envMasterKey, masterKeyName(cfg), envMasterKey, envMasterKeyPrevious)
	}
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	// The audit chains' key, made once by the first node: appends would
	// make it too, but a master key that cannot open it should stop the
	// start, not the first change.
	if err := st.EnsureAuditKey(ctx); err != nil {
		return fmt.Errorf("audit key: %w", err)
	}
	if cfg.AuditCheckpoint > 0 {
		// Logged, the checkpoint leaves the host with the logs: out of
		// reach of whoever can write the database, it catches the newest
		// audit rows removed (idbroker audit verify --checkpoint).
		cp := &audit.Checkpointer{Store: st, Signer: keys, Log: log.With("surface", "audit")}
		bg.Go(func() { cp.Run(ctx, cfg.AuditCheckpoint) })
	}
	if cfg.BootstrapAPIKey != "" {
		if err := adminportal.EnsureBootstrapKey(ctx, st, cfg.BootstrapAPIKey); err != nil {
			return fmt.Errorf("bootstrap API key: %w", err)
		}
		log.Info("bootstrap API key accepted (" + envBootstrapAPIKey + ")")
	}

	reg := metrics.NewWithOptions(metrics.Options{TenantLabels: cfg.MetricsTenantLabels})
	// /readyz and idbroker_dependency_up run the same checks.
	checks := map[string]httpserver.CheckFunc{
		"database": st.Ping,
		"cache":    cacheReady(cache),
	}
	reg.Watch(metrics.Watch{
		Queues:       queueStats(st),
		Dependencies: dependencyChecks(checks),
		Logger:       log,
	})
	srv := httpserver.New(httpserver.Config{
		Listen:        cfg.Listen,
		AnswerTimeout: cfg.RequestTimeout,
		// A SCIM group written whole carries all its members.
		BodyLimitFor:   scim.BodyLimitFor,
		TracerProvider: tp.TracerProvider(),
		Logger:         log,
		ObserveRequest: reg.ObserveRequest,
		// Rate limits, audit rows and logs name the client behind a
		// trusted proxy, never an address a client claims.
		IPExtractor: httpserver.IPExtractor(cfg.TrustedProxies),
		Checks:      checks,
	})
	announce, err := mountSurfaces(ctx, &bg, srv, reg, tp.TracerProvider(), cfg, st, cache, keys, log)
	if err != nil {
		return err
	}
	// Bind first, then announce: "ready" (and --dev's demo URL) must never
	// be logged by a broker that then finds its port taken.
	ln, err := srv.Listen(ctx)
	if err != nil {
		return fmt.Errorf("%w (set %s or --listen to another host:port)", err, envListen)
	}
	if cfg.MetricsListen != "" {
		mln, err := listenMetrics(ctx, cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return err
		}
		serveMetrics(ctx, &bg, mln, reg, log)
	}
	log.Info("idbroker ready", "issuer", cfg.Issuer, "listen", ln.Addr().String())
	announce()
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	log.Info("idbroker stopped")
	return nil
}

// traceFlushTimeout bounds the export of the last spans at shutdown: a
// collector that is down must not hold the process.
const traceFlushTimeout = 5 * time.Second

// checkSchema refuses to serve on a database whose schema is behind this
// binary (--no-migrate before "idbroker migrate up" ran): every request
// would fail, so fail once, at start, saying what to do.
func checkSchema(ctx context.Context, st store.Store) error {
	states, err := st.MigrationStatus(ctx)
	if err != nil {
		return fmt.Errorf("read migration status: %w", err)
	}
	var pending []string
	for _, m := range states {
		if m.AppliedAt == nil {
			pending = append(pending, fmt.Sprintf("%04d_%s", m.Version, m.Name))
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("database schema is behind this binary (%d pending migrations: %s); "+
			"run \"idbroker migrate up\", or start without --no-migrate", len(pending), strings.Join(pending, ", "))
	}
	return nil
}

// warnNewerSchema says, at start, when a newer idbroker migrated the
// database: after a rollback, or on an old node of a rolling upgrade. The
// node serves (refusing would stop a rolling upgrade's old nodes from
// restarting), but what the newer version wrote may not all be readable
// here, and the operator should know why.
func warnNewerSchema(ctx context.Context, st store.Store, log *slog.Logger) {
	states, err := st.MigrationStatus(ctx)
	if err != nil {
		log.WarnContext(ctx, "read migration status", "err", err)
		return
	}
	if newer := newerMigrations(states); len(newer) > 0 {
		log.WarnContext(ctx, "the database was migrated by a newer idbroker than this one; "+
			"see \"Rolling back\" in docs/reference/operations.md", "migrations", strings.Join(newer, ", "))
	}
}

// newerMigrations names the migrations of states that this binary lacks.
func newerMigrations(states []store.MigrationState) []string {
	var out []string
	for _, m := range states {
		if m.Newer {
			out = append(out, fmt.Sprintf("%04d_%s", m.Version, m.Name))
		}
	}
	return out
}

// sessionStore is what the broker needs of package sessions: every
// implementation also answers Ping for /readyz.
type sessionStore interface {
	sessions.Store
	sessions.OnceCache
	sessions.Limiter
	sessions.Counter
	Ping(ctx context.Context) error
}

// cacheReady is the readiness check of the session store: it answers,
// and this node trusts it — not while it checks a Redis that restarted or
// failed over for lost revocations and replays them (events.Rewinds), when
// every session read answers 503 anyway.
func cacheReady(cache sessionStore) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := cache.Ping(ctx); err != nil {
			return err
		}
		if s, ok := cache.(interface{ Suspended() bool }); ok && s.Suspended() {
			return sessions.ErrSuspended
		}
		return nil
	}
}

// queueStats reads the outbound queues for the gauges of /metrics.
func queueStats(st store.Store) func(ctx context.Context) (metrics.Queues, error) {
	return func(ctx context.Context) (metrics.Queues, error) {
		s, err := st.QueueStats(ctx)
		return metrics.Queues{
			Revocations:        metrics.QueueState{Pending: s.Revocations.Pending, Oldest: s.Revocations.Oldest},
			BackchannelLogouts: metrics.QueueState{Pending: s.Logouts.Pending, Oldest: s.Logouts.Oldest},
			WebhookDeliveries:  metrics.QueueState{Pending: s.Deliveries.Pending, Oldest: s.Deliveries.Oldest},
		}, err
	}
}

// dependencyChecks are the checks of /readyz as metrics.Watch takes them.
func dependencyChecks(checks map[string]httpserver.CheckFunc) map[string]func(context.Context) error {
	out := make(map[string]func(context.Context) error, len(checks))
	for name, fn := range checks {
		out[name] = fn
	}
	return out
}

// openSessions returns the shared-state store: Redis when configured, else
// in process. The returned func releases it.
func openSessions(ctx context.Context, cfg Config) (sessionStore, func(), error) {
	if cfg.RedisURL == "" {
		return sessions.NewMemory(), func() {}, nil
	}
	client, err := sessions.OpenRedis(ctx, cfg.RedisURL)
	if err != nil {
		// The error names the address, not the URL with its password.
		return nil, nil, fmt.Errorf("connect to Redis: %w", err)
	}
	return sessions.NewRedis(client, sessions.RedisOptions{}), func() { client.Close() }, nil
}

// masterKeyName names the node's master key by its id (never the key), as
// the start-up log line does.
func masterKeyName(cfg Config) string {
	if cfg.MasterKey == nil {
		return "the one in " + cfg.MasterKeyFile
	}
	return cfg.MasterKey.String()
}
