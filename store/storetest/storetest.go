// Package storetest holds the store conformance suite, run against every
// backend, and helpers that open real, freshly migrated databases for the
// tests of other packages.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/internal/testdb"
	"github.com/idbroker/idbroker/migrations"
	"github.com/idbroker/idbroker/store"
)

// Unavailable skips or fails t for a missing service; see testdb.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	testdb.Unavailable(t, format, args...)
}

// SQLite opens a migrated SQLite store in t.TempDir().
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	return Open(t, "sqlite://"+filepath.Join(t.TempDir(), "idbroker.db"), NewCipher(t))
}

// Postgres opens a migrated store on a fresh database, dropped when t ends.
func Postgres(t testing.TB) *store.DB {
	t.Helper()
	return Open(t, PostgresURL(t), NewCipher(t))
}

// PostgresURL creates a database with every migration applied (a copy of
// a template migrated once, see testdb.MigratedPostgresURL), dropped when
// t ends. Open on it migrates nothing. Tests of migrating itself want
// testdb.PostgresURL's empty database instead.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return testdb.MigratedPostgresURL(t, Schema(t), migrateTemplate)
}

// Schema is the text of the PostgreSQL migrations, which names the
// template they are applied to.
func Schema(t testing.TB) string {
	t.Helper()
	all, err := migrations.Load("postgres")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, m := range all {
		fmt.Fprintf(&b, "-- %04d_%s\n%s\n", m.Version, m.Name, m.SQL)
	}
	return b.String()
}

// migrateTemplate migrates the template database at url the way Open
// does, closing every connection (a template must have none).
func migrateTemplate(ctx context.Context, url string) error {
	db, err := store.Open(ctx, url, nopCipher{})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Migrate(ctx)
}

// nopCipher seals nothing: migrating stores no secret.
type nopCipher struct{}

func (nopCipher) Seal(p, _ []byte) ([]byte, error) {
	return nil, errors.New("storetest: the template holds no secret")
}
func (nopCipher) Open(c, _ []byte) ([]byte, error) {
	return nil, errors.New("storetest: the template holds no secret")
}

// Open opens url, migrates it and closes it when t ends.
func Open(t testing.TB, url string, c store.Cipher) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, url, c)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// NewCipher returns a keyring under a fresh random master key: the real
// envelope encryption, with a key that lives as long as the test.
func NewCipher(t testing.TB) store.Cipher {
	t.Helper()
	k, err := secrets.NewKeyring(secrets.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}
