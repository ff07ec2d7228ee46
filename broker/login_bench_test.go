package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// defaultLimits wires the rate limits as cmd/idbroker does with its
// defaults (IDBROKER_RATE_LIMIT_* unset): per address on /authorize and
// /login, per client on /oauth/token, and per tenant once a sign-in is
// routed, its rule resolved from the tenant's row. (The per-address limit
// of the IdP's answer is on the connectors' routes, which the test IdP
// does not have: one limiter script more per sign-in.)
func defaultLimits(l sessions.Limiter) func(*broker.Config) {
	guard := ratelimit.New(l, ratelimit.Options{})
	tenants := ratelimit.NewTenantLimits(ratelimit.Rule{Name: "login_tenant", Limit: 6000, Window: time.Minute})
	return func(c *broker.Config) {
		c.LoginLimit = guard.Middleware(ratelimit.Rule{Name: "login", Limit: 3000, Window: time.Minute, Key: ratelimit.ByIP})
		c.TokenLimit = guard.Middleware(ratelimit.Rule{Name: "token", Limit: 6000, Window: time.Minute,
			Key: func(c echo.Context) (string, bool) { id := broker.ClientID(c); return id, id != "" }})
		c.TenantLoginLimit = func(ctx context.Context, tn store.Tenant) (bool, time.Duration) {
			return tenants.CheckTenant(ctx, guard, tn)
		}
	}
}

// quietLogouts is a counted store whose logout queue is polled through
// an uncounted one on the same database: the dispatcher the harness runs
// polls every 20 ms, which is no part of a sign-in.
type quietLogouts struct {
	*store.DB
	polls *store.DB
}

func (s quietLogouts) DueLogouts(ctx context.Context, now time.Time) (bool, error) {
	return s.polls.DueLogouts(ctx, now)
}

// countedPostgres is a PostgreSQL store whose round trips are counted.
func countedPostgres(t testing.TB) (quietLogouts, *storetest.RoundTrips) {
	db, rt, url := storetest.PostgresCounted(t)
	return quietLogouts{DB: db, polls: storetest.Open(t, url, storetest.NewCipher(t))}, rt
}

// countedRedis is a Redis session store whose round trips are counted.
func countedRedis(t testing.TB) (*sessions.Redis, *sessionstest.RoundTrips) {
	opts, err := redis.ParseURL(sessionstest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	count := &sessionstest.RoundTrips{}
	c.AddHook(count)
	return sessions.NewRedis(c, sessions.RedisOptions{Prefix: sessionstest.Prefix(t, c)}), count
}

// TestLoginRoundTrips counts the round trips of one complete sign-in (the
// user known, statements prepared) on PostgreSQL and Redis, with the rate
// limits off and on at their defaults. Redis: /authorize saves the
// request; /login reads it and saves it routed; the IdP's answer takes it
// and creates the session with its code; the exchange spends the code and
// records the application with its refresh family — plus, with limits on,
// one limiter script on each of /authorize, /login, the routed tenant and
// /oauth/token, the tenant's rule coming from routing's read of its row.
// PostgreSQL: the domain; the tenant with its connections (one pipeline);
// the test IdP's two reads of its connection; the completion's four; the
// new session's standing read again, against a change that raced it.
func TestLoginRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		name          string
		limits        bool
		redis, postgr int64
	}{
		{"limits off", false, 7, 9},
		{"limits on", true, 11, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, pg := countedPostgres(t)
			r, rt := countedRedis(t)
			var tweak []func(*broker.Config)
			if tc.limits {
				tweak = append(tweak, defaultLimits(r))
			}
			n := newNodeServer(t, st, r, r, "", httpserver.Config{}, tweak...)
			n.tenant("Acme", "acme.test", alice("acme.test"))
			a := n.app(store.Application{})
			login(t, n, a)
			r0, p0 := rt.Count(), pg.Load()
			login(t, n, a)
			if got := rt.Count() - r0; got != tc.redis {
				t.Errorf("Redis: %d round trips per sign-in, want %d", got, tc.redis)
			}
			if got := pg.Load() - p0; got != tc.postgr {
				t.Errorf("PostgreSQL: %d round trips per sign-in, want %d", got, tc.postgr)
			}
		})
	}
}

// BenchmarkLogin is one complete sign-in in process — /authorize, the
// login step, the upstream's answer (the test IdP: no SAML, no IdP
// signature), the completion's transaction, the session and its code, the
// code exchange with its two RS256 signatures — on the backends of each
// deployment: SQLite with sessions in process (the embedded default) and
// PostgreSQL with Redis, there with the rate limits off and on at their
// defaults. cpu-ns/op is the process's CPU (the client's included);
// redis-rt/op and pg-rt/op the round trips of the broker (the test IdP's
// two reads of its connection included).
func BenchmarkLogin(b *testing.B) {
	type counts struct{ redis, pg func() int64 }
	zero := func() int64 { return 0 }
	pgRedis := func(limits bool) func(b *testing.B) (*node, counts) {
		return func(b *testing.B) (*node, counts) {
			st, pg := countedPostgres(b)
			r, rt := countedRedis(b)
			var tweak []func(*broker.Config)
			if limits {
				tweak = append(tweak, defaultLimits(r))
			}
			return newNodeServer(b, st, r, r, "", httpserver.Config{}, tweak...), counts{rt.Count, pg.Load}
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(b *testing.B) (*node, counts)
	}{
		{"sqlite+memory", func(b *testing.B) (*node, counts) {
			return sqliteNode(b), counts{zero, zero}
		}},
		{"postgres+redis", pgRedis(false)},
		{"postgres+redis+limits", pgRedis(true)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			n, count := tc.setup(b)
			n.tenant("Acme", "acme.test", alice("acme.test"))
			a := n.app(store.Application{})
			login(b, n, a) // the user exists from here on, as in a steady state
			b.ReportAllocs()
			cpu, rt, pg := processCPU(), count.redis(), count.pg()
			for b.Loop() {
				login(b, n, a)
			}
			reportCPU(b, cpu)
			b.ReportMetric(float64(count.redis()-rt)/float64(b.N), "redis-rt/op")
			b.ReportMetric(float64(count.pg()-pg)/float64(b.N), "pg-rt/op")
		})
	}
}
