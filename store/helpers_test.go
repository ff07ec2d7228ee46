package store

import (
	"context"
	"testing"

	"github.com/idbroker/idbroker/internal/testdb"
)

// Helpers for the package's own tests, which cannot import storetest
// (it imports store).

func testPostgresURL(t *testing.T) string { return testdb.PostgresURL(t) }

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
