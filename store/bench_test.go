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

// The cost of appending an audit row, on each backend: alone (its own
// transaction) and inside the change it records, as the surfaces write
// it. The audit key is opened once per process, so an append costs an
// HMAC of the row's hash (its mac) more than before the keys, and no
// read.
func BenchmarkAppendAudit(b *testing.B) {
	for name, open := range map[string]func(testing.TB) *store.DB{"sqlite": storetest.SQLite, "postgres": storetest.Postgres} {
		db := open(b)
		ctx := context.Background()
		tn, err := db.CreateTenant(ctx, store.Tenant{Name: "A"})
		if err != nil {
			b.Fatal(err)
		}
		tctx := store.WithTenant(ctx, tn.ID)
		e := store.AuditEvent{Actor: store.Actor{Type: "operator", ID: "ak_1", IP: "192.0.2.1"}, Action: "connection.updated",
			Resource: store.Resource{Type: "connection", ID: "conn_1", Name: "Okta"}, Context: []byte(`{"changes": ["status"], "status": "inactive"}`)}
		b.Run(name+"/Alone", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.AppendAudit(tctx, e); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/InChange", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				err := db.InTx(tctx, func(ctx context.Context) error {
					if _, err := db.Tenant(ctx); err != nil {
						return err
					}
					_, err := db.AppendAudit(ctx, e)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/Operators", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.AppendOperatorAudit(ctx, store.OperatorAuditEvent{Action: "operator.signed_in", Actor: e.Actor}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
