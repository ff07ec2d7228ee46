package store

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/internal/testdb"
	"github.com/idbroker/idbroker/migrations"
)

// Helpers for the package's own tests, which cannot import storetest
// (it imports store).

// testPostgresURL is an empty database, for the tests of migrating.
func testPostgresURL(t *testing.T) string { return testdb.PostgresURL(t) }

// testMigratedPostgresURL is a migrated database, copied from the template
// storetest.PostgresURL also copies (same schema, same migrate).
func testMigratedPostgresURL(t *testing.T) string {
	t.Helper()
	all, err := migrations.Load("postgres")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, m := range all {
		fmt.Fprintf(&b, "-- %04d_%s\n%s\n", m.Version, m.Name, m.SQL)
	}
	return testdb.MigratedPostgresURL(t, b.String(), func(ctx context.Context, url string) error {
		db, err := Open(ctx, url, testCipher{})
		if err != nil {
			return err
		}
		defer db.Close()
		return db.Migrate(ctx)
	})
}

func openTestDB(t *testing.T, url string) *DB {
	t.Helper()
	db, err := Open(context.Background(), url, testCipher{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// testCipher is the identity: these tests are about SQL, not sealing.
type testCipher struct{}

func (testCipher) Seal(p, _ []byte) ([]byte, error) { return append([]byte("sealed:"), p...), nil }
func (testCipher) Open(c, _ []byte) ([]byte, error) { return c[len("sealed:"):], nil }
