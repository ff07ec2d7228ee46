package broker_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// commandCount is a go-redis hook counting round trips: a command alone
// or a pipeline (a MULTI/EXEC transaction included) is one.
type commandCount struct{ n atomic.Int64 }

func (h *commandCount) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *commandCount) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *commandCount) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// BenchmarkLogin is one complete sign-in in process — /authorize, the
// login step, the upstream's answer (the test IdP: no SAML, no IdP
// signature), the completion's transaction, the session and its code, the
// code exchange with its two RS256 signatures — on the backends of each
// deployment: SQLite with sessions in process (the embedded default) and
// PostgreSQL with Redis. cpu-ns/op is the process's CPU (the client's
// included); redis-rt/op the Redis round trips of the broker.
func BenchmarkLogin(b *testing.B) {
	for _, tc := range []struct {
		name  string
		setup func(b *testing.B) (*node, *commandCount)
	}{
		{"sqlite+memory", func(b *testing.B) (*node, *commandCount) {
			return sqliteNode(b), &commandCount{}
		}},
		{"postgres+redis", func(b *testing.B) (*node, *commandCount) {
			opts, err := redis.ParseURL(sessionstest.RedisURL(b))
			if err != nil {
				b.Fatal(err)
			}
			c := redis.NewClient(opts)
			b.Cleanup(func() { c.Close() })
			count := &commandCount{}
			c.AddHook(count)
			r := sessions.NewRedis(c, sessions.RedisOptions{Prefix: sessionstest.Prefix(b, c)})
			return newNode(b, storetest.Postgres(b), r, r), count
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			n, count := tc.setup(b)
			n.tenant("Acme", "acme.test", alice("acme.test"))
			a := n.app(store.Application{})
			login(b, n, a) // the user exists from here on, as in a steady state
			b.ReportAllocs()
			cpu, rt := processCPU(), count.n.Load()
			for b.Loop() {
				login(b, n, a)
			}
			reportCPU(b, cpu)
			b.ReportMetric(float64(count.n.Load()-rt)/float64(b.N), "redis-rt/op")
		})
	}
}
