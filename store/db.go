package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// DB implements Store on PostgreSQL or SQLite. The repository code is
// written once; a dialect supplies connections, transactions, the tenant
// setting, migrations and error classification.
type DB struct {
	d      dialect
	cipher Cipher
	now    func() time.Time
	// opened remembers the connection secrets last opened per row.
	opened openedSecrets
	// auditKeyCache holds the audit keys opened so far, and auditCurrent
	// the one appends use once it is known to be stored (audit_keys.go).
	auditKeyCache openedAuditKeys
	auditCurrent  atomic.Pointer[currentAuditKey]
	// auditKeyRecheck, when set (tests), replaces AuditKeyRecheck.
	auditKeyRecheck time.Duration
	// ledger keeps tombstones outside the database (tombstones.go); nil
	// without Redis.
	ledger    Ledger
	ledgerErr func(error)
}

var _ Store = (*DB)(nil)

// Open connects to url, "postgres://…" (or "postgresql://…") or
// "sqlite:///path/to/file.db" (also "sqlite://relative/path.db" and
// "sqlite::memory:" for tests), sealing secrets with c. It does not migrate;
// call Migrate.
func Open(ctx context.Context, url string, c Cipher) (*DB, error) {
	if c == nil {
		return nil, errors.New("store: a Cipher is required to seal secrets")
	}
	var (
		d   dialect
		err error
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		d, err = openPostgres(ctx, url)
	case strings.HasPrefix(url, "sqlite:"):
		d, err = openSQLite(ctx, url)
	default:
		return nil, fmt.Errorf("store: database url must start with postgres:// or sqlite:, got %q", redactURL(url))
	}
	if err != nil {
		return nil, err
	}
	return &DB{d: d, cipher: c, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}, nil
}

// Dialect names the backend: "postgres" or "sqlite".
func (db *DB) Dialect() string { return db.d.name() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.d.ping(ctx) }

// Close releases the connections.
func (db *DB) Close() {
	db.d.close()
	if c, ok := db.ledger.(io.Closer); ok {
		c.Close()
	}
}

// Migrate applies pending migrations; see the dialects for locking.
func (db *DB) Migrate(ctx context.Context) error { return db.d.migrate(ctx) }

// MigrationStatus lists every known migration and when it was applied.
func (db *DB) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	return db.d.migrationStatus(ctx)
}

// querier is what repository code runs statements on: a pooled connection
// or a transaction, of either dialect. Arguments are positional, $1, $2…,
// which both PostgreSQL and SQLite accept.
type querier interface {
	exec(ctx context.Context, sql string, args ...any) (int64, error)
	query(ctx context.Context, sql string, args ...any) (rows, error)
	queryRow(ctx context.Context, sql string, args ...any) row
}

type row interface{ Scan(dest ...any) error }

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// tx is an open transaction of a dialect.
type tx interface {
	querier
	// setTenant makes row-level security admit tenantID for the rest of
	// the transaction (no-op on SQLite).
	setTenant(ctx context.Context, tenantID string) error
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

type dialect interface {
	name() string
	begin(ctx context.Context) (tx, error)
	// reader runs statements that need no transaction: global reads.
	reader() querier
	ping(ctx context.Context) error
	close()
	migrate(ctx context.Context) error
	migrationStatus(ctx context.Context) ([]MigrationState, error)
	// classify maps constraint violations to ErrConflict, ErrNotFound
	// (a dangling reference) and ErrInvalid; other errors pass through.
	classify(err error) error
	isNoRows(err error) bool
	// forUpdate is the row-lock clause for a read that precedes a write in
	// the same transaction ("" on SQLite, whose one writer already
	// serialises transactions).
	forUpdate() string
	// lockEvents orders event writers and readers (see ListEvents): a
	// writer takes it shared, a reader exclusively, until its transaction
	// ends. A no-op where transactions already commit in seq order.
	lockEvents(ctx context.Context, q querier, reader bool) error
	// appendEventSQL inserts an event ($1…$5: eventCols but seq), taking
	// the writer's side of lockEvents in the same statement.
	appendEventSQL() string
	// appendEventsSQL is appendEventSQL for n rows ($1…$5n).
	appendEventsSQL(n int) string
	// rowSecurity reports whether tenant reads need app.tenant_id set in a
	// transaction (PostgreSQL) or are filtered by SQL alone (SQLite).
	rowSecurity() bool
	// timeArg and resolver SQL differ between dialects.
	timeArg(t time.Time) any
	resolveDomainSQL() string
	resolveConnectionSQL() string
	// lockAuditChain serialises appends to one tenant's audit chain.
	lockAuditChain(ctx context.Context, q querier, tenantID string) error
	// after is the condition that (a, b) comes after (pa, pb), a keyset
	// page's start, in the form the dialect's planner turns into the
	// start of an index range (see the implementations): in a form it
	// only filters by, every page would read the index from the start of
	// the window, and a long export would take time quadratic in its size.
	after(a, b, pa, pb string) string
}

type txKey struct{}

type txState struct {
	tx     tx
	tenant string // what app.tenant_id is set to in this transaction
	// cred is the unchecked directory credential whose check this
	// transaction carries (see guard).
	cred *credential
}

// credentialCarrier is a transaction that can send a credential's check
// with its next statement (pgTx).
type credentialCarrier interface {
	carryCredential(tenantID string, c *credential)
}

// guard makes the transaction check ctx's unchecked directory credential
// (WithDirectoryCredential) before anything else it sends: on PostgreSQL
// the check is queued right after the tenant setting, so it reaches the
// server in the same round trip as the first statement and a failure
// aborts the transaction before that statement runs. Elsewhere it is the
// full lookup, now.
func (db *DB) guard(ctx context.Context, st *txState) error {
	c := uncheckedCredential(ctx)
	if c == nil || st.cred == c {
		return nil
	}
	cc, ok := st.tx.(credentialCarrier)
	if !ok {
		return db.ensureCredential(ctx)
	}
	tenantID, err := requireTenant(ctx)
	if err != nil {
		return err
	}
	cc.carryCredential(tenantID, c)
	st.tenant, st.cred = tenantID, c
	return nil
}

// InTx runs fn in one transaction; nested calls join the outer one.
func (db *DB) InTx(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if st, ok := ctx.Value(txKey{}).(*txState); ok {
		if err := db.guard(ctx, st); err != nil {
			return err
		}
		return fn(ctx)
	}
	if !db.ChecksCredentialInTx() {
		// Before the transaction: on SQLite the lookup reads on a
		// connection of the reader pool, which the writer may share.
		if err := db.ensureCredential(ctx); err != nil {
			return err
		}
	}
	if g, ok := db.d.(txGrouper); ok {
		if r := g.grouped(); r != nil {
			return r.run(ctx, func(t tx) error {
				return fn(context.WithValue(ctx, txKey{}, &txState{tx: t}))
			})
		}
	}
	t, err := db.d.begin(ctx)
	if err != nil {
		return fmt.Errorf("store: begin: %w", db.d.classify(err))
	}
	st := &txState{tx: t}
	defer func() {
		if p := recover(); p != nil {
			_ = t.rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			_ = t.rollback(context.WithoutCancel(ctx))
			return
		}
		if cerr := t.commit(ctx); cerr != nil {
			err = db.wrap("commit", cerr)
		}
	}()
	if err := db.guard(ctx, st); err != nil {
		return err
	}
	return fn(context.WithValue(ctx, txKey{}, st))
}

// scoped runs fn for the tenant in ctx: in the caller's transaction if
// there is one (switching app.tenant_id if needed), else in a transaction
// of its own. It is the only way repository code reaches tenant tables.
func (db *DB) scoped(ctx context.Context, fn func(q querier, tenantID string) error) error {
	tenantID, err := requireTenant(ctx)
	if err != nil {
		return err
	}
	run := func(ctx context.Context) error {
		st := ctx.Value(txKey{}).(*txState)
		if err := db.guard(ctx, st); err != nil {
			return err
		}
		if st.tenant != tenantID {
			if err := st.tx.setTenant(ctx, tenantID); err != nil {
				return fmt.Errorf("store: set tenant: %w", db.d.classify(err))
			}
			st.tenant = tenantID
		}
		return fn(st.tx, tenantID)
	}
	if _, ok := ctx.Value(txKey{}).(*txState); ok {
		return run(ctx)
	}
	return db.InTx(ctx, run)
}

// scopedRead is scoped for statements that only read. Outside a
// transaction they need none of their own: on SQLite, which has no tenant
// setting to carry, they use the reader pool instead of queuing behind the
// one writer; on PostgreSQL each statement goes in one pipeline with the
// tenant setting (scopedReader), one round trip instead of two.
func (db *DB) scopedRead(ctx context.Context, fn func(q querier, tenantID string) error) error {
	if _, inTx := ctx.Value(txKey{}).(*txState); inTx {
		return db.scoped(ctx, fn)
	}
	tenantID, err := requireTenant(ctx)
	if err != nil {
		return err
	}
	if s, ok := db.d.(scopedReader); ok {
		// Each statement carries the check of an unchecked credential.
		return fn(s.scopedReader(tenantID, uncheckedCredential(ctx)), tenantID)
	}
	if db.d.rowSecurity() {
		return db.scoped(ctx, fn)
	}
	if err := db.ensureCredential(ctx); err != nil {
		return err
	}
	return fn(db.reader(ctx), tenantID)
}

// scopedReader is a dialect whose tenant reads outside a transaction run
// without opening one (PostgreSQL).
type scopedReader interface {
	// scopedReader returns a querier whose every statement runs with
	// row-level security admitting tenantID, and only that statement.
	// An unchecked directory credential c, if not nil, is checked in
	// the round trip of each statement until a check passes.
	scopedReader(tenantID string, c *credential) querier
}

// readerPinner is a dialect whose pooled readers are worth keeping for a
// run of reads (SQLite).
type readerPinner interface {
	// pinReader takes one reader connection from the pool until release.
	pinReader(ctx context.Context) (q querier, release func(), err error)
}

type pinnedKey struct{}

// reader is where a read outside a transaction runs: the connection
// ReadTogether pinned, if any, else the pool.
func (db *DB) reader(ctx context.Context) querier {
	if q, ok := ctx.Value(pinnedKey{}).(querier); ok {
		return q
	}
	return db.d.reader()
}

// ReadTogether runs fn with the reads it makes outside a transaction on
// one reader connection. On SQLite a reader that begins a read after any
// commit since its last one drops its page cache and remaps the file; a
// run of reads on one connection (routing a sign-in: its domain, tenant
// and connections) pays that once instead of once per read. It gives no
// snapshot: each read still sees the latest commit. Elsewhere, and when
// ctx already has a reader or a transaction, it is fn(ctx).
func (db *DB) ReadTogether(ctx context.Context, fn func(ctx context.Context) error) error {
	p, ok := db.d.(readerPinner)
	if !ok || ctx.Value(pinnedKey{}) != nil || ctx.Value(txKey{}) != nil {
		return fn(ctx)
	}
	q, release, err := p.pinReader(ctx)
	if err != nil {
		return db.wrap("pin reader", err)
	}
	defer release()
	return fn(context.WithValue(ctx, pinnedKey{}, q))
}

// global runs fn on the vendor's own tables: in the caller's transaction if
// any, else on a transaction (writes) or the pool (reads).
func (db *DB) global(ctx context.Context, write bool, fn func(q querier) error) error {
	if st, ok := ctx.Value(txKey{}).(*txState); ok {
		if err := db.guard(ctx, st); err != nil {
			return err
		}
		return fn(st.tx)
	}
	if !write {
		// Tenant reads of the vendor's tables (the event log) come
		// this way too: outside a transaction there is no round trip
		// to carry a credential's check, so it is made first.
		if err := db.ensureCredential(ctx); err != nil {
			return err
		}
		return fn(db.reader(ctx))
	}
	return db.InTx(ctx, func(ctx context.Context) error {
		return fn(ctx.Value(txKey{}).(*txState).tx)
	})
}

// laterExecer is a transaction that can hold a write back for the next
// pipeline (pgTx).
type laterExecer interface {
	execLater(op, sql string, args []any)
}

// execLater runs a write whose result the caller does not read, only
// whether its transaction commits: in a PostgreSQL transaction it is
// queued and sent in one pipeline with the transaction's next statement or
// its COMMIT, saving a round trip; elsewhere (SQLite, or no transaction)
// it runs at once. Its error, if any, is then returned by the call that
// sends it, named after op (see deferredError).
func (db *DB) execLater(ctx context.Context, q querier, op, sql string, args ...any) error {
	if l, ok := q.(laterExecer); ok {
		l.execLater(op, sql, args)
		return nil
	}
	_, err := q.exec(ctx, sql, args...)
	return err
}

// wrap turns a driver error into the store's vocabulary, with context.
func (db *DB) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if de, ok := errors.AsType[*deferredError](err); ok {
		return db.wrapDeferred(op, de)
	}
	if db.d.isNoRows(err) {
		return ErrNotFound
	}
	if errors.Is(err, ErrNoTenant) || errors.Is(err, ErrCredentialStale) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf("store: %s: %w", op, db.d.classify(err))
}

// redactURL drops what may be a secret from a database URL, for error
// messages: the password of its userinfo and the values of query
// parameters named for one (PostgreSQL's ?password= and ?sslpassword=).
// A value that is not a URL is shown only when it cannot hold a password.
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" {
		if strings.ContainsAny(v, "@= \t") {
			return "(not shown: it may hold a password)"
		}
		return v
	}
	if u.RawQuery != "" {
		q, changed := u.Query(), false
		for k := range q {
			if l := strings.ToLower(k); strings.Contains(l, "pass") || strings.Contains(l, "secret") || strings.Contains(l, "token") {
				q[k], changed = []string{"xxxxx"}, true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// wrapDeferred reports a queued write's failure from the call that sent
// it. A conflict, a missing reference or an invalid value keep their
// message but lose their sentinel: they are the queued write's, and the
// caller would read them as its own (a SCIM create would answer 409
// uniqueness for an event that failed). Unavailability and cancellation
// keep theirs: they are the connection's, whoever asked.
func (db *DB) wrapDeferred(op string, de *deferredError) error {
	c := db.d.classify(de.err)
	if errors.Is(c, ErrConflict) || errors.Is(c, ErrNotFound) || errors.Is(c, ErrInvalid) {
		return fmt.Errorf("store: %s: %s: %v", op, de.op, c)
	}
	return fmt.Errorf("store: %s: %s: %w", op, de.op, c)
}
