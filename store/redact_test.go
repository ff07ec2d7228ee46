package store

import (
	"context"
	"strings"
	"testing"
)

// TestRedactURL: a database URL in an error message never carries its
// password, whatever the shape of the URL.
func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://app:s3cret@db:5432/idb", "postgres://app:xxxxx@db:5432/idb"},
		{"mysql://app:p@ss@db/idb", "mysql://app:xxxxx@db/idb"}, // the last @ ends the credentials
		{"postgres://app@db/idb", "postgres://app@db/idb"},      // no password
		{"postgres://db/idb", "postgres://db/idb"},
		{"sqlite:/tmp/x@y.db", "sqlite:/tmp/x@y.db"},       // no scheme://
		{"x@y://z", "(not shown: it may hold a password)"}, // not a URL
		{"", ""},
		// PostgreSQL also takes the password in the query.
		{"postgres://app@db/idb?password=s3cret&sslmode=require", "postgres://app@db/idb?password=xxxxx&sslmode=require"},
		{"postgres://app@db/idb?sslmode=verify-full&sslpassword=s3cret", "postgres://app@db/idb?sslmode=verify-full&sslpassword=xxxxx"},
		{"postgres://app@db/idb?PassWord=s3cret", "postgres://app@db/idb?PassWord=xxxxx"},
		// A key=value connection string is no URL, and may hold one.
		{"host=db user=app password=s3cret", "(not shown: it may hold a password)"},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	_, err := Open(context.Background(), "mysql://app:s3cret@db/idb", fakeCipher{})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "app:xxxxx@db") {
		t.Errorf("Open with an unknown scheme: %v", err)
	}
}

type fakeCipher struct{}

func (fakeCipher) Seal(p, _ []byte) ([]byte, error) { return p, nil }
func (fakeCipher) Open(c, _ []byte) ([]byte, error) { return c, nil }
