package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/idbroker/idbroker/migrations"
)

// AppRole is the PostgreSQL role the broker's queries run as. It owns no
// table and has no BYPASSRLS, so row-level security always applies to it;
// the login user only needs to be a member (the first migration grants it).
const AppRole = "idbroker_app"

// migrateLockKey is the advisory lock that lets one node migrate while the
// others wait, then find nothing left to do.
const migrateLockKey = 7_101_982_331

// eventsLockKey is the advisory lock that keeps the event stream's cursor
// from skipping an event (see ListEvents). Advisory locks are per database.
const eventsLockKey = 7_101_982_332

// minPoolConns is the pool's size unless the URL sets pool_max_conns.
// pgxpool's own default, the number of CPUs but at least 4, is too few
// for a broker: a connection stays taken while its COMMIT waits for the
// WAL flush, which costs no CPU, so with 8 concurrent SCIM creates on 2
// cores half of them queued for a connection while the CPU idled
// (BENCHMARKS.md, SCIM create, sixth pass).
const minPoolConns = 8

// pgConnectTimeout bounds a new connection when the URL sets no
// connect_timeout. The pool makes connections apart from the request that
// wanted one, which gives up at its own deadline; with no bound, a
// connection to a server that does not answer (a frozen or vanished
// primary, a network that drops packets) waited for the kernel's TCP
// timeouts, minutes, holding a place in the pool all along, so the pool
// stayed short for that long after the database was back. A variable for
// tests.
var pgConnectTimeout = 10 * time.Second

type postgres struct {
	url string
	// owner is the login user's connection settings without the pool's
	// (pool_max_conns and the like, which the server would refuse as
	// unknown parameters), for migrations.
	owner *pgx.ConnConfig
	pool  *pgxpool.Pool
}

func openPostgres(ctx context.Context, url string) (*postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: parse postgres url %q: %w", redactURL(url), err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, minPoolConns)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = pgConnectTimeout
	}
	// Every pooled connection drops to the application role before its
	// first query, so no statement of the broker runs as the owner or a
	// superuser (both of which skip row-level security).
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "SET ROLE "+AppRole); err != nil {
			return fmt.Errorf("store: SET ROLE %s (has the schema been migrated?): %w", AppRole, err)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect postgres: %w", err)
	}
	return &postgres{url: url, owner: cfg.ConnConfig.Copy(), pool: pool}, nil
}

func (p *postgres) name() string { return "postgres" }

func (p *postgres) close() { p.pool.Close() }

// ping also fails on a server that answers but refuses writes (a standby,
// a primary demoted during a failover, default_transaction_read_only): a
// node there can serve almost nothing, and its readiness probe should say
// so, so that the load balancer drains it until the database takes writes.
func (p *postgres) ping(ctx context.Context) error {
	var readOnly string
	if err := p.pool.QueryRow(ctx, "SELECT current_setting('transaction_read_only')").Scan(&readOnly); err != nil {
		return fmt.Errorf("store: ping postgres: %w", err)
	}
	if readOnly == "on" {
		return fmt.Errorf("store: ping postgres: %w: the database is read-only (a standby, a failover in progress, or default_transaction_read_only)", ErrUnavailable)
	}
	return nil
}

func (p *postgres) begin(ctx context.Context) (tx, error) {
	c, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &pgTx{c: c, queue: []pgQueued{{sql: "BEGIN"}}}, nil
}

func (p *postgres) reader() querier { return pgQuerier{p.pool} }

func (p *postgres) scopedReader(tenantID string, c *credential) querier {
	return pgScoped{p.pool, tenantID, c}
}

// pgScoped runs each statement alone with app.tenant_id set: the setting
// and the statement go in one pipeline, without BEGIN or COMMIT. What a
// pipeline sends before its Sync runs as one implicit transaction, which
// set_config(..., true) does not outlive, so the connection goes back to
// the pool without the tenant, as after COMMIT. A read pays one round
// trip instead of two (BEGIN, setting and statement; then COMMIT). Each
// statement is a transaction of its own: under READ COMMITTED, which
// takes a snapshot per statement anyway, a run of reads sees what it
// would have seen in one transaction.
type pgScoped struct {
	pool   *pgxpool.Pool
	tenant string
	cred   *credential // unchecked when the reader was made, or nil
}

// send sends the tenant setting and sql in one pipeline and consumes the
// setting's result. While a directory credential is unchecked its check
// goes between the two: if it raises, the implicit transaction is aborted
// and sql does not run.
func (q pgScoped) send(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	return q.sendAll(ctx, pgQueued{sql: sql, args: args})
}

// sendAll is send for several statements, each with its own result to
// read from the batch in turn: the one implicit transaction of the
// pipeline holds them all, so the tenant setting applies to each.
func (q pgScoped) sendAll(ctx context.Context, stmts ...pgQueued) (pgx.BatchResults, error) {
	c := q.cred
	if c != nil && c.checked.Load() {
		c = nil
	}
	b := &pgx.Batch{}
	b.Queue(pgSetTenant, q.tenant)
	if c != nil {
		b.Queue(pgCheckCredential, c.dir, c.hash)
	}
	for _, st := range stmts {
		b.Queue(st.sql, st.args...)
	}
	br := q.pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, err
	}
	if c != nil {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, err
		}
		c.checked.Store(true)
	}
	return br, nil
}

func (q pgScoped) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	br, err := q.send(ctx, sql, args)
	if err != nil {
		return 0, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag.RowsAffected(), err
}

func (q pgScoped) query(ctx context.Context, sql string, args ...any) (rows, error) {
	br, err := q.send(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rs, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rs, br: br}, nil
}

func (q pgScoped) queryRow(ctx context.Context, sql string, args ...any) row {
	br, err := q.send(ctx, sql, args)
	if err != nil {
		return errRow{err}
	}
	return batchRow{br}
}

// readRowAndRows implements rowAndRowsReader: first's row and second's
// rows behind the tenant setting, in one pipeline.
func (p *postgres) readRowAndRows(ctx context.Context, tenantID string, c *credential, first, second pgQueued, one func(row) error, all func(rows) error) error {
	br, err := pgScoped{p.pool, tenantID, c}.sendAll(ctx, first, second)
	if err != nil {
		return err
	}
	defer br.Close()
	if err := one(br.QueryRow()); err != nil {
		return err
	}
	rs, err := br.Query()
	if err != nil {
		return err
	}
	if err := all(rs); err != nil {
		return err
	}
	return br.Close()
}

func (p *postgres) timeArg(t time.Time) any { return t.UTC() }

func (p *postgres) resolveDomainSQL() string     { return "SELECT idb_resolve_domain($1)" }
func (p *postgres) resolveConnectionSQL() string { return "SELECT idb_resolve_connection($1)" }

func (p *postgres) lockAuditChain(ctx context.Context, q querier, tenantID string) error {
	_, err := q.exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('audit:' || $1, 0))", tenantID)
	return err
}

func (p *postgres) isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

func (p *postgres) classify(err error) error {
	if pgUnavailable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case credentialCode: // idb_directory_check
		return fmt.Errorf("%w: %w", ErrCredentialStale, err)
	case "23505": // unique_violation
		return fmt.Errorf("%w: %s", ErrConflict, pe.ConstraintName)
	case "23503": // foreign_key_violation
		return fmt.Errorf("%w: %s", ErrNotFound, pe.ConstraintName)
	case "23514", "23502", "22P02": // check, not null, invalid text representation
		return fmt.Errorf("%w: %s", ErrInvalid, pe.Message)
	}
	return err
}

// pgUnavailable reports whether err means the server could not be used at
// all, rather than that it refused this query: no connection could be
// made or the one in use broke, or the server is starting, shutting down
// or full.
func pgUnavailable(err error) bool {
	var (
		ce *pgconn.ConnectError
		ne net.Error
		pe *pgconn.PgError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return false // the caller gave up; the server may be fine
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, io.ErrUnexpectedEOF),
		// A pooled connection the server ended (pg_terminate_backend, a
		// failover) is found closed on its next use, before anything was
		// sent: pgx says so, and that the request is safe to retry.
		errors.Is(err, pgconn.ErrConnClosed), pgconn.SafeToRetry(err),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	case errors.As(err, &pe):
		// Class 08: connection exception; 57P01-57P03: admin shutdown,
		// crash shutdown, cannot connect now; 53300: too many connections;
		// 57014: query canceled (statement_timeout, or the cancel sent
		// when the request gave up); 55P03: lock not available
		// (lock_timeout, a migration holding a table). The last two are a
		// database too busy to answer in time, which the client may retry,
		// not a broken request. 25006: a write on a read-only server (a
		// standby, a primary demoted during a failover, or
		// default_transaction_read_only): the request is fine, the server
		// will take it once it is a primary again. Class 53: insufficient
		// resources (disk full, out of memory, too many connections).
		switch pe.Code {
		case "57P01", "57P02", "57P03", "57014", "55P03", "25006":
			return true
		}
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "53")
	}
	return false
}

// migrate applies pending migrations on a connection of its own, as the
// login user (the owner), under a session advisory lock: a second node
// starting at the same time waits, then finds nothing to do. Each migration
// runs in one transaction, so a failing one leaves the schema as it was.
func (p *postgres) migrate(ctx context.Context) error {
	all, err := migrations.Load("postgres")
	if err != nil {
		return err
	}
	return p.apply(ctx, all)
}

func (p *postgres) apply(ctx context.Context, all []migrations.Migration) error {
	return p.withOwnerConn(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
		defer c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLockKey) //nolint:errcheck // the session ends right after
		if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("store: create schema_migrations: %w", err)
		}
		applied, err := pgApplied(ctx, c)
		if err != nil {
			return err
		}
		for _, m := range all {
			if _, ok := applied[m.Version]; ok {
				continue
			}
			err := pgx.BeginFunc(ctx, c, func(t pgx.Tx) error {
				// No arguments: sent with the simple protocol, so one file
				// may hold many statements.
				if _, err := t.Exec(ctx, m.SQL); err != nil {
					return err
				}
				_, err := t.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
				return err
			})
			if err != nil {
				return fmt.Errorf("store: migration %04d_%s failed, rolled back: %w", m.Version, m.Name, err)
			}
		}
		return nil
	})
}

func (p *postgres) migrationStatus(ctx context.Context) ([]MigrationState, error) {
	all, err := migrations.Load("postgres")
	if err != nil {
		return nil, err
	}
	var applied map[int]appliedMigration
	err = p.withOwnerConn(ctx, func(c *pgx.Conn) error {
		var exists bool
		if err := c.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
			return err
		}
		if !exists {
			applied = map[int]appliedMigration{}
			return nil
		}
		applied, err = pgApplied(ctx, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: migration status: %w", err)
	}
	return mergeStatus(all, applied), nil
}

func (p *postgres) withOwnerConn(ctx context.Context, fn func(c *pgx.Conn) error) error {
	cfg := p.owner
	if cfg == nil {
		var err error
		if cfg, err = pgx.ParseConfig(p.url); err != nil {
			return fmt.Errorf("store: parse postgres url %q: %w", redactURL(p.url), err)
		}
	}
	c, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return fmt.Errorf("store: connect postgres: %w", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	return fn(c)
}

func pgApplied(ctx context.Context, c *pgx.Conn) (map[int]appliedMigration, error) {
	rs, err := c.Query(ctx, "SELECT version, name, applied_at FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("store: read schema_migrations: %w", err)
	}
	defer rs.Close()
	out := map[int]appliedMigration{}
	for rs.Next() {
		var v int
		var a appliedMigration
		if err := rs.Scan(&v, &a.name, &a.at); err != nil {
			return nil, err
		}
		out[v] = a
	}
	return out, rs.Err()
}

// appliedMigration is a row of schema_migrations.
type appliedMigration struct {
	name string
	at   time.Time
}

// mergeStatus lists the migrations of this binary, applied or not, then
// those the database has and this binary does not (Newer), by version.
func mergeStatus(all []migrations.Migration, applied map[int]appliedMigration) []MigrationState {
	out := make([]MigrationState, 0, len(all))
	known := make(map[int]bool, len(all))
	for _, m := range all {
		known[m.Version] = true
		s := MigrationState{Version: m.Version, Name: m.Name}
		if a, ok := applied[m.Version]; ok {
			at := a.at.UTC()
			s.AppliedAt = &at
		}
		out = append(out, s)
	}
	var newer []MigrationState
	for v, a := range applied {
		if !known[v] {
			at := a.at.UTC()
			newer = append(newer, MigrationState{Version: v, Name: a.name, AppliedAt: &at, Newer: true})
		}
	}
	slices.SortFunc(newer, func(a, b MigrationState) int { return a.Version - b.Version })
	return append(out, newer...)
}

// pgx adapters.

type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type pgQuerier struct{ q pgxQuerier }

func (q pgQuerier) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

func (q pgQuerier) query(ctx context.Context, sql string, args ...any) (rows, error) {
	return q.q.Query(ctx, sql, args...)
}

func (q pgQuerier) queryRow(ctx context.Context, sql string, args ...any) row {
	return q.q.QueryRow(ctx, sql, args...)
}

// pgTx is a transaction on one pooled connection. Nothing that needs no
// answer before the next statement is sent alone: BEGIN, the tenant
// setting and the writes queued by execLater wait in queue and go out in
// one pipeline with the statement that follows them, or with COMMIT. A
// SCIM create pays four round trips instead of seven this way.
type pgTx struct {
	c *pgxpool.Conn
	// queue is what must reach the server before the next statement, in
	// order. It starts with BEGIN.
	queue []pgQueued
	// sent: the server has seen BEGIN, so ROLLBACK must end the
	// transaction.
	sent bool
	// work: a statement beyond BEGIN and the tenant setting was sent or
	// queued, so COMMIT has something to commit.
	work bool
}

// pgQueued is a statement waiting for the next pipeline. op names a write
// queued by execLater in the error it may cause; it is empty for BEGIN and
// the tenant setting, whose errors are reported as before.
type pgQueued struct {
	op, sql string
	args    []any
	// cred is the credential this statement checks: it is marked checked
	// when the statement succeeds.
	cred *credential
}

const pgSetTenant = "SELECT set_config('app.tenant_id', $1, true)"

// setTenant makes the statements after it run with app.tenant_id set.
// set_config(..., true) is SET LOCAL: it ends with the transaction, so a
// pooled connection never carries one tenant into the next request.
func (t *pgTx) setTenant(_ context.Context, tenantID string) error {
	if n := len(t.queue); n > 0 && t.queue[n-1].sql == pgSetTenant {
		t.queue[n-1].args = []any{tenantID} // nothing ran under the last one
		return nil
	}
	t.queue = append(t.queue, pgQueued{sql: pgSetTenant, args: []any{tenantID}})
	return nil
}

// carryCredential queues the check of c right after the tenant setting,
// ahead of anything else the transaction sends: the first pipeline carries
// it, and a failed check aborts the transaction before any statement after
// it runs (the server skips the rest of a failed pipeline).
func (t *pgTx) carryCredential(tenantID string, c *credential) {
	_ = t.setTenant(context.Background(), tenantID)
	t.queue = append(t.queue, pgQueued{sql: pgCheckCredential, args: []any{c.dir, c.hash}, cred: c})
}

// execLater queues a write whose result nobody reads (see DB.execLater).
// A PostgreSQL transaction that fails a statement fails as a whole, so
// sending it later changes which call reports its error, never whether
// the transaction commits.
func (t *pgTx) execLater(op, sql string, args []any) {
	t.queue = append(t.queue, pgQueued{op: op, sql: sql, args: args})
	t.work = true
}

// send sends the queue and the statement in one pipeline and consumes the
// results of the queue. It returns nil when the queue is empty: the
// statement then goes alone. An explicit BEGIN at the head of a pipeline
// opens a real transaction that outlives the pipeline's Sync.
func (t *pgTx) send(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	t.work = true
	if len(t.queue) == 0 {
		return nil, nil
	}
	br := t.flush(ctx, sql, args)
	queued := t.queue
	t.queue = nil
	if err := drain(br, queued); err != nil {
		br.Close()
		return nil, err
	}
	return br, nil
}

// flush sends the queue followed by sql. Whatever comes of it, COMMIT or
// ROLLBACK must now end the transaction.
func (t *pgTx) flush(ctx context.Context, sql string, args []any) pgx.BatchResults {
	b := &pgx.Batch{}
	for _, q := range t.queue {
		b.Queue(q.sql, q.args...)
	}
	b.Queue(sql, args...)
	t.sent = true
	return t.c.SendBatch(ctx, b)
}

// drain reads the results of the queued statements at the head of br.
func drain(br pgx.BatchResults, queued []pgQueued) error {
	for _, q := range queued {
		if _, err := br.Exec(); err != nil {
			if q.op != "" {
				return &deferredError{op: q.op, err: err}
			}
			return err
		}
		if q.cred != nil {
			q.cred.checked.Store(true)
		}
	}
	return nil
}

// deferredError is the failure of a write queued by execLater, reported by
// the call that sent it: a later statement or COMMIT.
type deferredError struct {
	op  string
	err error
}

func (e *deferredError) Error() string {
	return e.op + " (sent ahead of a later statement): " + e.err.Error()
}

func (e *deferredError) Unwrap() error { return e.err }

func (t *pgTx) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	br, err := t.send(ctx, sql, args)
	if err != nil {
		return 0, err
	}
	if br == nil {
		tag, err := t.c.Exec(ctx, sql, args...)
		return tag.RowsAffected(), err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag.RowsAffected(), err
}

func (t *pgTx) query(ctx context.Context, sql string, args ...any) (rows, error) {
	br, err := t.send(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	if br == nil {
		return t.c.Query(ctx, sql, args...)
	}
	rs, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rs, br: br}, nil
}

func (t *pgTx) queryRow(ctx context.Context, sql string, args ...any) row {
	br, err := t.send(ctx, sql, args)
	if err != nil {
		return errRow{err}
	}
	if br == nil {
		return t.c.QueryRow(ctx, sql, args...)
	}
	return batchRow{br}
}

// batchRows are the rows of a pipelined statement; closing them ends the
// pipeline.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error
}

func (r *batchRows) Close() {
	r.Rows.Close()
	r.err = r.br.Close()
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

type batchRow struct{ br pgx.BatchResults }

func (r batchRow) Scan(dest ...any) error {
	err := r.br.QueryRow().Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// commit ends the transaction and hands the connection back; what is
// still queued goes in the same pipeline as COMMIT. PostgreSQL answers
// COMMIT of a failed transaction with ROLLBACK and no error; that must not
// pass for success. If a queued write fails, the server skips COMMIT (or
// answers it with ROLLBACK): nothing of the transaction is kept.
func (t *pgTx) commit(ctx context.Context) error {
	defer t.c.Release() // a connection left mid-transaction is destroyed, not reused
	if !t.work {
		return nil // nothing was sent but BEGIN and the tenant, or not even that
	}
	var (
		tag pgconn.CommandTag
		err error
	)
	if len(t.queue) == 0 {
		tag, err = t.c.Exec(ctx, "COMMIT")
	} else {
		br := t.flush(ctx, "COMMIT", nil)
		if err = drain(br, t.queue); err == nil {
			tag, err = br.Exec()
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		t.queue = nil
	}
	if err != nil {
		return err
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// rollback drops what is queued: it never reaches the server.
func (t *pgTx) rollback(ctx context.Context) error {
	defer t.c.Release()
	t.queue = nil
	if !t.sent {
		return nil
	}
	_, err := t.c.Exec(ctx, "ROLLBACK")
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (p *postgres) rowSecurity() bool { return true }
func (p *postgres) forUpdate() string { return " FOR UPDATE" }

// after: a row comparison, which PostgreSQL matches to an index on (…, a,
// b) as the range's start. From the equivalent OR it takes no bound at all.
func (p *postgres) after(a, b, pa, pb string) string {
	return "(" + a + ", " + b + ") > (" + pa + ", " + pb + ")"
}

func (p *postgres) lockEvents(ctx context.Context, q querier, reader bool) error {
	fn := "pg_advisory_xact_lock_shared"
	if reader {
		fn = "pg_advisory_xact_lock"
	}
	_, err := q.exec(ctx, "SELECT "+fn+"($1)", int64(eventsLockKey))
	return err
}

// appendEventSQL takes the writer's shared events lock and inserts in one
// statement, one round trip instead of two. The lock is in a MATERIALIZED
// CTE the INSERT reads its row from, so it is held before the row, and
// with it the seq default, is formed.
func (p *postgres) appendEventSQL() string { return pgAppendEvent }

// appendEventsSQL casts every row's values: VALUES alone would read the
// parameters as text, which neither jsonb nor timestamptz takes.
func (p *postgres) appendEventsSQL(n int) string {
	return fmt.Sprintf(`WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(%d))
	INSERT INTO events (%s) SELECT v.* FROM l, (VALUES %s) AS v`,
		int64(eventsLockKey), eventCols, eventRows(n, "$%d, $%d, $%d, $%d::jsonb, $%d::timestamptz"))
}

var pgAppendEvent = fmt.Sprintf(`WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(%d))
	INSERT INTO events (%s) SELECT $1, $2, $3, $4, $5 FROM l`, int64(eventsLockKey), eventCols)
