package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/idbroker/idbroker/migrations"
)

// sqliteDB keeps one writer connection (SQLite allows one writer at a time;
// queuing in Go beats SQLITE_BUSY) and a small pool of readers, which WAL
// lets run beside the writer.
type sqliteDB struct {
	w, r *sql.DB

	// commits counts write transactions; every optimizeEvery-th one
	// refreshes the planner's statistics (see optimize).
	commits atomic.Int64

	// group batches concurrent write transactions (see groupCommit); nil
	// on an in-memory database, whose one connection also serves reads.
	group *groupCommit
}

func (s *sqliteDB) grouped() *groupCommit { return s.group }

// The embedded database's settings, applied to every connection:
//
//   - WAL lets readers run beside the one writer.
//   - synchronous=NORMAL under WAL syncs the log at checkpoints, not at
//     every commit. The database cannot be corrupted by a crash or power
//     loss; what it trades is durability of the last commits before a
//     power loss or OS crash (not a process crash): they may roll back.
//     For an identity broker that means a SCIM change or session-family
//     write acknowledged in the last moments before the machine lost
//     power may have to be pushed again; IdPs retry SCIM writes.
//   - cache_size of 16 MiB per connection (the default is 2 MiB), and the
//     file memory-mapped up to 256 MiB, so a directory of 100,000 users
//     stays in memory without a read system call per page.
//   - busy_timeout: a reader that meets a checkpoint waits instead of
//     failing with SQLITE_BUSY.
//   - secure_delete: what a DELETE or UPDATE removes is overwritten with
//     zeros, in its page and in the pages it frees, instead of staying in
//     the file's free space: an erased tenant's users (and a user a SCIM
//     DELETE removed) are then gone from the file, not only from the
//     tables. The cost is writing the pages a delete frees, which a
//     broker rarely does in bulk (the event retention's purge).
var sqlitePragmas = []string{
	"foreign_keys(1)",
	"journal_mode(WAL)",
	"busy_timeout(5000)",
	"synchronous(NORMAL)",
	"cache_size(-16384)",
	"mmap_size(268435456)",
	"temp_store(MEMORY)",
	"secure_delete(1)",
}

// optimizeEvery is how many write transactions pass between runs of
// PRAGMA optimize, which re-gathers statistics only for tables whose size
// changed a lot since the last run (and then only a sample of them).
const optimizeEvery = 5000

func openSQLite(ctx context.Context, raw string) (*sqliteDB, error) {
	path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
	path, rawOpts, _ := strings.Cut(path, "?")
	opts, err := url.ParseQuery(rawOpts)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite url options %q: %w", rawOpts, err)
	}
	group := true
	for k, v := range opts {
		switch {
		case k == "group_commit" && len(v) == 1 && (v[0] == "on" || v[0] == "off"):
			group = v[0] == "on"
		default:
			return nil, fmt.Errorf("store: unknown sqlite url option %s=%s (known: group_commit=on|off)", k, strings.Join(v, ","))
		}
	}
	if path == "" {
		return nil, fmt.Errorf("store: sqlite url %q names no file", raw)
	}
	if path != ":memory:" {
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("store: create data directory: %w", err)
			}
		}
	}
	q := url.Values{}
	for _, p := range sqlitePragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	conn, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	w := sql.OpenDB(stmtConnector{conn})
	w.SetMaxOpenConns(1)
	r := w
	if path != ":memory:" {
		r = sql.OpenDB(stmtConnector{conn})
		r.SetMaxOpenConns(4)
		// Idle readers keep their prepared statements.
		r.SetMaxIdleConns(4)
	}
	db := &sqliteDB{w: w, r: r}
	if path != ":memory:" && group {
		db.group = &groupCommit{w: w, classify: db.classify, committed: func(ctx context.Context, n int) {
			if c := db.commits.Add(int64(n)); c/optimizeEvery != (c-int64(n))/optimizeEvery {
				db.optimize(ctx)
			}
		}}
	}
	if err := db.ping(ctx); err != nil {
		db.close()
		return nil, err
	}
	return db, nil
}

func (s *sqliteDB) name() string { return "sqlite" }

func (s *sqliteDB) close() {
	s.w.Close()
	if s.r != s.w {
		s.r.Close()
	}
}

func (s *sqliteDB) ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping sqlite: %w", err)
	}
	return nil
}

func (s *sqliteDB) begin(ctx context.Context) (tx, error) {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sqliteTx{sqlTx{sqlQuerier{t}, t}, s}, nil
}

// sqliteTx counts commits for optimize.
type sqliteTx struct {
	sqlTx
	db *sqliteDB
}

func (t sqliteTx) commit(ctx context.Context) error {
	if err := t.sqlTx.commit(ctx); err != nil {
		return err
	}
	if t.db.commits.Add(1)%optimizeEvery == 0 {
		t.db.optimize(ctx)
	}
	return nil
}

// optimize refreshes the planner's statistics where tables grew or shrank
// a lot. The hot lookups do not depend on it (their indexes end in the
// sort column, see migration 0060), but a few plans are better with
// statistics: a group filter by member, for one. The limit bounds the
// rows examined per index, so a run costs milliseconds; its error is
// ignored because statistics are an optimisation.
func (s *sqliteDB) optimize(ctx context.Context) {
	_, _ = s.w.ExecContext(context.WithoutCancel(ctx), "PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002")
}

func (s *sqliteDB) reader() querier { return sqlQuerier{s.r} }

// purgeLog checkpoints the write-ahead log into the database file and
// truncates it to nothing: a page's versions of before a delete, which
// the log keeps until it is overwritten, are then gone too. It waits for
// readers (busy_timeout) and reports whether one kept it from finishing.
func (s *sqliteDB) purgeLog(ctx context.Context) error {
	var busy, frames, done int
	if err := s.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done); err != nil {
		return fmt.Errorf("store: checkpoint the write-ahead log: %w", err)
	}
	if busy != 0 {
		return fmt.Errorf("store: checkpoint the write-ahead log: readers kept %d of %d frames from the database file", frames-done, frames)
	}
	return nil
}

func (s *sqliteDB) pinReader(ctx context.Context) (querier, func(), error) {
	if s.r == s.w {
		// In memory the one connection is also the writer's: pinning it
		// would starve a write made inside fn.
		return s.reader(), func() {}, nil
	}
	c, err := s.r.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	return sqlQuerier{c}, func() { _ = c.Close() }, nil
}

func (s *sqliteDB) timeArg(t time.Time) any { return t.UnixMicro() }

func (s *sqliteDB) resolveDomainSQL() string {
	return "SELECT tenant_id FROM domains WHERE domain = $1 AND verified"
}
func (s *sqliteDB) resolveConnectionSQL() string {
	return "SELECT tenant_id FROM connections WHERE id = $1"
}

// lockAuditChain: the single writer already serialises transactions.
func (s *sqliteDB) lockAuditChain(context.Context, querier, string) error { return nil }

func (s *sqliteDB) isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func (s *sqliteDB) classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	// A full disk, an I/O error, a file made read-only, or a lock not
	// released within the busy timeout: the request is fine and may be
	// retried once the operator has made room (503, not 500).
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %s", ErrConflict, se.Error())
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: %s", ErrNotFound, se.Error())
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL, sqlite3.SQLITE_CONSTRAINT_DATATYPE:
		return fmt.Errorf("%w: %s", ErrInvalid, se.Error())
	}
	return err
}

// migrate applies pending migrations, each in one IMMEDIATE transaction on
// the single writer, so a failing one leaves the schema as it was.
func (s *sqliteDB) migrate(ctx context.Context) error {
	all, err := migrations.Load("sqlite")
	if err != nil {
		return err
	}
	if err := s.apply(ctx, all); err != nil {
		return err
	}
	// A restarted node starts with statistics for the data it has.
	s.optimize(ctx)
	return nil
}

func (s *sqliteDB) apply(ctx context.Context, all []migrations.Migration) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	for _, m := range all {
		err := func() error {
			// The single writer connection, held for the whole step so
			// that a foreign_keys switch applies to this transaction.
			c, err := s.w.Conn(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			rebuild := strings.HasPrefix(m.SQL, foreignKeysOff)
			if rebuild {
				// SQLite can change a column's constraints only by
				// rebuilding its table, and dropping the old table with
				// foreign keys on would cascade its deletion into every
				// table that refers to it. The switch is a no-op inside
				// a transaction, so it comes before BEGIN.
				if _, err := c.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
					return err
				}
				defer c.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = ON") //nolint:errcheck // the DSN's pragma is the fallback
			}
			t, err := c.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer t.Rollback() //nolint:errcheck // no-op after commit
			var n int
			if err := t.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = $1", m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := t.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			if rebuild {
				if err := checkForeignKeys(ctx, t); err != nil {
					return err
				}
			}
			if _, err := t.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
				m.Version, m.Name, time.Now().UnixMicro()); err != nil {
				return err
			}
			return t.Commit()
		}()
		if err != nil {
			return fmt.Errorf("store: migration %04d_%s failed, rolled back: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

// foreignKeysOff opens a SQLite migration that rebuilds a table (SQLite's
// documented twelve-step procedure): it runs with foreign keys off, and
// commits only when every reference still resolves afterwards.
const foreignKeysOff = "-- idbroker: foreign_keys off\n"

// checkForeignKeys fails when a row refers to one that is not there.
func checkForeignKeys(ctx context.Context, t *sql.Tx) error {
	rs, err := t.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return err
	}
	defer rs.Close()
	if rs.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rs.Scan(&table, &rowid, &parent, &fk); err != nil {
			return err
		}
		return fmt.Errorf("a row of %s (rowid %d) refers to a missing row of %s", table, rowid.Int64, parent)
	}
	return rs.Err()
}

func (s *sqliteDB) migrationStatus(ctx context.Context) ([]MigrationState, error) {
	all, err := migrations.Load("sqlite")
	if err != nil {
		return nil, err
	}
	applied := map[int]appliedMigration{}
	rs, err := s.r.QueryContext(ctx, "SELECT version, name, applied_at FROM schema_migrations")
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return mergeStatus(all, applied), nil
		}
		return nil, fmt.Errorf("store: migration status: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var v int
		var name string
		var at int64
		if err := rs.Scan(&v, &name, &at); err != nil {
			return nil, err
		}
		applied[v] = appliedMigration{name: name, at: time.UnixMicro(at)}
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	return mergeStatus(all, applied), nil
}

// database/sql adapters.

type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type sqlQuerier struct{ c sqlConn }

func (q sqlQuerier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.c.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQuerier) query(ctx context.Context, query string, args ...any) (rows, error) {
	rs, err := q.c.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

func (q sqlQuerier) queryRow(ctx context.Context, query string, args ...any) row {
	return q.c.QueryRowContext(ctx, query, args...)
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

type sqlTx struct {
	sqlQuerier
	t *sql.Tx
}

func (sqlTx) setTenant(context.Context, string) error { return nil }
func (t sqlTx) commit(context.Context) error          { return t.t.Commit() }
func (t sqlTx) rollback(context.Context) error        { return t.t.Rollback() }

func (s *sqliteDB) rowSecurity() bool { return false }
func (s *sqliteDB) forUpdate() string { return "" }

// after: the OR form, from which SQLite starts its index range at pa. A row
// comparison it applies as a filter over the whole window.
func (s *sqliteDB) after(a, b, pa, pb string) string {
	return "(" + a + " > " + pa + " OR (" + a + " = " + pa + " AND " + b + " > " + pb + "))"
}

// lockEvents: the one writer commits transactions in seq order already.
func (s *sqliteDB) lockEvents(context.Context, querier, bool) error { return nil }

func (s *sqliteDB) appendEventSQL() string {
	return "INSERT INTO events (" + eventCols + ") VALUES ($1, $2, $3, $4, $5)"
}

func (s *sqliteDB) appendEventsSQL(n int) string {
	return "INSERT INTO events (" + eventCols + ") VALUES " + eventRows(n, "$%d, $%d, $%d, $%d, $%d")
}
