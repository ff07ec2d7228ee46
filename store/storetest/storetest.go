// Package storetest holds the store conformance suite, run against every
// backend, and helpers that open real, freshly migrated databases for the
// tests of other packages.
package storetest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/idbroker/store"
)

// DefaultDatabaseURL is the local server the tests use unless
// IDBROKER_TEST_DATABASE_URL says otherwise.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Unavailable skips t because a service it needs is down, or fails it when
// CI=true: in CI a missing database is a broken build, never a pass.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: services must be up)", msg)
	}
	t.Skipf("%s; skipping (set CI=true to make this a failure)", msg)
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

// PostgresURL creates an empty database on the server named by
// IDBROKER_TEST_DATABASE_URL and returns its URL; the database is dropped
// when t ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("IDBROKER_TEST_DATABASE_URL")
	if base == "" {
		base = DefaultDatabaseURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		Unavailable(t, "postgres at %s unreachable: %v", redact(base), err)
		return ""
	}
	defer admin.Close(context.Background())
	name := "idbt_" + strings.ToLower(strings.TrimPrefix(store.NewID("x"), "x_"))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", redact(base), err)
	}
	u.Path = "/" + name
	return u.String()
}

func redact(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return "(unparseable url)"
}

// NewCipher returns an AES-256-GCM cipher under a random key, standing in
// for the master-key keyring in tests that are not about it.
func NewCipher(t testing.TB) store.Cipher {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return gcm{aead}
}

type gcm struct{ aead cipher.AEAD }

func (g gcm) Seal(plain, ad []byte) ([]byte, error) {
	nonce := make([]byte, g.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.aead.Seal(nonce, nonce, plain, ad), nil
}

func (g gcm) Open(sealed, ad []byte) ([]byte, error) {
	n := g.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value too short")
	}
	return g.aead.Open(nil, sealed[:n], sealed[n:], ad)
}
