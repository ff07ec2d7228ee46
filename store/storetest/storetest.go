// Package storetest holds the store conformance suite, run against every
// backend, and helpers that open real, freshly migrated databases for the
// tests of other packages.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/internal/testdb"
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

// PostgresURL creates an empty database, dropped when t ends; see testdb.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return testdb.PostgresURL(t)
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
