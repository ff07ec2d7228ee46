package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The tenant's sign-in log (its authentication.* events) and audit log,
// filtered and paged newest first over the whole history for the portal.
// Every filter is an equality or a time range on an index that also gives
// the order (migration 0071), so a page costs its own rows whatever the
// log's length: no count, no offset, no sort of the matches.

// Sign-in event types, the rows of the sign-in log.
const (
	SignInSucceeded = "authentication.succeeded"
	SignInFailed    = "authentication.failed"
)

// signInTypes is the partial indexes' predicate; queries repeat it word
// for word so that both planners match it.
const signInTypes = "type IN ('authentication.succeeded', 'authentication.failed')"

// LogStore reads the portal's logs. Store includes it.
type LogStore interface {
	// SignInLog pages the sign-ins and failed sign-ins of the tenant in
	// ctx; ErrInvalid for an unknown cursor or outcome.
	SignInLog(ctx context.Context, q LogQuery) (LogPage[Event], error)
	// AuditLog pages the audit rows of the tenant in ctx; ErrInvalid for
	// an unknown cursor.
	AuditLog(ctx context.Context, q LogQuery) (LogPage[AuditEvent], error)
}

// LogQuery filters and pages a log, newest first.
type LogQuery struct {
	// Actor is, in the sign-in log, the email signing in (any case); in
	// the audit log, the actor's id. Exact.
	Actor string
	// Action is, in the sign-in log, SignInSucceeded or SignInFailed; in
	// the audit log, the action. Exact.
	Action string
	// From and To bound the time: From <= t < To; zero is open.
	From, To time.Time
	// After is the id of the last (oldest) row already seen: the page
	// holds older rows. Before is the id of the first (newest) row seen:
	// the page holds the rows just newer. At most one is set.
	After, Before string
	// Limit is the page size (1 to 500; default 50).
	Limit int
}

// LogPage is a page of a log and the cursors around it: Older for
// LogQuery.After, Newer for LogQuery.Before; empty when there is nothing
// that way.
type LogPage[T any] struct {
	Rows         []T
	Newer, Older string
}

func (q LogQuery) limit() int {
	switch {
	case q.Limit <= 0:
		return 50
	case q.Limit > 500:
		return 500
	}
	return q.Limit
}

// logSQL builds the statement of a log page. table's time column is tcol;
// where starts with the tenant and the fixed filters, whose arguments are
// args; cursor, when set, is the (time, seq) of the row to page from.
type logSQL struct {
	cols, table, tcol, where string
	args                     []any
}

// and narrows s to the rows whose expr equals v.
func (s *logSQL) and(expr string, v any) {
	s.args = append(s.args, v)
	s.where += fmt.Sprintf(" AND %s = $%d", expr, len(s.args))
}

// logCursor reads where the page after row id of s's table starts (its
// time and seq); nil without an id. An id that is no row of the tenant's
// log is ErrInvalid, not an empty page.
func (db *DB) logCursor(ctx context.Context, qr querier, s logSQL, tenantID, id string) ([]any, error) {
	if id == "" {
		return nil, nil
	}
	var t time.Time
	var seq int64
	err := qr.queryRow(ctx, "SELECT "+s.tcol+", seq FROM "+s.table+" WHERE tenant_id = $1 AND id = $2", tenantID, id).Scan(timeDest{&t}, &seq)
	if db.d.isNoRows(err) {
		return nil, fmt.Errorf("%w: unknown cursor", ErrInvalid)
	}
	if err != nil {
		return nil, err
	}
	return []any{db.d.timeArg(t), seq}, nil
}

func (db *DB) buildLog(s logSQL, q LogQuery, cursor []any) (string, []any) {
	arg := func(v any) string {
		s.args = append(s.args, v)
		return fmt.Sprintf("$%d", len(s.args))
	}
	where := s.where
	if !q.From.IsZero() {
		where += " AND " + s.tcol + " >= " + arg(db.d.timeArg(q.From))
	}
	if !q.To.IsZero() {
		where += " AND " + s.tcol + " < " + arg(db.d.timeArg(q.To))
	}
	order := "DESC"
	if cursor != nil {
		op := "<"
		if q.Before != "" {
			op, order = ">", "ASC"
		}
		where += " AND (" + s.tcol + ", seq) " + op + " (" + arg(cursor[0]) + ", " + arg(cursor[1]) + ")"
	}
	lim := arg(q.limit() + 1)
	return "SELECT " + s.cols + " FROM " + s.table + " WHERE " + where +
		" ORDER BY " + s.tcol + " " + order + ", seq " + order + " LIMIT " + lim, s.args
}

// queryLog reads the rows of the page q asks of s's log (limit+1 of them,
// for pageOf), each with scan.
//
// A filter or cursor that is not text a row could hold (invalid UTF-8, or a
// NUL, which PostgreSQL refuses as an argument outright where SQLite just
// matches nothing) is answered here, alike on both backends: no rows for a
// filter, an unknown cursor for a cursor. Such text comes from the URL of
// whoever types it; it must not become a 500.
func queryLog[T any](ctx context.Context, db *DB, qr querier, s logSQL, tenantID string, q LogQuery, scan func(row) (T, error)) ([]T, error) {
	if !isText(q.cursorID()) {
		return nil, fmt.Errorf("%w: unknown cursor", ErrInvalid)
	}
	for _, a := range s.args {
		if v, ok := a.(string); ok && !isText(v) {
			return nil, nil
		}
	}
	cursor, err := db.logCursor(ctx, qr, s, tenantID, q.cursorID())
	if err != nil {
		return nil, err
	}
	sql, args := db.buildLog(s, q, cursor)
	rs, err := qr.query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return collect(rs, scan)
}

// isText reports whether s is text a column can hold on both backends.
func isText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// pageOf turns the rows of a query (limit+1 asked) into a page.
func pageOf[T any](rows []T, q LogQuery, id func(T) string) LogPage[T] {
	n := q.limit()
	var p LogPage[T]
	more := len(rows) > n
	if more {
		rows = rows[:n]
	}
	if q.Before != "" {
		// Asked oldest first: turn it round.
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	}
	p.Rows = rows
	if len(rows) == 0 {
		return p
	}
	switch {
	case q.Before != "":
		p.Older = id(rows[len(rows)-1])
		if more {
			p.Newer = id(rows[0])
		}
	default:
		if more {
			p.Older = id(rows[len(rows)-1])
		}
		if q.After != "" {
			p.Newer = id(rows[0])
		}
	}
	return p
}

func (q LogQuery) cursorID() string {
	if q.Before != "" {
		return q.Before
	}
	return q.After
}

// emailExpr is the sign-in event's email, folded, as its index has it.
func (db *DB) emailExpr() string {
	if db.d.name() == "postgres" {
		return "lower(data->>'email')"
	}
	return "lower(json_extract(data, '$.email'))"
}

// SignInLog pages the sign-ins and failed sign-ins of the tenant in ctx.
func (db *DB) SignInLog(ctx context.Context, q LogQuery) (LogPage[Event], error) {
	tenantID, ok := TenantFrom(ctx)
	if !ok {
		return LogPage[Event]{}, ErrNoTenant
	}
	if q.Action != "" && q.Action != SignInSucceeded && q.Action != SignInFailed {
		return LogPage[Event]{}, fmt.Errorf("%w: sign-in log action %q", ErrInvalid, q.Action)
	}
	var rows []Event
	err := db.global(ctx, false, func(qr querier) error {
		s := logSQL{cols: eventCols, table: "events", tcol: "created_at", where: "tenant_id = $1 AND " + signInTypes, args: []any{tenantID}}
		if q.Action != "" {
			s.and("type", q.Action)
		}
		if q.Actor != "" {
			s.and(db.emailExpr(), strings.ToLower(strings.TrimSpace(q.Actor)))
		}
		var err error
		rows, err = queryLog(ctx, db, qr, s, tenantID, q, scanEvent)
		return err
	})
	if err != nil {
		return LogPage[Event]{}, db.wrap("sign-in log", err)
	}
	return pageOf(rows, q, func(e Event) string { return e.ID }), nil
}

// AuditLog pages the audit rows of the tenant in ctx.
func (db *DB) AuditLog(ctx context.Context, q LogQuery) (LogPage[AuditEvent], error) {
	var rows []AuditEvent
	err := db.scopedRead(ctx, func(qr querier, tenantID string) error {
		s := logSQL{cols: auditCols, table: "audit_events", tcol: "ts", where: "tenant_id = $1", args: []any{tenantID}}
		if q.Action != "" {
			s.and("action", q.Action)
		}
		if q.Actor != "" {
			s.and("actor_id", strings.TrimSpace(q.Actor)) // a generated column (migration 0071)
		}
		var err error
		rows, err = queryLog(ctx, db, qr, s, tenantID, q, scanAudit)
		return err
	})
	if err != nil {
		return LogPage[AuditEvent]{}, db.wrap("audit log", err)
	}
	return pageOf(rows, q, func(e AuditEvent) string { return e.ID }), nil
}
