package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/lifecycle"
)

// Test values. The secrets are distinctive so that a test can prove they
// never appear in an error message.
var (
	testMasterKey    = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789ABCDEF"))
	testMasterKeyURL = base64.RawURLEncoding.EncodeToString([]byte("\xfb\xff0123456789abcdef0123456789ABCD"))
	testBootstrapKey = "idb_sk_bootstrapbootstrapbootstrap0123456789"
	testPostgresURL  = "postgres://idbroker:pgpassword@db.internal:5432/idbroker?sslmode=require"
)

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(configSource{getenv: mapEnv(nil)})
	if err != nil {
		t.Fatalf("loadConfig with an empty environment: %v", err)
	}
	wantDB, _ := filepath.Abs(filepath.Join(".idbroker", "idbroker.db"))
	checks := []struct {
		name      string
		got, want any
	}{
		{"Issuer", cfg.Issuer, "http://localhost:8080"},
		{"Listen", cfg.Listen, ":8080"},
		{"Driver", cfg.Driver, driverSQLite},
		{"SQLitePath", cfg.SQLitePath, wantDB},
		{"DatabaseURL", cfg.DatabaseURL, "sqlite://" + filepath.ToSlash(wantDB)},
		{"MasterKeyFile", cfg.MasterKeyFile, filepath.Join(filepath.Dir(wantDB), "master.key")},
		{"MasterKey set", cfg.MasterKey != nil, false},
		{"RedisURL", cfg.RedisURL, ""},
		{"BootstrapAPIKey", cfg.BootstrapAPIKey, ""},
		{"AllowPrivateNetworks", cfg.AllowPrivateNetworks, false},
		{"Dev", cfg.Dev, false},
		{"LogLevel", cfg.LogLevel, slog.LevelInfo},
		{"LogFormat", cfg.LogFormat, "text"},
		{"MetricsTenantLabels", cfg.MetricsTenantLabels, 10},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	absDB := filepath.Join(t.TempDir(), "data", "broker.db")
	relDB, _ := filepath.Abs(filepath.Join("var", "broker.db"))

	tests := []struct {
		name  string
		env   map[string]string
		flags map[string]flagValue
		dev   bool
		check func(t *testing.T, c Config)
		// wantErr lists substrings of the error; each error must name its
		// variable.
		wantErr []string
	}{
		// IDBROKER_ISSUER
		{name: "issuer https", env: map[string]string{envIssuer: "https://sso.example.com"},
			check: func(t *testing.T, c Config) { eq(t, "Issuer", c.Issuer, "https://sso.example.com") }},
		{name: "issuer trailing slashes trimmed", env: map[string]string{envIssuer: "https://sso.example.com//"},
			check: func(t *testing.T, c Config) { eq(t, "Issuer", c.Issuer, "https://sso.example.com") }},
		{name: "issuer with a path", env: map[string]string{envIssuer: "https://sso.example.com/idb/"},
			wantErr: []string{`IDBROKER_ISSUER: "https://sso.example.com/idb/" has a path`, "root of a host name"}},
		{name: "issuer http localhost", env: map[string]string{envIssuer: "http://localhost:9000"},
			check: func(t *testing.T, c Config) { eq(t, "Issuer", c.Issuer, "http://localhost:9000") }},
		{name: "issuer http 127.0.0.1", env: map[string]string{envIssuer: "http://127.0.0.1:9000/"},
			check: func(t *testing.T, c Config) { eq(t, "Issuer", c.Issuer, "http://127.0.0.1:9000") }},
		{name: "issuer http [::1]", env: map[string]string{envIssuer: "http://[::1]:9000"},
			check: func(t *testing.T, c Config) { eq(t, "Issuer", c.Issuer, "http://[::1]:9000") }},
		{name: "issuer http elsewhere in dev", env: map[string]string{envIssuer: "http://broker.lan:8080"}, dev: true,
			check: func(t *testing.T, c Config) { eq(t, "Issuer", c.Issuer, "http://broker.lan:8080") }},
		{name: "issuer http elsewhere", env: map[string]string{envIssuer: "http://sso.example.com"},
			wantErr: []string{`IDBROKER_ISSUER: "http://sso.example.com" must use https`}},
		{name: "issuer relative", env: map[string]string{envIssuer: "sso.example.com"},
			wantErr: []string{`IDBROKER_ISSUER: "sso.example.com" is not an absolute URL`}},
		{name: "issuer other scheme", env: map[string]string{envIssuer: "ftp://sso.example.com"},
			wantErr: []string{`IDBROKER_ISSUER: "ftp://sso.example.com" must use https`}},
		{name: "issuer query", env: map[string]string{envIssuer: "https://sso.example.com/?a=b"},
			wantErr: []string{"IDBROKER_ISSUER:", "query"}},
		{name: "issuer empty query", env: map[string]string{envIssuer: "https://sso.example.com/?"},
			wantErr: []string{"IDBROKER_ISSUER:", "query"}},
		{name: "issuer fragment", env: map[string]string{envIssuer: "https://sso.example.com/#x"},
			wantErr: []string{"IDBROKER_ISSUER:", "fragment"}},
		{name: "issuer credentials", env: map[string]string{envIssuer: "https://admin:hunter2hunter2@sso.example.com"},
			wantErr: []string{"IDBROKER_ISSUER: must not contain a user name or password"}},
		{name: "issuer bad port", env: map[string]string{envIssuer: "https://sso.example.com:99999"},
			wantErr: []string{"IDBROKER_ISSUER:", "port"}},
		{name: "issuer flag overrides env",
			env:   map[string]string{envIssuer: "https://env.example.com"},
			flags: map[string]flagValue{envIssuer: {"--issuer", "https://flag.example.com"}},
			check: func(t *testing.T, c Config) { eq(t, "Issuer", c.Issuer, "https://flag.example.com") }},
		{name: "bad issuer flag named",
			flags:   map[string]flagValue{envIssuer: {"--issuer", "nope"}},
			wantErr: []string{`--issuer (IDBROKER_ISSUER): "nope" is not an absolute URL`}},

		// IDBROKER_METRICS_TENANT_LABELS
		{name: "metrics tenant labels", env: map[string]string{envMetricsTenantLabels: "25"},
			check: func(t *testing.T, c Config) { eq(t, "MetricsTenantLabels", c.MetricsTenantLabels, 25) }},
		{name: "metrics tenant labels none", env: map[string]string{envMetricsTenantLabels: "0"},
			check: func(t *testing.T, c Config) { eq(t, "MetricsTenantLabels", c.MetricsTenantLabels, 0) }},
		{name: "metrics tenant labels bad", env: map[string]string{envMetricsTenantLabels: "lots"},
			wantErr: []string{`IDBROKER_METRICS_TENANT_LABELS: "lots" is not a number of tenants from 0 to 1000`}},
		{name: "metrics tenant labels too many", env: map[string]string{envMetricsTenantLabels: "5000"},
			wantErr: []string{`IDBROKER_METRICS_TENANT_LABELS: "5000" is not a number`}},

		// IDBROKER_METRICS_LISTEN
		{name: "metrics listen default",
			check: func(t *testing.T, c Config) { eq(t, "MetricsListen", c.MetricsListen, "") }},
		{name: "metrics listen", env: map[string]string{envMetricsListen: "10.0.0.5:9090"},
			check: func(t *testing.T, c Config) { eq(t, "MetricsListen", c.MetricsListen, "10.0.0.5:9090") }},
		{name: "metrics listen bad", env: map[string]string{envMetricsListen: "9090"},
			wantErr: []string{`IDBROKER_METRICS_LISTEN: "9090" is not host:port`}},
		{name: "metrics listen is the main one", env: map[string]string{envListen: ":9000", envMetricsListen: ":9000"},
			wantErr: []string{`IDBROKER_METRICS_LISTEN: ":9000" is the address of the main listener`}},

		// IDBROKER_EVENT_RETENTION_DAYS
		{name: "event retention default",
			check: func(t *testing.T, c Config) { eq(t, "EventRetention", c.EventRetention, events.DefaultRetention) }},
		{name: "event retention days", env: map[string]string{envEventRetentionDays: "30"},
			check: func(t *testing.T, c Config) { eq(t, "EventRetention", c.EventRetention, 30*24*time.Hour) }},
		{name: "event retention for ever", env: map[string]string{envEventRetentionDays: "0"},
			check: func(t *testing.T, c Config) { eq(t, "EventRetention", c.EventRetention, time.Duration(-1)) }},
		{name: "event retention shorter than the retries", env: map[string]string{envEventRetentionDays: "2"},
			wantErr: []string{`IDBROKER_EVENT_RETENTION_DAYS: "2" is not a number of days from 7 to 3650, or 0 to keep events for ever`}},
		{name: "event retention not a number", env: map[string]string{envEventRetentionDays: "90d"},
			wantErr: []string{`IDBROKER_EVENT_RETENTION_DAYS: "90d" is not a number of days`}},

		// IDBROKER_TOMBSTONE_HORIZON_DAYS
		{name: "tombstone horizon default",
			check: func(t *testing.T, c Config) {
				eq(t, "TombstoneHorizon", c.TombstoneHorizon, lifecycle.DefaultTombstoneHorizon)
			}},
		{name: "tombstone horizon days", env: map[string]string{envTombstoneHorizonDays: "45"},
			check: func(t *testing.T, c Config) { eq(t, "TombstoneHorizon", c.TombstoneHorizon, 45*24*time.Hour) }},
		{name: "tombstone horizon for ever", env: map[string]string{envTombstoneHorizonDays: "0"},
			check: func(t *testing.T, c Config) { eq(t, "TombstoneHorizon", c.TombstoneHorizon, time.Duration(-1)) }},
		{name: "tombstone horizon inside the restore window", env: map[string]string{envTombstoneHorizonDays: "7"},
			wantErr: []string{`IDBROKER_TOMBSTONE_HORIZON_DAYS: "7" is not a number of days from 31 to 3650, or 0 to keep tombstones for ever`}},

		// IDBROKER_WEBHOOK_DISABLE_AFTER_DAYS
		{name: "webhook disable default",
			check: func(t *testing.T, c Config) {
				eq(t, "WebhookDisableAfter", c.WebhookDisableAfter, events.DefaultDisableAfter)
			}},
		{name: "webhook disable days", env: map[string]string{envWebhookDisableDays: "14"},
			check: func(t *testing.T, c Config) { eq(t, "WebhookDisableAfter", c.WebhookDisableAfter, 14*24*time.Hour) }},
		{name: "webhook disable never", env: map[string]string{envWebhookDisableDays: "0"},
			check: func(t *testing.T, c Config) { eq(t, "WebhookDisableAfter", c.WebhookDisableAfter, time.Duration(-1)) }},
		{name: "webhook disable too long", env: map[string]string{envWebhookDisableDays: "400"},
			wantErr: []string{`IDBROKER_WEBHOOK_DISABLE_AFTER_DAYS: "400" is not a number of days from 1 to 365, or 0 never to disable a failing webhook`}},
		{name: "webhook disable not a number", env: map[string]string{envWebhookDisableDays: "5d"},
			wantErr: []string{`IDBROKER_WEBHOOK_DISABLE_AFTER_DAYS: "5d" is not a number of days`}},

		// IDBROKER_DNS_RESOLVER
		{name: "dns resolver", env: map[string]string{envDNSResolver: "10.0.0.53:5353"},
			check: func(t *testing.T, c Config) { eq(t, "DNSResolver", c.DNSResolver, "10.0.0.53:5353") }},
		{name: "dns resolver host alone", env: map[string]string{envDNSResolver: "dns.internal"},
			check: func(t *testing.T, c Config) { eq(t, "DNSResolver", c.DNSResolver, "dns.internal") }},
		{name: "dns resolver bad port", env: map[string]string{envDNSResolver: "dns.internal:dns"},
			wantErr: []string{`IDBROKER_DNS_RESOLVER: "dns.internal:dns" is not a DNS server address (host:port)`}},
		{name: "dns resolver bad host", env: map[string]string{envDNSResolver: "10.0.0.53:53:53"},
			wantErr: []string{`IDBROKER_DNS_RESOLVER: "10.0.0.53:53:53" is not a DNS server address`}},

		// IDBROKER_REQUEST_TIMEOUT
		{name: "request timeout default",
			check: func(t *testing.T, c Config) { eq(t, "RequestTimeout", c.RequestTimeout, 30*time.Second) }},
		{name: "request timeout", env: map[string]string{envRequestTimeout: "5s"},
			check: func(t *testing.T, c Config) { eq(t, "RequestTimeout", c.RequestTimeout, 5*time.Second) }},
		{name: "request timeout past the write timeout", env: map[string]string{envRequestTimeout: "2m"},
			wantErr: []string{`IDBROKER_REQUEST_TIMEOUT: "2m" is not a duration from 1s to 55s`}},

		// IDBROKER_AUDIT_CHECKPOINT_INTERVAL
		{name: "audit checkpoint default",
			check: func(t *testing.T, c Config) { eq(t, "AuditCheckpoint", c.AuditCheckpoint, time.Hour) }},
		{name: "audit checkpoint", env: map[string]string{envAuditCheckpoint: "15m"},
			check: func(t *testing.T, c Config) { eq(t, "AuditCheckpoint", c.AuditCheckpoint, 15*time.Minute) }},
		{name: "audit checkpoint off", env: map[string]string{envAuditCheckpoint: "0"},
			check: func(t *testing.T, c Config) { eq(t, "AuditCheckpoint", c.AuditCheckpoint, time.Duration(0)) }},
		{name: "audit checkpoint too often", env: map[string]string{envAuditCheckpoint: "10s"},
			wantErr: []string{`IDBROKER_AUDIT_CHECKPOINT_INTERVAL: "10s" is not a duration of 1m0s or more, or 0 for none`}},

		// IDBROKER_TRUSTED_PROXIES
		{name: "trusted proxies", env: map[string]string{envTrustedProxies: "10.0.0.0/8, 192.0.2.7 fd00::/8"},
			check: func(t *testing.T, c Config) {
				eq(t, "TrustedProxies", fmt.Sprint(c.TrustedProxies), "[10.0.0.0/8 192.0.2.7/32 fd00::/8]")
			}},
		{name: "trusted proxies bad", env: map[string]string{envTrustedProxies: "10.0.0.0/8,lb.internal"},
			wantErr: []string{`IDBROKER_TRUSTED_PROXIES: "lb.internal" is not an IP address or CIDR range`}},

		// IDBROKER_LISTEN
		{name: "listen port only", env: map[string]string{envListen: ":9090"},
			check: func(t *testing.T, c Config) {
				eq(t, "Listen", c.Listen, ":9090")
				eq(t, "Issuer", c.Issuer, "http://localhost:9090") // the default issuer follows the port
			}},
		{name: "listen port with issuer set", env: map[string]string{envListen: ":9090", envIssuer: "https://sso.example.com"},
			check: func(t *testing.T, c Config) { eq(t, "Issuer", c.Issuer, "https://sso.example.com") }},
		{name: "listen ipv4", env: map[string]string{envListen: "127.0.0.1:8081"},
			check: func(t *testing.T, c Config) { eq(t, "Listen", c.Listen, "127.0.0.1:8081") }},
		{name: "listen ipv6", env: map[string]string{envListen: "[::1]:8081"},
			check: func(t *testing.T, c Config) { eq(t, "Listen", c.Listen, "[::1]:8081") }},
		{name: "listen flag overrides env",
			env:   map[string]string{envListen: "abc"},
			flags: map[string]flagValue{envListen: {"--listen", ":7000"}},
			check: func(t *testing.T, c Config) { eq(t, "Listen", c.Listen, ":7000") }},
		{name: "listen not host:port", env: map[string]string{envListen: "abc"},
			wantErr: []string{`IDBROKER_LISTEN: "abc" is not host:port`}},
		{name: "listen no port", env: map[string]string{envListen: "localhost:"},
			wantErr: []string{`IDBROKER_LISTEN: "localhost:" is not host:port`}},
		{name: "listen named port", env: map[string]string{envListen: ":http"},
			wantErr: []string{`IDBROKER_LISTEN: ":http" is not host:port`}},
		{name: "listen port too large", env: map[string]string{envListen: ":65536"},
			wantErr: []string{`IDBROKER_LISTEN: ":65536" is not host:port`}},

		// IDBROKER_DATABASE_URL
		{name: "database postgres", env: map[string]string{envDatabaseURL: testPostgresURL, envMasterKey: testMasterKey},
			check: func(t *testing.T, c Config) {
				eq(t, "Driver", c.Driver, driverPostgres)
				eq(t, "DatabaseURL", c.DatabaseURL, testPostgresURL)
				eq(t, "MasterKeyFile", c.MasterKeyFile, "")
			}},
		{name: "database postgresql scheme", env: map[string]string{envDatabaseURL: "postgresql://postgres@127.0.0.1/test", envMasterKey: testMasterKey},
			check: func(t *testing.T, c Config) { eq(t, "Driver", c.Driver, driverPostgres) }},
		{name: "database postgres unix socket", env: map[string]string{envDatabaseURL: "postgres:///idbroker?host=/run/postgresql", envMasterKey: testMasterKey},
			check: func(t *testing.T, c Config) { eq(t, "Driver", c.Driver, driverPostgres) }},
		{name: "database sqlite absolute", env: map[string]string{envDatabaseURL: "sqlite://" + filepath.ToSlash(absDB)},
			check: func(t *testing.T, c Config) {
				eq(t, "Driver", c.Driver, driverSQLite)
				eq(t, "SQLitePath", c.SQLitePath, absDB)
				eq(t, "MasterKeyFile", c.MasterKeyFile, filepath.Join(filepath.Dir(absDB), "master.key"))
			}},
		{name: "database sqlite relative", env: map[string]string{envDatabaseURL: "sqlite://var/broker.db"},
			check: func(t *testing.T, c Config) {
				eq(t, "SQLitePath", c.SQLitePath, relDB)
				eq(t, "DatabaseURL", c.DatabaseURL, "sqlite://"+filepath.ToSlash(relDB))
			}},
		{name: "database flag overrides env",
			env:   map[string]string{envDatabaseURL: "mysql://x"},
			flags: map[string]flagValue{envDatabaseURL: {"--database-url", "sqlite://" + filepath.ToSlash(absDB)}},
			check: func(t *testing.T, c Config) { eq(t, "SQLitePath", c.SQLitePath, absDB) }},
		{name: "database unknown scheme", env: map[string]string{envDatabaseURL: "mysql://root:dbsecretpw@h/db"},
			wantErr: []string{`IDBROKER_DATABASE_URL: scheme "mysql" is not supported`}},
		{name: "database no scheme", env: map[string]string{envDatabaseURL: "idbroker.db"},
			wantErr: []string{`IDBROKER_DATABASE_URL: "idbroker.db" is not a database URL`}},
		{name: "database sqlite no path", env: map[string]string{envDatabaseURL: "sqlite://"},
			wantErr: []string{`IDBROKER_DATABASE_URL: "sqlite://" names no file`}},
		{name: "database postgres no host", env: map[string]string{envDatabaseURL: "postgres:///db", envMasterKey: testMasterKey},
			wantErr: []string{"IDBROKER_DATABASE_URL:", "names no host"}},
		{name: "database keyword string hides password", env: map[string]string{envDatabaseURL: "host=db user=u password=dbsecretpw"},
			wantErr: []string{"IDBROKER_DATABASE_URL:", "is not a database URL"}},
		{name: "database postgres unparsable hides password", env: map[string]string{envDatabaseURL: "postgres://u:dbsecretpw@h:port/db", envMasterKey: testMasterKey},
			wantErr: []string{"IDBROKER_DATABASE_URL: is not a valid postgres:// URL"}},

		// IDBROKER_REDIS_URL
		{name: "redis", env: map[string]string{envRedisURL: "redis://127.0.0.1:6379/0"},
			check: func(t *testing.T, c Config) { eq(t, "RedisURL", c.RedisURL, "redis://127.0.0.1:6379/0") }},
		{name: "rediss", env: map[string]string{envRedisURL: "rediss://:redissecretpw@cache:6380"},
			check: func(t *testing.T, c Config) { eq(t, "RedisURL", c.RedisURL, "rediss://:redissecretpw@cache:6380") }},
		{name: "redis flag overrides env",
			env:   map[string]string{envRedisURL: "http://x"},
			flags: map[string]flagValue{envRedisURL: {"--redis-url", "redis://cache:6379"}},
			check: func(t *testing.T, c Config) { eq(t, "RedisURL", c.RedisURL, "redis://cache:6379") }},
		{name: "redis wrong scheme hides password", env: map[string]string{envRedisURL: "http://:redissecretpw@cache:6379"},
			wantErr: []string{"IDBROKER_REDIS_URL:", "must start with redis:// or rediss://"}},
		{name: "redis no host", env: map[string]string{envRedisURL: "redis://"},
			wantErr: []string{`IDBROKER_REDIS_URL: "redis:" names no host`}},
		{name: "redis unparsable", env: map[string]string{envRedisURL: "redis://:redissecretpw@cache:port"},
			wantErr: []string{"IDBROKER_REDIS_URL: is not a valid URL"}},

		// IDBROKER_MASTER_KEY
		{name: "master key", env: map[string]string{envMasterKey: testMasterKey},
			check: func(t *testing.T, c Config) {
				if c.MasterKey == nil || string(c.MasterKey[:]) != "0123456789abcdef0123456789ABCDEF" {
					t.Errorf("MasterKey not decoded")
				}
				eq(t, "MasterKeyFile", c.MasterKeyFile, "") // the key comes from the environment
			}},
		{name: "master key url alphabet", env: map[string]string{envMasterKey: testMasterKeyURL},
			check: func(t *testing.T, c Config) {
				if c.MasterKey == nil {
					t.Errorf("MasterKey not decoded")
				}
			}},
		{name: "master key with newline", env: map[string]string{envMasterKey: testMasterKey + "\n"},
			check: func(t *testing.T, c Config) {
				if c.MasterKey == nil {
					t.Errorf("MasterKey not decoded")
				}
			}},
		{name: "master key not base64", env: map[string]string{envMasterKey: "not base64 master key!"},
			wantErr: []string{"IDBROKER_MASTER_KEY:", "base64"}},
		{name: "master key short", env: map[string]string{envMasterKey: base64.StdEncoding.EncodeToString([]byte("shortmasterkey"))},
			wantErr: []string{"IDBROKER_MASTER_KEY:", "14 bytes, want 32"}},
		{name: "master key required on postgres", env: map[string]string{envDatabaseURL: testPostgresURL},
			wantErr: []string{"IDBROKER_MASTER_KEY: required with a PostgreSQL database"}},

		// IDBROKER_BOOTSTRAP_API_KEY
		{name: "bootstrap key", env: map[string]string{envBootstrapAPIKey: testBootstrapKey},
			check: func(t *testing.T, c Config) { eq(t, "BootstrapAPIKey", c.BootstrapAPIKey, testBootstrapKey) }},
		{name: "bootstrap key short", env: map[string]string{envBootstrapAPIKey: "shortbootstrapkey"},
			wantErr: []string{"IDBROKER_BOOTSTRAP_API_KEY: must be at least 32 characters"}},
		{name: "bootstrap key with space", env: map[string]string{envBootstrapAPIKey: "bootstrap key with spaces in it, long enough"},
			wantErr: []string{"IDBROKER_BOOTSTRAP_API_KEY: must be printable ASCII, without spaces"}},
		{name: "bootstrap key non-ASCII", env: map[string]string{envBootstrapAPIKey: "bootstrap-key-é-long-enough-to-pass-the-length"},
			wantErr: []string{"IDBROKER_BOOTSTRAP_API_KEY: must be printable ASCII, without spaces"}},
		{name: "bootstrap key too long", env: map[string]string{envBootstrapAPIKey: strings.Repeat("k", 257)},
			wantErr: []string{"IDBROKER_BOOTSTRAP_API_KEY: must be at most 256 characters"}},

		// IDBROKER_ALLOW_PRIVATE_NETWORKS
		{name: "private networks true", env: map[string]string{envAllowPrivateNetworks: "true"},
			check: func(t *testing.T, c Config) { eq(t, "AllowPrivateNetworks", c.AllowPrivateNetworks, true) }},
		{name: "private networks 0", env: map[string]string{envAllowPrivateNetworks: "0"},
			check: func(t *testing.T, c Config) { eq(t, "AllowPrivateNetworks", c.AllowPrivateNetworks, false) }},
		{name: "private networks set by dev", dev: true,
			check: func(t *testing.T, c Config) {
				eq(t, "AllowPrivateNetworks", c.AllowPrivateNetworks, true)
				eq(t, "Dev", c.Dev, true)
			}},
		{name: "private networks dev wins over false", env: map[string]string{envAllowPrivateNetworks: "false"}, dev: true,
			check: func(t *testing.T, c Config) { eq(t, "AllowPrivateNetworks", c.AllowPrivateNetworks, true) }},
		{name: "private networks bad", env: map[string]string{envAllowPrivateNetworks: "maybe"},
			wantErr: []string{`IDBROKER_ALLOW_PRIVATE_NETWORKS: "maybe" is not a boolean`}},

		// IDBROKER_LOG_LEVEL and IDBROKER_LOG_FORMAT
		{name: "log level debug", env: map[string]string{envLogLevel: "debug"},
			check: func(t *testing.T, c Config) { eq(t, "LogLevel", c.LogLevel, slog.LevelDebug) }},
		{name: "log level WARN", env: map[string]string{envLogLevel: "WARN"},
			check: func(t *testing.T, c Config) { eq(t, "LogLevel", c.LogLevel, slog.LevelWarn) }},
		{name: "log level bad", env: map[string]string{envLogLevel: "loud"},
			wantErr: []string{`IDBROKER_LOG_LEVEL: "loud" is not a log level`}},
		{name: "log format json", env: map[string]string{envLogFormat: "JSON"},
			check: func(t *testing.T, c Config) { eq(t, "LogFormat", c.LogFormat, "json") }},
		{name: "log format bad", env: map[string]string{envLogFormat: "xml"},
			wantErr: []string{`IDBROKER_LOG_FORMAT: "xml" is not a log format`}},

		// Several bad values are reported together.
		{name: "all errors at once",
			env: map[string]string{
				envListen:          "abc",
				envIssuer:          "nope",
				envRedisURL:        "memcached://x",
				envMasterKey:       "!!",
				envBootstrapAPIKey: "short",
				envLogFormat:       "xml",
			},
			wantErr: []string{
				"IDBROKER_LISTEN:", "IDBROKER_ISSUER:", "IDBROKER_REDIS_URL:",
				"IDBROKER_MASTER_KEY:", "IDBROKER_BOOTSTRAP_API_KEY:", "IDBROKER_LOG_FORMAT:",
			}},
	}
	secretsNeverShown := []string{
		testMasterKey, testMasterKeyURL, testBootstrapKey, "not base64 master key!", "!!",
		"shortbootstrapkey", "bootstrap key with spaces", "bootstrap-key-é", strings.Repeat("k", 257), "short\n", "pgpassword", "dbsecretpw", "redissecretpw",
		base64.StdEncoding.EncodeToString([]byte("shortmasterkey")),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(configSource{getenv: mapEnv(tt.env), flags: tt.flags, dev: tt.dev})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("loadConfig: unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, cfg)
				}
				return
			}
			if err == nil {
				t.Fatalf("loadConfig succeeded, want an error containing %q", tt.wantErr)
			}
			msg := err.Error()
			for _, want := range tt.wantErr {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			for _, s := range secretsNeverShown {
				if strings.Contains(msg, s) {
					t.Errorf("error %q shows the secret %q", msg, s)
				}
			}
			// Every line is one *ConfigError naming an IDBROKER_ variable.
			for _, line := range strings.Split(msg, "\n") {
				if !strings.Contains(line, "IDBROKER_") {
					t.Errorf("error line %q names no variable", line)
				}
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error is not a *ConfigError: %T", err)
			}
			if len(strings.Split(msg, "\n")) != len(tt.wantErr) && tt.name == "all errors at once" {
				t.Errorf("got %d errors, want %d: %s", len(strings.Split(msg, "\n")), len(tt.wantErr), msg)
			}
		})
	}
}

func TestConfigLogValueHidesSecrets(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(configSource{getenv: mapEnv(map[string]string{
		envDatabaseURL:     testPostgresURL,
		envRedisURL:        "rediss://:redissecretpw@cache:6380",
		envMasterKey:       testMasterKey,
		envBootstrapAPIKey: testBootstrapKey,
	})})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", cfg)
	out := b.String()
	for _, s := range []string{testMasterKey, testBootstrapKey, "pgpassword", "redissecretpw"} {
		if strings.Contains(out, s) {
			t.Errorf("log line %q shows the secret %q", out, s)
		}
	}
	if !strings.Contains(out, "db.internal") || !strings.Contains(out, "bootstrap_api_key=true") {
		t.Errorf("log line %q lacks the non-secret settings", out)
	}
}

// TestConfigLogValueHidesQueryPasswords: PostgreSQL also takes its
// password (and a client key's) in the URL's query; the start line shows
// neither, nor does the error of a database that cannot be opened.
func TestConfigLogValueHidesQueryPasswords(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"postgres://app@db.internal:5432/idb?password=pgquerysecret&sslmode=require",
		"postgres://app@db.internal:5432/idb?sslmode=verify-full&sslpassword=pgquerysecret",
	} {
		cfg, err := loadConfig(configSource{getenv: mapEnv(map[string]string{envDatabaseURL: u, envMasterKey: testMasterKey})})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", cfg)
		if out := b.String(); strings.Contains(out, "pgquerysecret") || !strings.Contains(out, "db.internal") {
			t.Errorf("log line %q shows the password or not the host", out)
		}
		if got := redactURL(u); strings.Contains(got, "pgquerysecret") || !strings.Contains(got, "=xxxxx") {
			t.Errorf("redactURL(%q) = %q", u, got)
		}
	}
}

func eq[T comparable](t *testing.T, name string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}
