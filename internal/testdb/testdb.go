// Package testdb gives tests real services: a fresh PostgreSQL database per
// test, and the rule for when a service is down (skip on a laptop, fail in
// CI). It imports none of idbroker's packages so that any test may use it.
package testdb

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDatabaseURL is the local server the tests use unless
// IDBROKER_TEST_DATABASE_URL says otherwise.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Unavailable skips t because a service it needs is down, or fails it when
// running in CI (see InCI): in CI a missing database is a broken build,
// never a pass.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=%s: services must be up)", msg, os.Getenv("CI"))
	}
	t.Skipf("%s; skipping (set CI=true to make this a failure)", msg)
}

// InCI reports whether the CI variable is set the way CI systems set it:
// any non-empty value but "false" or "0" (GitHub and GitLab say "true",
// others "1" or "yes"), so that no spelling lets CI pass by skipping.
func InCI() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("CI"))) {
	case "", "false", "0", "no":
		return false
	}
	return true
}

// AdminURL is the database the tests connect to in order to create (and
// drop, or otherwise administer) theirs: IDBROKER_TEST_DATABASE_URL, else
// DefaultDatabaseURL.
func AdminURL() string {
	if u := os.Getenv("IDBROKER_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// PostgresURL creates an empty database on the server named by AdminURL
// and returns its URL; the database is dropped when t ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, func(ctx context.Context, admin *pgx.Conn, name string) error {
		_, err := admin.Exec(ctx, "CREATE DATABASE "+name)
		return err
	})
}

// newDatabase connects to AdminURL, has create make a database of a fresh
// name, and returns its URL; the database is dropped (with any session
// still on it) when t ends.
func newDatabase(t testing.TB, create func(ctx context.Context, admin *pgx.Conn, name string) error) string {
	t.Helper()
	base := AdminURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		Unavailable(t, "postgres at %s unreachable: %v", redact(base), err)
		return ""
	}
	defer admin.Close(context.Background())
	// Unquoted identifiers fold to lower case; rand.Text is upper case.
	name := "idbt_" + strings.ToLower(rand.Text()[:20])
	// Copying a template writes the whole database to the WAL: on a server
	// busy with other suites it has taken over 10 s, so it gets its own,
	// longer bound than the connection.
	cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
	defer ccancel()
	if err := create(cctx, admin, name); err != nil {
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
	return databaseURL(t, base, name)
}

// databaseURL is base with its database replaced by name.
func databaseURL(t testing.TB, base, name string) string {
	t.Helper()
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
