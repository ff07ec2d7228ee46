package saml

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// BenchmarkConnectorsHeld builds one connector per iteration for a
// connection of its own (the same row under a new id, as thousands of
// tenants' connections would be) and keeps them all in the registry's
// cache, as a node does after every tenant has signed in once. It reports
// the CPU of one build (parsing the SP key and certificate, the IdP's
// certificates, the crewjam ServiceProvider) and the heap each held
// connector costs: run it with -benchtime=5000x for a node of 5,000
// connections. Connectors are built on first use, never at start.
func BenchmarkConnectorsHeld(b *testing.B) {
	e := newEnvWith(b, envOpts{DB: storetest.SQLite(b)})
	conn := e.samlConn(newTestIdP(b, 0), nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c := conn
		c.ID = fmt.Sprintf("%s_%d", conn.ID, i)
		if _, err := e.Reg.Connector(e.Ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "heap-B/connector")
}

// BenchmarkMaintainPass is one pass of the hourly connection maintenance
// (certificate-expiry checks, metadata refreshes when due) over a
// deployment of 5,000 tenants with one SAML connection each, seeded at
// the store (copies of one real connection: the SP key of each is its
// own only in production). None is due for anything, so a pass is what
// every node pays every hour to find nothing to do: reading each
// tenant's connections (one query each, after a page of tenants per 100)
// and decoding their settings. Each op is one pass.
func BenchmarkMaintainPass(b *testing.B) {
	for _, db := range storetest.Backends {
		b.Run(db.Name, func(b *testing.B) {
			st := db.Open(b)
			e := newEnvWith(b, envOpts{DB: st})
			conn := e.samlConn(newTestIdP(b, 0), nil)
			ctx := context.Background()
			for i := range 5000 {
				tn, err := st.CreateTenant(ctx, store.Tenant{Name: fmt.Sprint("customer ", i)})
				if err != nil {
					b.Fatal(err)
				}
				c := conn
				c.ID = ""
				if _, err := st.CreateConnection(store.WithTenant(ctx, tn.ID), c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := e.Reg.Maintain(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
