package store_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// The cost of one store call on each backend: a tenant-scoped read (on
// PostgreSQL a transaction that sets app.tenant_id), a cross-tenant
// resolver, and the operator API's key check.
func BenchmarkStore(b *testing.B) {
	for name, open := range map[string]func(testing.TB) *store.DB{"sqlite": storetest.SQLite, "postgres": storetest.Postgres} {
		db := open(b)
		ctx := context.Background()
		tn, err := db.CreateTenant(ctx, store.Tenant{Name: "A"})
		if err != nil {
			b.Fatal(err)
		}
		tctx := store.WithTenant(ctx, tn.ID)
		if _, err := db.AddDomain(tctx, store.Domain{Domain: "acme.com", VerificationToken: "t", Verified: true}); err != nil {
			b.Fatal(err)
		}
		h := sha256.Sum256([]byte("key"))
		if _, err := db.CreateAPIKey(ctx, store.APIKey{Name: "k", Hash: h[:]}); err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/TenantScopedRead", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.Domain(tctx, "acme.com"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/ResolveDomain", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.ResolveDomain(ctx, "acme.com"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/AuthenticateAPIKey", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.AuthenticateAPIKey(ctx, h[:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
