package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/idbroker/idbroker/admin-portal/domainverify"
	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/metrics"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/lifecycle"
)

// Environment variables read by the broker. Flags, where a subcommand has
// them, take precedence.
const (
	envIssuer               = "IDBROKER_ISSUER"
	envListen               = "IDBROKER_LISTEN"
	envDatabaseURL          = "IDBROKER_DATABASE_URL"
	envRedisURL             = "IDBROKER_REDIS_URL"
	envMasterKey            = "IDBROKER_MASTER_KEY"
	envMasterKeyPrevious    = "IDBROKER_MASTER_KEY_PREVIOUS"
	envBootstrapAPIKey      = "IDBROKER_BOOTSTRAP_API_KEY"
	envAllowPrivateNetworks = "IDBROKER_ALLOW_PRIVATE_NETWORKS"
	envLogLevel             = "IDBROKER_LOG_LEVEL"
	envLogFormat            = "IDBROKER_LOG_FORMAT"
	envTrustedProxies       = "IDBROKER_TRUSTED_PROXIES"
	envDNSResolver          = "IDBROKER_DNS_RESOLVER"
	envPortalProductName    = "IDBROKER_PORTAL_PRODUCT_NAME"
	envPortalLogoURL        = "IDBROKER_PORTAL_LOGO_URL"
	envMetricsTenantLabels  = "IDBROKER_METRICS_TENANT_LABELS"
	envMetricsListen        = "IDBROKER_METRICS_LISTEN"
	envEventRetentionDays   = "IDBROKER_EVENT_RETENTION_DAYS"
	envTombstoneHorizonDays = "IDBROKER_TOMBSTONE_HORIZON_DAYS"
	envWebhookDisableDays   = "IDBROKER_WEBHOOK_DISABLE_AFTER_DAYS"
	envRequestTimeout       = "IDBROKER_REQUEST_TIMEOUT"
	envAuditCheckpoint      = "IDBROKER_AUDIT_CHECKPOINT_INTERVAL"
)

// defaultAuditCheckpoint is how often serve logs a signed audit
// checkpoint; minAuditCheckpoint bounds it below, as each reads the head
// of every tenant's chain.
const (
	defaultAuditCheckpoint = time.Hour
	minAuditCheckpoint     = time.Minute
)

// maxRequestTimeout bounds IDBROKER_REQUEST_TIMEOUT below the server's
// write timeout, past which a client gets no answer at all, not a 503.
const maxRequestTimeout = httpserver.DefaultWriteTimeout - 5*time.Second

// maxMetricsTenantLabels bounds IDBROKER_METRICS_TENANT_LABELS: each
// labelled tenant costs a few dozen series.
const maxMetricsTenantLabels = 1000

// maxEventRetentionDays bounds IDBROKER_EVENT_RETENTION_DAYS: ten years,
// where a duration still fits comfortably (0 means for ever).
const maxEventRetentionDays = 3650

// maxWebhookDisableDays bounds IDBROKER_WEBHOOK_DISABLE_AFTER_DAYS: past a
// year of failures, 0 (never) says what is meant.
const maxWebhookDisableDays = 365

// Defaults of the embedded deployment: everything in ./.idbroker.
const (
	defaultIssuer      = "http://localhost:8080"
	defaultListen      = ":8080"
	defaultDatabaseURL = "sqlite://.idbroker/idbroker.db"
	masterKeyFileName  = "master.key"
	minBootstrapKeyLen = 32
	maxBootstrapKeyLen = 256
)

// Database drivers a Config can name.
const (
	driverPostgres = "postgres"
	driverSQLite   = "sqlite"
)

// Config is the broker's validated configuration. It is built once, by
// loadConfig, and never changed afterwards.
type Config struct {
	// Issuer is the public base URL, without a trailing slash.
	Issuer string
	// Listen is the host:port the HTTP server binds.
	Listen string

	// DatabaseURL is what store.Open receives: a postgres:// URL as given,
	// or sqlite:// followed by an absolute file path.
	DatabaseURL string
	// Driver is driverPostgres or driverSQLite.
	Driver string
	// SQLitePath is the absolute path of the database file (SQLite only).
	SQLitePath string

	// RedisURL is empty for in-process sessions.
	RedisURL string

	// MasterKey is the key that seals secrets at rest. It is nil when it
	// must be read from (or created in) MasterKeyFile.
	MasterKey *secrets.MasterKey
	// MasterKeyFile is where the embedded deployment keeps its generated
	// master key: master.key beside the SQLite file. Empty on PostgreSQL,
	// where IDBROKER_MASTER_KEY is required.
	MasterKeyFile string
	// PreviousMasterKeys still open secrets sealed before a rotation
	// (IDBROKER_MASTER_KEY_PREVIOUS); `keys rewrap` makes them unneeded.
	PreviousMasterKeys []secrets.MasterKey

	// BootstrapAPIKey, when set, is made a valid operator API key at start.
	BootstrapAPIKey string

	// AllowPrivateNetworks lets outbound requests reach loopback and
	// private addresses (self-hosted IdPs, tests, --dev).
	AllowPrivateNetworks bool
	// Dev is serve --dev: a demo tenant and relaxed issuer rules.
	Dev bool

	LogLevel  slog.Level
	LogFormat string // "text" or "json"

	// TrustedProxies are the peers whose X-Forwarded-For / Forwarded
	// headers name the client; from anyone else those headers are ignored.
	TrustedProxies []netip.Prefix

	// RateLimits are the per-tenant, per-key and per-address budgets.
	RateLimits RateLimits

	// DNSResolver is the DNS server ("host:port") that domain
	// verification asks; empty means the system's.
	DNSResolver string
	// PortalProductName and PortalLogoURL are the SaaS vendor's brand on
	// the self-serve portal's pages.
	PortalProductName string
	PortalLogoURL     string

	// MetricsTenantLabels is how many tenants, the busiest, the
	// per-tenant metrics label by id; the others are "other".
	MetricsTenantLabels int
	// MetricsListen, when set, is the host:port of a listener of its own
	// for GET /metrics, which the public listener then no longer serves.
	MetricsListen string

	// EventRetention is how long events (and the deliveries of each) are
	// kept; negative keeps them for ever.
	EventRetention time.Duration
	// TombstoneHorizon is how long revocations kept outside the database
	// (tombstones) are kept: the backup retention and a margin. Negative
	// keeps them for ever.
	TombstoneHorizon time.Duration
	// WebhookDisableAfter is how long every attempt at a webhook fails
	// before the dispatcher disables it (events.Config.DisableAfter);
	// negative never.
	WebhookDisableAfter time.Duration

	// RequestTimeout is how long a request may wait on the database or
	// Redis before its answer begins; then it is 503 with Retry-After.
	RequestTimeout time.Duration

	// AuditCheckpoint is how often a signed checkpoint of every audit
	// chain's head is logged; 0 logs none.
	AuditCheckpoint time.Duration
}

// LogValue describes the configuration for the start-up log line. Secrets
// are reduced to whether they are set; URLs lose their passwords.
func (c Config) LogValue() slog.Value {
	sessions := "in-process"
	if c.RedisURL != "" {
		sessions = redactURL(c.RedisURL)
	}
	masterKey, masterKeyID := "IDBROKER_MASTER_KEY", ""
	if c.MasterKey == nil {
		masterKey = c.MasterKeyFile
	} else {
		// Its id, never the key: nodes of one deployment must log the
		// same one.
		masterKeyID = c.MasterKey.String()
	}
	return slog.GroupValue(
		slog.String("issuer", c.Issuer),
		slog.String("listen", c.Listen),
		slog.String("database", redactURL(c.DatabaseURL)),
		slog.String("sessions", sessions),
		slog.String("master_key", masterKey),
		slog.String("master_key_id", masterKeyID),
		slog.Int("previous_master_keys", len(c.PreviousMasterKeys)),
		slog.Bool("bootstrap_api_key", c.BootstrapAPIKey != ""),
		slog.Bool("allow_private_networks", c.AllowPrivateNetworks),
		slog.Bool("dev", c.Dev),
		slog.Any("trusted_proxies", c.TrustedProxies),
		slog.String("metrics_listen", c.MetricsListen),
		slog.Group("rate_limits",
			slog.String("scim", c.RateLimits.SCIM.String()),
			slog.String("api", c.RateLimits.API.String()),
			slog.String("login", c.RateLimits.Login.String()),
			slog.String("login_tenant", c.RateLimits.LoginTenant.String()),
			slog.String("sso_callback", c.RateLimits.Callback.String()),
			slog.String("token", c.RateLimits.Token.String()),
			slog.Int("scim_tenant_writes", c.RateLimits.SCIMTenantWrites),
			slog.Int("signin_tenant", c.RateLimits.SignInTenant)),
	)
}

// configSource is where loadConfig reads raw values: command-line flags
// first (keyed by the environment variable they stand for), then the
// environment.
type configSource struct {
	getenv func(string) string
	// flags holds the flags that were given on the command line, by the
	// name of the environment variable each overrides.
	flags map[string]flagValue
	// dev is serve --dev.
	dev bool
}

type flagValue struct {
	name  string // "--listen"
	value string
}

// get returns the raw value of the variable env and the name to use for it
// in error messages: the flag when the flag was given, else the variable.
func (s configSource) get(env string) (value, origin string) {
	if f, ok := s.flags[env]; ok {
		return f.value, f.name + " (" + env + ")"
	}
	if s.getenv == nil {
		return "", env
	}
	return s.getenv(env), env
}

// ConfigError is one bad configuration value. Its message names the
// variable (or flag) and what is wrong, and never contains a secret.
type ConfigError struct {
	Name string // IDBROKER_LISTEN, or "--listen (IDBROKER_LISTEN)"
	Msg  string
}

func (e *ConfigError) Error() string { return e.Name + ": " + e.Msg }

// loadConfig builds the Config from src, checking every value. It reports
// all bad values at once (errors.Join of *ConfigError), so that an operator
// fixes their deployment in one round.
func loadConfig(src configSource) (Config, error) {
	c := Config{Dev: src.dev}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, &ConfigError{Name: name, Msg: fmt.Sprintf(format, args...)})
	}

	// Bools first: --dev implies private networks, and the issuer check
	// depends on --dev.
	if v, name := src.get(envAllowPrivateNetworks); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(name, "%q is not a boolean (use true or false)", v)
		}
		c.AllowPrivateNetworks = b
	}
	if c.Dev {
		c.AllowPrivateNetworks = true
	}

	if v, name := src.get(envListen); v == "" {
		c.Listen = defaultListen
	} else if err := checkListen(v); err != nil {
		bad(name, "%v", err)
	} else {
		c.Listen = v
	}

	switch v, name := src.get(envIssuer); {
	case v != "":
		if iss, err := parseIssuer(v, c.Dev); err != nil {
			bad(name, "%v", err)
		} else {
			c.Issuer = iss
		}
	case c.Listen != "":
		// Unset, the issuer follows the port: "serve --listen :9000" on a
		// laptop is reached at http://localhost:9000.
		c.Issuer = defaultIssuerFor(c.Listen)
	}

	dbName := envDatabaseURL
	dbURL, name := src.get(envDatabaseURL)
	if dbURL == "" {
		dbURL = defaultDatabaseURL
	} else {
		dbName = name
	}
	if err := c.setDatabase(dbURL); err != nil {
		bad(dbName, "%v", err)
	}

	if v, name := src.get(envDNSResolver); v != "" {
		if _, err := domainverify.NewResolver(v); err != nil {
			bad(name, "%q is not a DNS server address (host:port)", v)
		} else {
			c.DNSResolver = v
		}
	}
	if v, _ := src.get(envPortalProductName); v != "" {
		c.PortalProductName = strings.TrimSpace(v)
	}
	if v, name := src.get(envPortalLogoURL); v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(name, "%q is not an absolute http(s) URL", v)
		} else {
			c.PortalLogoURL = v
		}
	}

	c.MetricsTenantLabels = metrics.DefaultTenantLabels
	if v, name := src.get(envMetricsTenantLabels); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > maxMetricsTenantLabels {
			bad(name, "%q is not a number of tenants from 0 to %d", v, maxMetricsTenantLabels)
		} else {
			c.MetricsTenantLabels = n
		}
	}

	if v, name := src.get(envMetricsListen); v != "" {
		switch err := checkListen(v); {
		case err != nil:
			bad(name, "%v", err)
		case v == c.Listen:
			bad(name, "%q is the address of the main listener (%s): give the metrics another port", v, envListen)
		default:
			c.MetricsListen = v
		}
	}

	c.EventRetention = events.DefaultRetention
	if v, name := src.get(envEventRetentionDays); v != "" {
		minDays := int(events.MinRetention / (24 * time.Hour))
		switch n, err := strconv.Atoi(strings.TrimSpace(v)); {
		case err == nil && n == 0:
			c.EventRetention = -1 // keep for ever
		case err != nil || n < minDays || n > maxEventRetentionDays:
			bad(name, "%q is not a number of days from %d to %d, or 0 to keep events for ever", v, minDays, maxEventRetentionDays)
		default:
			c.EventRetention = time.Duration(n) * 24 * time.Hour
		}
	}

	c.TombstoneHorizon = lifecycle.DefaultTombstoneHorizon
	if v, name := src.get(envTombstoneHorizonDays); v != "" {
		minDays := int(lifecycle.MinTombstoneHorizon / (24 * time.Hour))
		switch n, err := strconv.Atoi(strings.TrimSpace(v)); {
		case err == nil && n == 0:
			c.TombstoneHorizon = -1 // keep for ever
		case err != nil || n < minDays || n > maxEventRetentionDays:
			bad(name, "%q is not a number of days from %d to %d, or 0 to keep tombstones for ever", v, minDays, maxEventRetentionDays)
		default:
			c.TombstoneHorizon = time.Duration(n) * 24 * time.Hour
		}
	}

	c.WebhookDisableAfter = events.DefaultDisableAfter
	if v, name := src.get(envWebhookDisableDays); v != "" {
		minDays := int(events.MinDisableAfter / (24 * time.Hour))
		switch n, err := strconv.Atoi(strings.TrimSpace(v)); {
		case err == nil && n == 0:
			c.WebhookDisableAfter = -1 // never
		case err != nil || n < minDays || n > maxWebhookDisableDays:
			bad(name, "%q is not a number of days from %d to %d, or 0 never to disable a failing webhook", v, minDays, maxWebhookDisableDays)
		default:
			c.WebhookDisableAfter = time.Duration(n) * 24 * time.Hour
		}
	}

	c.RequestTimeout = httpserver.DefaultAnswerTimeout
	if v, name := src.get(envRequestTimeout); v != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < time.Second || d > maxRequestTimeout {
			bad(name, "%q is not a duration from 1s to %s", v, maxRequestTimeout)
		} else {
			c.RequestTimeout = d
		}
	}

	c.AuditCheckpoint = defaultAuditCheckpoint
	if v, name := src.get(envAuditCheckpoint); v != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		switch {
		case err == nil && d == 0:
			c.AuditCheckpoint = 0
		case err != nil || d < minAuditCheckpoint:
			bad(name, "%q is not a duration of %s or more, or 0 for none", v, minAuditCheckpoint)
		default:
			c.AuditCheckpoint = d
		}
	}

	if v, name := src.get(envRedisURL); v != "" {
		if err := checkRedisURL(v); err != nil {
			bad(name, "%v", err)
		} else {
			c.RedisURL = v
		}
	}

	switch v, name := src.get(envMasterKey); {
	case v != "":
		key, err := secrets.ParseMasterKey(v)
		if err != nil {
			// ParseMasterKey never repeats the value it was given.
			bad(name, "%s", strings.TrimPrefix(err.Error(), "secrets: "))
		} else {
			c.MasterKey = &key
		}
	case c.Driver == driverPostgres:
		bad(name, "required with a PostgreSQL database: every node must seal and open secrets "+
			"with the same key (generate one with `openssl rand -base64 32`)")
	case c.Driver == driverSQLite:
		c.MasterKeyFile = filepath.Join(filepath.Dir(c.SQLitePath), masterKeyFileName)
	}

	if v, name := src.get(envMasterKeyPrevious); v != "" {
		for i, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
			key, err := secrets.ParseMasterKey(f)
			if err != nil {
				bad(name, "key %d: %s", i+1, strings.TrimPrefix(err.Error(), "secrets: "))
				continue
			}
			c.PreviousMasterKeys = append(c.PreviousMasterKeys, key)
		}
	}

	if v, name := src.get(envBootstrapAPIKey); v != "" {
		if err := checkBootstrapKey(v); err != nil {
			bad(name, "%v", err)
		} else {
			c.BootstrapAPIKey = v
		}
	}

	c.LogLevel = slog.LevelInfo
	if v, name := src.get(envLogLevel); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			bad(name, "%q is not a log level (use debug, info, warn or error)", v)
		}
	}
	c.LogFormat = "text"
	if v, name := src.get(envLogFormat); v != "" {
		switch f := strings.ToLower(v); f {
		case "text", "json":
			c.LogFormat = f
		default:
			bad(name, "%q is not a log format (use text or json)", v)
		}
	}

	if v, name := src.get(envTrustedProxies); v != "" {
		p, err := httpserver.ParseTrustedProxies(v)
		if err != nil {
			bad(name, "%v", err)
		}
		c.TrustedProxies = p
	}

	c.RateLimits = loadRateLimits(src, bad)

	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

// defaultIssuerFor is the issuer of a broker listening on listen when
// IDBROKER_ISSUER is unset: http://localhost on the same port.
func defaultIssuerFor(listen string) string {
	_, port, err := net.SplitHostPort(listen)
	if err != nil || port == "8080" || port == "0" {
		return defaultIssuer
	}
	return "http://localhost:" + port
}

// parseIssuer checks that v is an absolute http(s) URL without query,
// fragment or credentials, and trims its trailing slash. Plain http is
// allowed only for loopback hosts and in dev mode: tokens and cookies must
// not cross a network in the clear.
func parseIssuer(v string, dev bool) (string, error) {
	u, err := url.Parse(v)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%q is not an absolute URL (want e.g. https://sso.example.com)", v)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q must use https (or http on localhost)", v)
	case u.User != nil:
		return "", errors.New("must not contain a user name or password")
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("%q must not have a query string", v)
	case u.Fragment != "" || strings.Contains(v, "#"):
		return "", fmt.Errorf("%q must not have a fragment", v)
	case u.Port() != "" && !validPort(u.Port()):
		return "", fmt.Errorf("%q has an invalid port", v)
	case u.Scheme == "http" && !dev && !isLoopbackHost(u.Hostname()):
		return "", fmt.Errorf("%q must use https unless the host is localhost or 127.0.0.1 (or serve --dev)", v)
	case strings.Trim(u.Path, "/") != "":
		// Every route, page link, redirect and cookie is at the root of
		// the host: a broker whose issuer has a path advertised endpoints
		// under it that it did not serve (discovery answered 404), and
		// behind a proxy that strips the path its pages linked outside it.
		return "", fmt.Errorf("%q has a path: serve the broker at the root of a host name of its own (e.g. https://sso.example.com)", v)
	}
	return strings.TrimRight(v, "/"), nil
}

func isLoopbackHost(h string) bool {
	switch strings.ToLower(h) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// checkListen accepts host:port with a numeric port; the host may be empty
// (all interfaces), an IP address or a name.
func checkListen(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || !validPort(port) {
		return fmt.Errorf("%q is not host:port (want e.g. :8080 or 127.0.0.1:8080)", v)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q has an invalid host", v)
	}
	return nil
}

func validPort(p string) bool {
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && p != "" && n <= 65535
}

// setDatabase interprets a database URL:
//
//	postgres://user:pass@host:5432/db?sslmode=…  (or postgresql://)
//	sqlite:///var/lib/idbroker/idbroker.db      absolute path
//	sqlite://data/idbroker.db                   relative to the working directory
//
// Everything after "sqlite://" is the file path; it is made absolute here
// so that the database and its master.key do not move with the working
// directory of a later command.
func (c *Config) setDatabase(v string) error {
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok {
		return fmt.Errorf("%q is not a database URL (want postgres://… or sqlite://path/to/file.db)", redactURL(v))
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		u, err := url.Parse(v)
		if err != nil {
			// url.Parse quotes the input in its error; it may hold a password.
			return errors.New("is not a valid postgres:// URL")
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return fmt.Errorf("%q names no host", u.Redacted())
		}
		c.Driver, c.DatabaseURL = driverPostgres, v
	case "sqlite":
		path, query, _ := strings.Cut(rest, "?")
		if path == "" {
			return fmt.Errorf("%q names no file (want sqlite:///abs/path.db or sqlite://relative/path.db)", v)
		}
		abs, err := filepath.Abs(filepath.FromSlash(path))
		if err != nil {
			return fmt.Errorf("%q: %v", v, err)
		}
		c.Driver, c.SQLitePath = driverSQLite, abs
		c.DatabaseURL = "sqlite://" + filepath.ToSlash(abs)
		if query != "" {
			c.DatabaseURL += "?" + query
		}
	default:
		return fmt.Errorf("scheme %q is not supported (use postgres://… or sqlite://path/to/file.db)", scheme)
	}
	return nil
}

func checkRedisURL(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		return errors.New("is not a valid URL (want redis://host:6379/0 or rediss://…)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Errorf("%q must start with redis:// or rediss://", u.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("%q names no host", u.Redacted())
	}
	return nil
}

// checkBootstrapKey asks for a key long enough not to be guessed, in the
// syntax the operator API accepts in a bearer header. Its errors never
// quote the value.
func checkBootstrapKey(v string) error {
	if len(v) < minBootstrapKeyLen {
		return fmt.Errorf("must be at least %d characters (generate one with `openssl rand -hex 32`)", minBootstrapKeyLen)
	}
	if len(v) > maxBootstrapKeyLen {
		return fmt.Errorf("must be at most %d characters", maxBootstrapKeyLen)
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return errors.New("must be printable ASCII, without spaces")
		}
	}
	return nil
}

// redactURL hides what in a URL may be a secret, for logs and messages:
// the password of its userinfo and the values of query parameters named
// for one (PostgreSQL takes ?password= and ?sslpassword= as well as
// user:password@). A value that is not a URL is shown only when it
// cannot hold a password: a key=value connection string can.
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" {
		if strings.ContainsAny(v, "@= \t") {
			return "(not shown: it may hold a password)"
		}
		return v
	}
	if u.RawQuery != "" {
		q, changed := u.Query(), false
		for k := range q {
			if secretParam(k) {
				q[k], changed = []string{"xxxxx"}, true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// secretParam reports whether a URL query parameter's name says it holds
// a secret.
func secretParam(name string) bool {
	name = strings.ToLower(name)
	return strings.Contains(name, "pass") || strings.Contains(name, "secret") || strings.Contains(name, "token")
}
