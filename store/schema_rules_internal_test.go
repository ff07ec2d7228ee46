package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/idbroker/idbroker/migrations"
)

// TestAnyConnectionTypeIsStored: the schema keeps no list of connection
// types, so a type registered by a new connector package needs no
// migration; a name that cannot be a URL path segment is still refused.
func TestAnyConnectionTypeIsStored(t *testing.T) {
	onBothBackends(t, func(t *testing.T, db *DB) {
		ctx := newTenantCtx(t, db)
		c, err := db.CreateConnection(ctx, Connection{Type: "wsfed", Name: "third", Config: []byte(`{}`)})
		if err != nil {
			t.Fatalf("a third connection type: %v", err)
		}
		got, err := db.Connection(ctx, c.ID)
		if err != nil || got.Type != "wsfed" {
			t.Fatalf("read back: %+v, %v", got, err)
		}
		if _, err := db.CreateConnection(ctx, Connection{Type: "WS-Fed", Name: "bad", Config: []byte(`{}`)}); err == nil {
			t.Fatal("a type name that is no path segment was stored")
		}
	})
}

// onBothBackends runs test on a freshly migrated database of each backend:
// the schema rules below must hold on both.
func onBothBackends(t *testing.T, test func(t *testing.T, db *DB)) {
	for _, b := range []struct {
		name string
		open func(t *testing.T) *DB
	}{
		{"sqlite", func(t *testing.T) *DB { return openTestDB(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db")) }},
		{"postgres", func(t *testing.T) *DB { db, _ := openPG(t); return db }},
	} {
		t.Run(b.name, func(t *testing.T) { test(t, b.open(t)) })
	}
}

// newTenantCtx creates a tenant in db and returns a context scoped to it.
func newTenantCtx(t *testing.T, db *DB) context.Context {
	t.Helper()
	ctx := context.Background()
	tn, err := db.CreateTenant(ctx, Tenant{Name: "T"})
	if err != nil {
		t.Fatal(err)
	}
	return WithTenant(ctx, tn.ID)
}

// TestSQLiteRebuildKeepsReferringRows: migration 0080 rebuilds the
// connections table. Rows that refer to a connection survive it, and the
// references still cascade afterwards (foreign keys are back on and point
// at the new table).
func TestSQLiteRebuildKeepsReferringRows(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), testCipher{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	s := db.d.(*sqliteDB)
	all, err := migrations.Load("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(all, func(m migrations.Migration) bool { return m.Version == 80 })
	if i < 0 {
		t.Fatal("migration 0080 not found")
	}
	if err := s.apply(ctx, all[:i]); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.w.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO tenants (id, name, status, created_at, updated_at) VALUES ('tnt_a', 'A', 'active', 0, 0)`)
	exec(`INSERT INTO connections (tenant_id, id, type, name, status, config, created_at, updated_at)
		VALUES ('tnt_a', 'conn_a', 'saml', 'A', 'active', '{}', 0, 0)`)
	exec(`INSERT INTO connection_tests (tenant_id, connection_id, ok, conn_updated_at, result, created_at)
		VALUES ('tnt_a', 'conn_a', 1, 0, '{}', 0)`)
	count := func() int {
		t.Helper()
		var n int
		if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM connection_tests`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if err := s.apply(ctx, all); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("connection_tests rows after the rebuild = %d, want 1", n)
	}
	var fk int
	if err := s.w.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys after the migration = %d, %v; want on", fk, err)
	}
	exec(`DELETE FROM connections WHERE id = 'conn_a'`)
	if n := count(); n != 0 {
		t.Fatalf("deleting the connection left %d connection_tests rows: the reference no longer cascades", n)
	}
}

// TestUserIDsAreGlobal: ResolveUser finds a tenant from a user id alone,
// so a user id one tenant holds cannot be given to another's user.
func TestUserIDsAreGlobal(t *testing.T) {
	onBothBackends(t, func(t *testing.T, db *DB) {
		tenants := [2]context.Context{newTenantCtx(t, db), newTenantCtx(t, db)}
		u, err := db.CreateUser(tenants[0], User{Email: "a@a.example", Active: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.CreateUser(tenants[1], User{ID: u.ID, Email: "b@b.example", Active: true})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("another tenant's user took id %s: err = %v, want ErrConflict", u.ID, err)
		}
		tid, err := db.ResolveUser(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := TenantFrom(tenants[0]); tid != want {
			t.Fatalf("ResolveUser = %s, want %s", tid, want)
		}
	})
}

// TestUsageMeterChecked: the database refuses a usage record of a meter it
// does not know, on both backends, whatever the Go side checks first. On
// PostgreSQL the list is the usage_meter domain's (migration 0113), which
// is enforced on new rows though created NOT VALID, and the records still
// read back through the domain.
func TestUsageMeterChecked(t *testing.T) {
	onBothBackends(t, func(t *testing.T, db *DB) {
		ctx := newTenantCtx(t, db)
		insert := func(meter string) error {
			return db.InTx(ctx, func(ctx context.Context) error {
				return db.scoped(ctx, func(q querier, tenantID string) error {
					_, err := q.exec(ctx, `INSERT INTO usage_records (tenant_id, idempotency_key, meter, subject, value, day, at)
						VALUES ($1, $2, $3, '', 1, '2026-01-02', $4)`, tenantID, "k-"+meter, meter, db.d.timeArg(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)))
					return err
				})
			})
		}
		if err := insert("scim.operation"); err != nil {
			t.Fatalf("a known meter: %v", err)
		}
		if err := insert("login.failed"); err == nil {
			t.Fatal("a usage record of an unknown meter was stored")
		}
		days, err := db.UsageByDay(ctx, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC))
		if err != nil || len(days) != 1 || days[0].Meter != MeterSCIMOperation || days[0].Day != "2026-01-02" {
			t.Fatalf("read back: %+v, %v", days, err)
		}
	})
}
