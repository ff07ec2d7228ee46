package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// credentialFixture is two live tenants and a paused one, each with a
// directory whose token hash is known.
type credentialFixture struct {
	a, b, paused     string // tenant ids
	dirA, dirB, dirP string
	hashA, hashB, hP []byte
}

func hashOf(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func newCredentialFixture(t *testing.T, db *DB) *credentialFixture {
	t.Helper()
	ctx := context.Background()
	f := &credentialFixture{}
	for _, x := range []struct {
		name   string
		status TenantStatus
		tenant *string
		dir    *string
		hash   *[]byte
	}{
		{"A", TenantActive, &f.a, &f.dirA, &f.hashA},
		{"B", TenantActive, &f.b, &f.dirB, &f.hashB},
		{"P", TenantActive, &f.paused, &f.dirP, &f.hP},
	} {
		tn, err := db.CreateTenant(ctx, Tenant{Name: x.name, Status: x.status})
		if err != nil {
			t.Fatal(err)
		}
		*x.hash = hashOf("token of " + x.name)
		d, err := db.CreateDirectory(WithTenant(ctx, tn.ID), Directory{Name: "okta", TokenHash: *x.hash})
		if err != nil {
			t.Fatal(err)
		}
		*x.tenant, *x.dir = tn.ID, d.ID
	}
	paused := TenantPaused
	if _, err := db.UpdateTenant(WithTenant(ctx, f.paused), TenantUpdate{Status: &paused}); err != nil {
		t.Fatal(err)
	}
	return f
}

// tenantPaths are the kinds of tenant-scoped operation the store has, each
// made under ctx; written reports whether anything of it reached tenant
// (read back without a credential).
var tenantPaths = []struct {
	name    string
	run     func(db *DB, ctx context.Context, tenant, dir string) error
	written func(t *testing.T, db *DB, tenant string) bool
}{
	{
		name: "write in a transaction of its own",
		run: func(db *DB, ctx context.Context, _, dir string) error {
			_, err := db.CreateGroup(ctx, Group{DirectoryID: dir, DisplayName: "staff"})
			return err
		},
		written: groupsWritten,
	},
	{
		name: "write in the caller's transaction",
		run: func(db *DB, ctx context.Context, _, dir string) error {
			return db.InTx(ctx, func(ctx context.Context) error {
				_, err := db.CreateGroup(ctx, Group{DirectoryID: dir, DisplayName: "staff"})
				return err
			})
		},
		written: groupsWritten,
	},
	{
		name: "writes sent only with COMMIT",
		run: func(db *DB, ctx context.Context, _, _ string) error {
			return db.InTx(ctx, func(ctx context.Context) error {
				return db.RecordUsageLater(ctx, UsageRecord{Meter: MeterSCIMOperation, IdempotencyKey: "k1", Value: 1})
			})
		},
		written: func(t *testing.T, db *DB, tenant string) bool {
			n, err := db.UsageByDay(WithTenant(context.Background(), tenant), db.now().AddDate(0, 0, -1), db.now().AddDate(0, 0, 1))
			if err != nil {
				t.Fatal(err)
			}
			return len(n) > 0
		},
	},
	{
		name: "vendor-table write first in a transaction",
		run: func(db *DB, ctx context.Context, tenant, dir string) error {
			return db.InTx(ctx, func(ctx context.Context) error {
				if _, err := db.AppendEvent(ctx, Event{TenantID: tenant, Type: "dsync.user.created", Data: []byte(`{}`)}); err != nil {
					return err
				}
				_, err := db.CreateGroup(ctx, Group{DirectoryID: dir, DisplayName: "staff"})
				return err
			})
		},
		written: func(t *testing.T, db *DB, tenant string) bool {
			evs, err := db.TenantEvents(WithTenant(context.Background(), tenant), "dsync.", 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			return len(evs) > 0 || groupsWritten(t, db, tenant)
		},
	},
	{
		name: "tenant read outside a transaction",
		run: func(db *DB, ctx context.Context, _, dir string) error {
			_, err := db.Directory(ctx, dir)
			return err
		},
	},
	{
		name: "read in the caller's transaction",
		run: func(db *DB, ctx context.Context, _, _ string) error {
			return db.InTx(ctx, func(ctx context.Context) error {
				_, _, err := db.FindUsers(ctx, UserQuery{})
				return err
			})
		},
	},
	{
		name: "read of a vendor table outside a transaction",
		run: func(db *DB, ctx context.Context, _, dir string) error {
			_, err := db.DirectoryActivity(ctx, dir, 10)
			return err
		},
	},
}

func groupsWritten(t *testing.T, db *DB, tenant string) bool {
	t.Helper()
	gs, _, err := db.FindGroups(WithTenant(context.Background(), tenant), GroupQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return len(gs) > 0
}

// TestUncheckedCredentialThatFailsWritesNothing: under a directory
// credential that does not hold (another token, another tenant's
// directory, a paused tenant, an unknown directory), every kind of
// tenant-scoped operation fails with ErrCredentialStale and leaves
// nothing behind; under one that holds, each works and the credential is
// then checked.
func TestUncheckedCredentialThatFailsWritesNothing(t *testing.T) {
	for _, backend := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"postgres", testMigratedPostgresURL},
		{"sqlite", func(*testing.T) string { return "sqlite::memory:" }},
	} {
		t.Run(backend.name, func(t *testing.T) {
			db := openTestDB(t, backend.url(t))
			if got, want := db.ChecksCredentialInTx(), backend.name == "postgres"; got != want {
				t.Fatalf("ChecksCredentialInTx = %v on %s", got, backend.name)
			}
			f := newCredentialFixture(t, db)
			stale := []struct {
				name         string
				tenant, dir  string
				hash         []byte
				writtenAsDir string // the directory a write would land in
			}{
				{"another token", f.a, f.dirA, hashOf("rotated away"), f.dirA},
				{"another tenant's directory and token", f.a, f.dirB, f.hashB, f.dirA},
				{"paused tenant", f.paused, f.dirP, f.hP, f.dirP},
				{"unknown directory", f.a, "dir_00000000000000000000000000", f.hashA, f.dirA},
			}
			for _, p := range tenantPaths {
				for _, s := range stale {
					t.Run(p.name+"/"+s.name, func(t *testing.T) {
						ctx := WithDirectoryCredential(WithTenant(context.Background(), s.tenant), s.dir, s.hash)
						err := p.run(db, ctx, s.tenant, s.writtenAsDir)
						if !errors.Is(err, ErrCredentialStale) {
							t.Fatalf("err = %v, want ErrCredentialStale", err)
						}
						if CredentialChecked(ctx) {
							t.Fatal("credential marked checked after a failed check")
						}
						if p.written != nil && p.written(t, db, s.tenant) {
							t.Fatal("something was written under a credential that failed")
						}
					})
				}
			}
			for _, p := range tenantPaths {
				t.Run(p.name+"/holds", func(t *testing.T) {
					tn, err := db.CreateTenant(context.Background(), Tenant{Name: "fresh", Status: TenantTrial})
					if err != nil {
						t.Fatal(err)
					}
					h := hashOf("fresh " + p.name)
					d, err := db.CreateDirectory(WithTenant(context.Background(), tn.ID), Directory{Name: "okta", TokenHash: h})
					if err != nil {
						t.Fatal(err)
					}
					ctx := WithDirectoryCredential(WithTenant(context.Background(), tn.ID), d.ID, h)
					if err := p.run(db, ctx, tn.ID, d.ID); err != nil {
						t.Fatal(err)
					}
					if !CredentialChecked(ctx) {
						t.Fatal("credential not marked checked after an operation under it")
					}
					if p.written != nil && !p.written(t, db, tn.ID) {
						t.Fatal("nothing written under a credential that holds")
					}
				})
			}
		})
	}
}

// TestDirectoryCheckFunction: idb_directory_check (migration 0085) passes
// only for the directory's current token, under its own tenant, while the
// tenant is live, and raises IDB01 otherwise; only idbroker_app (and its
// owner) may execute it.
func TestDirectoryCheckFunction(t *testing.T) {
	db, pg := openPG(t)
	f := newCredentialFixture(t, db)
	ctx := context.Background()
	check := func(tenant, dir string, hash []byte) error {
		return pgx.BeginFunc(ctx, pg.pool, func(tx pgx.Tx) error {
			if tenant != "" {
				if _, err := tx.Exec(ctx, pgSetTenant, tenant); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, pgCheckCredential, dir, hash)
			return err
		})
	}
	if err := check(f.a, f.dirA, f.hashA); err != nil {
		t.Fatalf("the directory's own token under its tenant: %v", err)
	}
	for _, c := range []struct {
		name        string
		tenant, dir string
		hash        []byte
	}{
		{"another token", f.a, f.dirA, f.hashB},
		{"a prefix of the token hash", f.a, f.dirA, f.hashA[:16]},
		{"no token hash", f.a, f.dirA, nil},
		{"another tenant's setting", f.b, f.dirA, f.hashA},
		{"no tenant setting", "", f.dirA, f.hashA},
		{"paused tenant", f.paused, f.dirP, f.hP},
		{"unknown directory", f.a, "dir_nope", f.hashA},
	} {
		var pe *pgconn.PgError
		if err := check(c.tenant, c.dir, c.hash); !errors.As(err, &pe) || pe.Code != credentialCode {
			t.Errorf("%s: err = %v, want SQLSTATE %s", c.name, err, credentialCode)
		} else if !errors.Is(pg.classify(err), ErrCredentialStale) {
			t.Errorf("%s: classified as %v", c.name, pg.classify(err))
		}
	}
	for _, s := range []TenantStatus{TenantTrial, TenantPastDue} {
		if _, err := db.UpdateTenant(WithTenant(ctx, f.b), TenantUpdate{Status: &s}); err != nil {
			t.Fatal(err)
		}
		if err := check(f.b, f.dirB, f.hashB); err != nil {
			t.Errorf("%s tenant: %v", s, err)
		}
	}
	if _, err := db.SoftDeleteTenant(WithTenant(ctx, f.b)); err != nil {
		t.Fatal(err)
	}
	if err := check(f.b, f.dirB, f.hashB); err == nil {
		t.Error("deleted tenant: the check passed")
	}

	var grantees []string
	err := pg.pool.QueryRow(ctx, `
		SELECT coalesce(array_agg(coalesce(r.rolname, 'PUBLIC') ORDER BY coalesce(r.rolname, 'PUBLIC')), '{}')
		FROM pg_proc p, aclexplode(p.proacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
		WHERE p.proname = 'idb_directory_check' AND a.privilege_type = 'EXECUTE'`).Scan(&grantees)
	if err != nil {
		t.Fatal(err)
	}
	if len(grantees) != 2 || grantees[0] != "idbroker_app" || grantees[1] != "idbroker_resolver" {
		t.Errorf("EXECUTE on idb_directory_check granted to %v, want idbroker_app and its owner only", grantees)
	}
}
