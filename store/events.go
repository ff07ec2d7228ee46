package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

const eventCols = "id, tenant_id, type, data, created_at"

func scanEvent(r row) (Event, error) {
	var e Event
	err := r.Scan(&e.ID, nullStringDest{&e.TenantID}, &e.Type, jsonDest{&e.Data}, timeDest{&e.CreatedAt})
	return e, err
}

// AppendEvent writes an event to the outbox. Call it inside the InTx of
// the change it describes so that both commit or neither does.
func (db *DB) AppendEvent(ctx context.Context, e Event) (Event, error) {
	if e.Type == "" {
		return Event{}, fmt.Errorf("%w: event type is empty", ErrInvalid)
	}
	if e.ID == "" {
		e.ID = NewID(PrefixEvent)
	}
	e.CreatedAt = db.now()
	data, err := jsonArg(e.Data)
	if err != nil {
		return Event{}, err
	}
	e.Data = json.RawMessage(data)
	// Nothing of the row comes back, so in a transaction the INSERT rides
	// with the next statement or COMMIT (execLater): an event is written
	// exactly when its change commits either way.
	err = db.global(ctx, true, func(q querier) error {
		return db.execLater(ctx, q, "append event", db.d.appendEventSQL(),
			e.ID, nullString(e.TenantID), e.Type, data, db.d.timeArg(e.CreatedAt))
	})
	return e, db.wrap("append event", err)
}

// eventsPerInsert bounds the rows of one INSERT of AppendEvents (five
// bound parameters each).
const eventsPerInsert = 200

// AppendEvents appends events in the order given, as AppendEvent does one
// at a time, but in multi-row INSERTs: a group PUT of 10,000 members
// announces 10,000 memberships, and 10,000 statements made it slow on
// SQLite, where the statement journal of a long transaction made each
// statement cost more than the one before.
func (db *DB) AppendEvents(ctx context.Context, es []Event) ([]Event, error) {
	if len(es) == 0 {
		return nil, nil
	}
	out := make([]Event, len(es))
	args := make([]any, 0, 5*len(es))
	now := db.now()
	for i, e := range es {
		if e.Type == "" {
			return nil, fmt.Errorf("%w: event type is empty", ErrInvalid)
		}
		if e.ID == "" {
			e.ID = NewID(PrefixEvent)
		}
		e.CreatedAt = now
		data, err := jsonArg(e.Data)
		if err != nil {
			return nil, db.wrap("append events", err)
		}
		e.Data = json.RawMessage(data)
		out[i] = e
		args = append(args, e.ID, nullString(e.TenantID), e.Type, data, db.d.timeArg(e.CreatedAt))
	}
	err := db.global(ctx, true, func(q querier) error {
		for len(args) > 0 {
			n := min(len(args)/5, eventsPerInsert)
			if err := db.execLater(ctx, q, "append events", db.d.appendEventsSQL(n), args[:5*n]...); err != nil {
				return err
			}
			args = args[5*n:]
		}
		return nil
	})
	if err != nil {
		return nil, db.wrap("append events", err)
	}
	return out, nil
}

// ListEvents pages through the event stream in the order it was written;
// After is the id of the last event already seen.
//
// Sequence numbers are taken at insert but become visible at commit, so a
// transaction holding seq 10 could commit after another's seq 11 and a
// reader already past 11 would never see 10. On PostgreSQL every event
// writer holds a shared advisory lock until it commits and a reader takes
// it exclusively, just long enough to read the highest seq: the writers in
// flight have finished by then (they are short), so every seq up to it is
// committed or gone for good, and any later writer takes a higher one. The
// page is then read up to that horizon without the lock: a filter that
// matches few events can read a long stretch of the table, and all event
// writers (every sign-in, every SCIM change) waited for it when the lock
// was held for the whole read.
func (db *DB) ListEvents(ctx context.Context, p Page) ([]Event, string, error) {
	return db.ListEventsMatching(ctx, EventFilter{}, p)
}

// EventFilter narrows the event stream. Zero fields match every event.
type EventFilter struct {
	Types    []string // any of these types
	TenantID string   // this tenant's events only
}

// ListEventsMatching is ListEvents over the events f matches. A page's
// cursor is the last event it returned, so a consumer following a filtered
// stream resumes where it stands as with the whole one.
func (db *DB) ListEventsMatching(ctx context.Context, f EventFilter, p Page) ([]Event, string, error) {
	p = p.Normalize()
	horizon, err := db.eventsHorizon(ctx)
	if err != nil {
		return nil, "", db.wrap("list events", err)
	}
	if beforeEventsRead != nil {
		beforeEventsRead()
	}
	var out []Event
	err = db.global(ctx, false, func(q querier) error {
		args := []any{p.Limit + 1}
		arg := func(v any) string {
			args = append(args, v)
			return fmt.Sprintf("$%d", len(args))
		}
		where := []string{"seq <= " + arg(horizon)}
		if p.After != "" {
			where = append(where, "seq > (SELECT seq FROM events WHERE id = "+arg(p.After)+")")
		}
		if f.TenantID != "" {
			where = append(where, "tenant_id = "+arg(f.TenantID))
		}
		if len(f.Types) > 0 {
			in := make([]string, len(f.Types))
			for i, t := range f.Types {
				in[i] = arg(t)
			}
			where = append(where, "type IN ("+strings.Join(in, ", ")+")")
		}
		query := "SELECT " + eventCols + " FROM events WHERE " + strings.Join(where, " AND ")
		rs, err := q.query(ctx, query+" ORDER BY seq LIMIT $1", args...)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanEvent)
		return err
	})
	if err != nil {
		return nil, "", db.wrap("list events", err)
	}
	out, next := cut(out, p.Limit, func(e Event) string { return e.ID })
	return out, next, nil
}

// eventsHorizon is the highest seq a reader may show: taken under the
// events lock, once no writer is in flight, so that no seq at or below it
// can still commit (see ListEvents).
func (db *DB) eventsHorizon(ctx context.Context) (int64, error) {
	var horizon int64
	err := db.global(ctx, true, func(q querier) error {
		if err := db.d.lockEvents(ctx, q, true); err != nil {
			return err
		}
		return q.queryRow(ctx, "SELECT COALESCE(MAX(seq), 0) FROM events").Scan(&horizon)
	})
	return horizon, err
}

// beforeEventsRead, when a test sets it, runs between a reader's horizon
// and its read.
var beforeEventsRead func()

// eventRows renders n rows of VALUES from row, a format of five numbered
// placeholders, numbered on from $1.
func eventRows(n int, row string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		k := 5 * i
		fmt.Fprintf(&b, "("+row+")", k+1, k+2, k+3, k+4, k+5)
	}
	return b.String()
}
