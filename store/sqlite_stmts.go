package store

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"strings"
)

// stmtCacheSize bounds the prepared statements kept per connection. The
// SCIM and login paths run a few dozen distinct statements; lists format
// their window into the text, so the rest are evicted least recently used.
const stmtCacheSize = 128

// stmtConnector opens SQLite connections that keep their prepared
// statements. modernc.org/sqlite parses every statement it is handed
// through ExecContext/QueryContext afresh, and on a SCIM create the parser
// was a fifth of the CPU: here the text of a statement is parsed once per
// connection and the compiled statement is reset and re-bound after.
type stmtConnector struct{ driver.Connector }

func (c stmtConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newStmtCacheConn(conn)
}

// sqliteConn is what every modernc.org/sqlite connection implements; the
// wrapper forwards all of it so database/sql keeps its context-aware paths.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type stmtCacheConn struct {
	sqliteConn
	lru   *list.List // of *cachedStmt, most recently used first
	stmts map[string]*list.Element
}

type cachedStmt struct {
	query string
	stmt  interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	}
	busy    bool // its rows are open: the statement cannot be rebound
	evicted bool // close it when its rows close
}

func newStmtCacheConn(c driver.Conn) (driver.Conn, error) {
	sc, ok := c.(sqliteConn)
	if !ok {
		c.Close()
		return nil, errors.New("store: the sqlite driver's connection lacks the context-aware interfaces")
	}
	return &stmtCacheConn{sqliteConn: sc, lru: list.New(), stmts: map[string]*list.Element{}}, nil
}

// Unwrap lets the driver see the connection underneath (its Limit does).
func (c *stmtCacheConn) Unwrap() driver.Conn { return c.sqliteConn }

// get returns the cached statement for query, preparing it on first use,
// or nil when it cannot be used now (it is busy, or the text holds several
// statements, which the driver runs one by one unprepared).
func (c *stmtCacheConn) get(ctx context.Context, query string) (*cachedStmt, error) {
	if e, ok := c.stmts[query]; ok {
		cs := e.Value.(*cachedStmt)
		if cs.busy {
			return nil, nil
		}
		c.lru.MoveToFront(e)
		return cs, nil
	}
	if strings.Contains(query, ";") {
		return nil, nil
	}
	ds, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	})
	if !ok {
		ds.Close()
		return nil, nil
	}
	cs := &cachedStmt{query: query, stmt: st}
	c.stmts[query] = c.lru.PushFront(cs)
	if c.lru.Len() > stmtCacheSize {
		old := c.lru.Back()
		c.lru.Remove(old)
		o := old.Value.(*cachedStmt)
		delete(c.stmts, o.query)
		if o.busy {
			o.evicted = true
		} else {
			o.stmt.Close()
		}
	}
	return cs, nil
}

func (c *stmtCacheConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.get(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	return cs.stmt.ExecContext(ctx, args)
}

func (c *stmtCacheConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.get(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rs, err := cs.stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: rs, cs: cs}, nil
}

func (c *stmtCacheConn) Close() error {
	for e := c.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*cachedStmt).stmt.Close()
	}
	c.lru.Init()
	clear(c.stmts)
	return c.sqliteConn.Close()
}

// cachedRows frees its statement for the next use when closed.
type cachedRows struct {
	driver.Rows
	cs *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.cs.busy = false
	if r.cs.evicted {
		r.cs.stmt.Close()
	}
	return err
}
