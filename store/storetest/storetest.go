// Package storetest holds the store conformance suite, run against every
// backend, and helpers that open real, freshly migrated databases for the
// tests of other packages.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// Backend opens a fresh store on one backend, named for subtests.
type Backend struct {
	Name string
	Open func(testing.TB) *store.DB
}

// Backends are the two backends every store-backed feature is tested on.
var Backends = []Backend{{"sqlite", SQLite}, {"postgres", Postgres}}

// SQLite opens a migrated SQLite store in t.TempDir(): a copy of the
// files of one migrated once per process, since migrating costs a second
// a test under -race (the SQLite engine is Go, instrumented like the rest)
// and copying a few hundred kilobytes nothing.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "idbroker.db")
	SQLiteFile(t, path)
	return Open(t, "sqlite://"+path, NewCipher(t))
}

// SQLiteFile writes a migrated SQLite database at path, a copy of the
// template SQLite uses, for a test that hands the file to another process:
// a broker started on it finds every migration applied and migrates
// nothing. Nothing in it is sealed, so any master key opens it.
func SQLiteFile(t testing.TB, path string) {
	t.Helper()
	files, err := sqliteTemplateFiles()
	if err != nil {
		t.Fatalf("migrated sqlite template: %v", err)
	}
	for suffix, b := range files {
		if err := os.WriteFile(path+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// sqliteTemplateFiles migrates a store in a scratch directory, closes it
// and returns its files by suffix ("" for the database, "-wal" for a log
// not checkpointed yet): with no connection open they are a consistent
// copy. Built once per process.
var sqliteTemplateFiles = sync.OnceValues(func() (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "idbroker-sqlite-template-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "idbroker.db")
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite://"+path, nopCipher{})
	if err != nil {
		return nil, err
	}
	err = db.Migrate(ctx)
	db.Close()
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if errors.Is(err, fs.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			return nil, err
		}
		files[suffix] = b
	}
	return files, nil
})

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

// nopCipher seals nothing: migrating (a template) stores no secret.
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
