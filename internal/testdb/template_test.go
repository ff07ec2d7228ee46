package testdb

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testMigrate is a migration of the tests' own: one table holding one row,
// and a count of how many times it ran.
func testMigrate(runs *atomic.Int32) func(ctx context.Context, url string) error {
	return func(ctx context.Context, url string) error {
		runs.Add(1)
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, "CREATE TABLE marker (x integer); INSERT INTO marker VALUES (1)")
		return err
	}
}

// testSchema is a schema no other run has, so that its template is new,
// and drops that template when t ends.
func testSchema(t *testing.T) string {
	t.Helper()
	schema := "testdb template test " + rand.Text()
	t.Cleanup(func() { dropDatabase(t, templateName(AdminURL(), schema)) })
	return schema
}

func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		Unavailable(t, "postgres unreachable: %v", err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	return c
}

func dropDatabase(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Logf("drop %s: %v", name, err)
		return
	}
	defer c.Close(ctx)
	c.Exec(ctx, "ALTER DATABASE "+name+" WITH IS_TEMPLATE false") //nolint:errcheck // may not exist
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Logf("drop %s: %v", name, err)
	}
}

func markers(t *testing.T, url string) int {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM marker").Scan(&n); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return n
}

// TestMigratedPostgresURL: each call is a database of its own holding the
// migration's result, the migration runs once, and the template takes no
// connection (one would make every later copy fail).
func TestMigratedPostgresURL(t *testing.T) {
	schema := testSchema(t)
	var runs atomic.Int32
	a := MigratedPostgresURL(t, schema, testMigrate(&runs))
	b := MigratedPostgresURL(t, schema, testMigrate(&runs))
	if a == b {
		t.Fatalf("two calls gave the same database %s", a)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("migrate ran %d times, want once", n)
	}
	ctx := context.Background()
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "INSERT INTO marker VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	if got := markers(t, a); got != 2 {
		t.Errorf("first database has %d rows, want 2", got)
	}
	if got := markers(t, b); got != 1 {
		t.Errorf("second database has %d rows, want the template's 1: the copies are not isolated", got)
	}
	// A third copy while a session is open on the first one: the
	// template itself must have none, and take none.
	if got := markers(t, MigratedPostgresURL(t, schema, testMigrate(&runs))); got != 1 {
		t.Errorf("third database has %d rows, want 1", got)
	}
	tmpl := templateName(AdminURL(), schema)
	var allowConn, isTemplate bool
	if err := adminConn(t).QueryRow(ctx, "SELECT datallowconn, datistemplate FROM pg_database WHERE datname = $1", tmpl).Scan(&allowConn, &isTemplate); err != nil {
		t.Fatalf("template %s: %v", tmpl, err)
	}
	if allowConn || !isTemplate {
		t.Errorf("template %s: allows connections %v, is a template %v; want false, true", tmpl, allowConn, isTemplate)
	}
}

// TestTemplateBuiltOnceAcrossProcesses builds one template from several
// connections at once, as the test binaries of several packages do (the
// per-process cache is bypassed): the advisory lock lets one build and the
// others find it built.
func TestTemplateBuiltOnceAcrossProcesses(t *testing.T) {
	schema := testSchema(t)
	tmpl := templateName(AdminURL(), schema)
	var runs atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const procs = 4
	var wg sync.WaitGroup
	errs := make([]error, procs)
	for i := range procs {
		admin := adminConn(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = buildTemplate(ctx, admin, AdminURL(), tmpl, testMigrate(&runs))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("build %d: %v", i, err)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("migrate ran %d times for one template, want once", n)
	}
	if got := markers(t, MigratedPostgresURL(t, schema, testMigrate(&runs))); got != 1 {
		t.Errorf("copy has %d rows, want 1", got)
	}
}

// TestUnusedTemplatesArePruned: building a template drops the others no
// run has used for a day, and half-done builds, and keeps the rest.
func TestUnusedTemplatesArePruned(t *testing.T) {
	ctx := context.Background()
	admin := adminConn(t)
	mk := func(suffix, comment string) string {
		name := templatePrefix + "prunetest_" + fmt.Sprint(time.Now().UnixNano()) + "_" + suffix
		t.Cleanup(func() { dropDatabase(t, name) })
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"); err != nil {
			t.Fatal(err)
		}
		if comment != "" {
			if _, err := admin.Exec(ctx, "COMMENT ON DATABASE "+name+" IS "+quoteLiteral(comment)); err != nil {
				t.Fatal(err)
			}
		}
		return name
	}
	old := mk("old", templateComment(time.Now().Add(-templateUnusedFor-time.Hour)))
	recent := mk("recent", templateComment(time.Now().Add(-time.Hour)))
	build := mk("build", templateComment(time.Now()))

	var runs atomic.Int32
	MigratedPostgresURL(t, testSchema(t), testMigrate(&runs))

	for name, want := range map[string]bool{old: false, recent: true, build: false} {
		exists, err := databaseExists(ctx, admin, name)
		if err != nil {
			t.Fatal(err)
		}
		if exists != want {
			t.Errorf("%s exists %v after a build, want %v", name, exists, want)
		}
	}
}
