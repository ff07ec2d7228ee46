package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// maxGroup bounds the write transactions of different requests that share
// one SQLite transaction, so the first of a group never waits behind an
// unbounded stream of later ones.
const maxGroup = 32

// groupCommit batches concurrent write transactions into one SQLite
// transaction (group commit). Each request's work runs inside a SAVEPOINT
// of the shared transaction, one request at a time on the one writer
// connection; a request whose work fails is rolled back to its savepoint
// alone, the others stay in the group. The group commits when no further
// request is waiting for the writer (or it holds maxGroup), and every
// request of it returns only after that COMMIT: an acknowledged write is
// as durable as with a transaction of its own, and a request that failed
// sees what it conflicted with in its next read.
//
// What is saved is the commit: each SQLite commit appends every page it
// changed to the WAL, and concurrent SCIM creates change many of the same
// pages (the tail of users, events and usage_records, index interiors),
// which a group writes once.
type groupCommit struct {
	w *sql.DB
	// writer is held by the request whose work is running on the open
	// group (or that is opening or committing one).
	writer  sync.Mutex
	waiting atomic.Int32
	cur     *group // the open group, guarded by writer
	// committed is called with the group's size after each commit.
	committed func(ctx context.Context, n int)
	classify  func(error) error
}

// txGrouper is a dialect whose write transactions may be grouped; grouped
// returns nil when they are not.
type txGrouper interface {
	grouped() *groupCommit
}

type group struct {
	conn   *sql.Conn
	n      int   // requests that ran in it
	broken error // the transaction is gone: nothing more may run in it
	err    error // the outcome of the COMMIT, set before done closes
	done   chan struct{}
}

// run runs fn in the open group's transaction, opening one if none is
// open, and returns once the group holding fn's work has committed, also
// when fn failed.
func (g *groupCommit) run(ctx context.Context, fn func(t tx) error) (err error) {
	// Lock is not cancellable on purpose: a request that counted itself
	// waiting must come and take its turn, or the group it was counted in
	// would wait for it forever.
	g.waiting.Add(1)
	g.writer.Lock()
	g.waiting.Add(-1)
	bg := context.WithoutCancel(ctx)
	b := g.cur
	if b == nil {
		if b, err = g.open(bg); err != nil {
			g.writer.Unlock()
			return fmt.Errorf("store: begin: %w", g.classify(err))
		}
		g.cur = b
	}
	b.n++
	ferr, perr := g.member(bg, b, fn)
	last := b.broken != nil || b.n >= maxGroup || g.waiting.Load() == 0
	if last {
		g.commit(bg, b)
		g.cur = nil
		g.writer.Unlock()
		if b.err == nil && g.committed != nil {
			g.committed(bg, b.n)
		}
	} else {
		g.writer.Unlock()
	}
	if perr != nil {
		panic(perr)
	}
	// A failed request also waits for its group's COMMIT: it may have
	// failed on the uncommitted work of an earlier member (a unique key
	// taken), and a caller that answers a conflict by reading the winner
	// on another connection must find it, as it would after PostgreSQL's
	// conflict, which waits for the other transaction to end.
	<-b.done
	if ferr != nil {
		// Rolled back to its savepoint: nothing of it committed.
		return ferr
	}
	return b.err
}

func (g *groupCommit) open(ctx context.Context) (*group, error) {
	conn, err := g.w.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		return nil, err
	}
	return &group{conn: conn, done: make(chan struct{})}, nil
}

// member runs one request's work inside a savepoint. A failure of the
// savepoint statements means SQLite rolled the whole transaction back
// (an I/O error, a full disk): the group is broken and every request in
// it fails, none is acknowledged.
func (g *groupCommit) member(ctx context.Context, b *group, fn func(t tx) error) (ferr error, panicked any) {
	if b.broken != nil {
		return b.broken, nil
	}
	if _, err := b.conn.ExecContext(ctx, "SAVEPOINT member"); err != nil {
		b.broken = err
		return fmt.Errorf("store: begin: %w", err), nil
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				panicked = p
			}
		}()
		// Statements ignore the request's cancellation: an interrupted
		// write makes SQLite roll back the whole transaction, which
		// holds other requests' work too.
		ferr = fn(groupTx{sqlQuerier{detachedConn{b.conn}}})
	}()
	var err error
	if ferr == nil && panicked == nil {
		_, err = b.conn.ExecContext(ctx, "RELEASE member")
	} else {
		if _, err = b.conn.ExecContext(ctx, "ROLLBACK TO member"); err == nil {
			_, err = b.conn.ExecContext(ctx, "RELEASE member")
		}
		if ferr == nil && panicked == nil {
			ferr = errors.New("store: rolled back")
		}
	}
	if err != nil {
		b.broken = fmt.Errorf("store: transaction lost: %w", err)
		if ferr == nil {
			ferr = b.broken
		}
	}
	return ferr, panicked
}

func (g *groupCommit) commit(ctx context.Context, b *group) {
	defer close(b.done)
	defer b.conn.Close()
	if b.broken != nil {
		_, _ = b.conn.ExecContext(ctx, "ROLLBACK")
		b.err = b.broken
		return
	}
	if _, err := b.conn.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = b.conn.ExecContext(ctx, "ROLLBACK")
		b.err = fmt.Errorf("store: commit: %w", g.classify(err))
	}
}

// detachedConn runs statements without the caller's cancellation (see
// member).
type detachedConn struct{ c *sql.Conn }

func (d detachedConn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.c.ExecContext(context.WithoutCancel(ctx), q, args...)
}

func (d detachedConn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.c.QueryContext(context.WithoutCancel(ctx), q, args...)
}

func (d detachedConn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return d.c.QueryRowContext(context.WithoutCancel(ctx), q, args...)
}

// groupTx is one request's view of a group's transaction: the group, not
// the request, commits or rolls back.
type groupTx struct{ sqlQuerier }

func (groupTx) setTenant(context.Context, string) error { return nil }
func (groupTx) commit(context.Context) error {
	return errors.New("store: a grouped transaction commits with its group")
}
func (groupTx) rollback(context.Context) error {
	return errors.New("store: a grouped transaction rolls back to its savepoint")
}
