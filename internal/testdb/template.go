package testdb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Migrating a database from scratch costs a second or more of a loaded
// machine for each test; copying a migrated one costs a fraction of that.
// So the tests that want a migrated database get a copy of a template,
// built once per schema and server and kept there for the next run, and
// the tests about migrating keep PostgresURL's empty database.
//
// The template's name is a hash of the schema (the migrations' text),
// the login user (the first migration grants its roles to that user) and
// templateVersion, so a changed migration gets a template of its own and
// two checkouts at different migrations can run side by side. Test
// binaries of several packages, and several `go test` runs, share one
// server: a template is built under an advisory lock, in a database of a
// scratch name renamed once complete, so that a template's name existing
// means it is whole. PostgreSQL copies a database only while no other
// session is connected to it: the build's sessions are closed before the
// rename and the template refuses connections from then on.

// templateVersion changes whenever the way a template is built does, so
// that no run uses a template built the old way.
const templateVersion = "1"

// templateLockKey serializes template builds (and pruning) across every
// process using the server; advisory locks are per database, and every
// process holds it in AdminURL's database.
const templateLockKey = 7_101_982_400

// templateUnusedFor is how long a template may go unused before a build of
// another one drops it: long enough for any test run, short enough that a
// machine where the migrations change all day keeps few.
const templateUnusedFor = 24 * time.Hour

// templatePrefix names every template (and template build) database.
const templatePrefix = "idbtmpl_"

// templatesKnown holds the templates this process has seen exist (and
// marked used), so that later tests only copy.
var (
	templatesMu    sync.Mutex
	templatesKnown = map[string]bool{}
)

// MigratedPostgresURL creates a database holding schema, copied from a
// template that migrate built once, and returns its URL; the database is
// dropped when t ends. schema is the text of the migrations, which only
// names the template: two calls with the same schema must mean the same
// migrate. migrate applies the migrations to the database at url and must
// close every connection it opened before it returns.
func MigratedPostgresURL(t testing.TB, schema string, migrate func(ctx context.Context, url string) error) string {
	t.Helper()
	base := AdminURL()
	tmpl := templateName(base, schema)
	return newDatabase(t, func(ctx context.Context, admin *pgx.Conn, name string) error {
		// One retry: a template dropped as unused by another run after we
		// saw it is built again.
		for attempt := 0; ; attempt++ {
			if err := ensureTemplate(admin, base, tmpl, migrate); err != nil {
				return err
			}
			_, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+tmpl)
			if attempt == 0 && noSuchDatabase(err) {
				templatesMu.Lock()
				delete(templatesKnown, tmpl)
				templatesMu.Unlock()
				continue
			}
			if err != nil {
				return fmt.Errorf("copy template %s: %w", tmpl, err)
			}
			return nil
		}
	})
}

// templateName is the template database for schema as base's user.
func templateName(base, schema string) string {
	user := ""
	if u, err := url.Parse(base); err == nil {
		user = u.User.Username()
	}
	sum := sha256.Sum256([]byte(templateVersion + "\x00" + user + "\x00" + schema))
	return templatePrefix + hex.EncodeToString(sum[:10])
}

// ensureTemplate makes sure tmpl exists, building it if no process has.
func ensureTemplate(admin *pgx.Conn, base, tmpl string, migrate func(ctx context.Context, url string) error) error {
	templatesMu.Lock()
	defer templatesMu.Unlock()
	if templatesKnown[tmpl] {
		return nil
	}
	// Waiting for another process's build, then building under a loaded
	// machine, can take far longer than one test database.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for attempt := 0; ; attempt++ {
		exists, err := databaseExists(ctx, admin, tmpl)
		if err != nil {
			return err
		}
		if !exists {
			if err := buildTemplate(ctx, admin, base, tmpl, migrate); err != nil {
				return err
			}
		}
		// Mark it used, for the pruning of templates no run uses any more.
		_, err = admin.Exec(ctx, "COMMENT ON DATABASE "+tmpl+" IS "+quoteLiteral(templateComment(time.Now())))
		if attempt == 0 && noSuchDatabase(err) {
			continue // pruned by another run just now: build it again
		}
		if err != nil {
			return fmt.Errorf("mark template %s used: %w", tmpl, err)
		}
		break
	}
	templatesKnown[tmpl] = true
	return nil
}

// buildTemplate builds tmpl under the template lock, unless another
// process built it while this one waited for the lock.
func buildTemplate(ctx context.Context, admin *pgx.Conn, base, tmpl string, migrate func(ctx context.Context, url string) error) error {
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return fmt.Errorf("template lock: %w", err)
	}
	defer admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", templateLockKey) //nolint:errcheck // a lost lock ends with the session
	if exists, err := databaseExists(ctx, admin, tmpl); err != nil || exists {
		return err
	}
	// The build's own name: a process that dies half way leaves this
	// database, never a template that looks whole.
	build := tmpl + "_build"
	for _, q := range []string{
		"DROP DATABASE IF EXISTS " + build + " WITH (FORCE)",
		"CREATE DATABASE " + build,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			return fmt.Errorf("build template %s: %w", tmpl, err)
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("parse %s: %w", redact(base), err)
	}
	u.Path = "/" + build
	if err := migrate(ctx, u.String()); err != nil {
		return fmt.Errorf("build template %s: migrate: %w", tmpl, err)
	}
	// Refusing connections before the rename means no session can ever
	// sit on the template and make a copy fail. The rename itself waits
	// (up to 5 s) for the build's closed sessions to finish exiting.
	for _, q := range []string{
		"ALTER DATABASE " + build + " WITH ALLOW_CONNECTIONS false IS_TEMPLATE true",
		"ALTER DATABASE " + build + " RENAME TO " + tmpl,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			return fmt.Errorf("build template %s: %w", tmpl, err)
		}
	}
	pruneTemplates(ctx, admin, tmpl)
	return nil
}

// pruneTemplates drops the templates (and dead builds) other than keep
// that no process has used for templateUnusedFor, so that a server whose
// migrations change every day does not fill up. Called under the template
// lock, so no build is under way. A run still copying one of them gets an
// error and builds it again (see MigratedPostgresURL); failures here only
// leave a template behind.
func pruneTemplates(ctx context.Context, admin *pgx.Conn, keep string) {
	rows, err := admin.Query(ctx, `SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '')
		FROM pg_database WHERE starts_with(datname, $1) AND datname <> $2`, templatePrefix, keep)
	if err != nil {
		return
	}
	type db struct{ name, comment string }
	var dbs []db
	for rows.Next() {
		var d db
		if rows.Scan(&d.name, &d.comment) == nil {
			dbs = append(dbs, d)
		}
	}
	rows.Close()
	for _, d := range dbs {
		if used, ok := parseTemplateComment(d.comment); ok && time.Since(used) < templateUnusedFor && !strings.HasSuffix(d.name, "_build") {
			continue
		}
		// A template refuses to be dropped until it is one no more.
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{d.name}.Sanitize()+" WITH IS_TEMPLATE false"); err != nil {
			continue
		}
		admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.name}.Sanitize()+" WITH (FORCE)") //nolint:errcheck // see above
	}
}

const templateCommentPrefix = "idbroker test template, last used "

func templateComment(used time.Time) string {
	return templateCommentPrefix + used.UTC().Format(time.RFC3339)
}

func parseTemplateComment(c string) (time.Time, bool) {
	s, ok := strings.CutPrefix(c, templateCommentPrefix)
	if !ok {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339, s)
	return at, err == nil
}

func databaseExists(ctx context.Context, c *pgx.Conn, name string) (bool, error) {
	var exists bool
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %s: %w", name, err)
	}
	return exists, nil
}

// quoteLiteral quotes s as an SQL string literal (COMMENT takes no
// parameters); s is ours and holds no quote, but stay correct anyway.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// noSuchDatabase reports whether err is PostgreSQL's invalid_catalog_name.
func noSuchDatabase(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "3D000"
}
