package store

import (
	"context"
	"fmt"
)

// filtered describes a table of directory rows that SCIM filters select
// from: users or groups.
type filtered[T any] struct {
	table  string // also names the rows in errors
	cols   string
	fields map[string]fieldKind
	scan   func(row) (T, error)
}

// find lists the rows of t in the tenant in ctx, of directoryID if set,
// that match f, in the order s asks (id, creation, order by default), with
// the total number of matches.
func find[T any](ctx context.Context, db *DB, t filtered[T], directoryID string, f Filter, s Sort, limit, offset int) ([]T, int, error) {
	var out []T
	var total int
	order, err := orderBy(s, t.fields, t.table, db.d.name() == "postgres")
	if err != nil {
		return nil, 0, db.wrap("find "+t.table, err)
	}
	err = db.scopedRead(ctx, func(qr querier, tenantID string) error {
		where, args, err := db.where(tenantID, directoryID, f, t.fields, t.table)
		if err != nil {
			return err
		}
		if err := qr.queryRow(ctx, "SELECT count(*) FROM "+t.table+" WHERE "+where, args...).Scan(&total); err != nil {
			return err
		}
		limit, offset := listWindow(limit, offset)
		rs, err := qr.query(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT %d OFFSET %d", t.cols, t.table, where, order, limit, offset), args...)
		if err != nil {
			return err
		}
		out, err = collect(rs, t.scan)
		return err
	})
	return out, total, db.wrap("find "+t.table, err)
}

// deleteRow deletes row id of table in the tenant in ctx, or fails with
// ErrNotFound; what names the row in errors. Foreign keys remove what
// hangs off it.
func (db *DB) deleteRow(ctx context.Context, table, what, id string) error {
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		n, err := q.exec(ctx, "DELETE FROM "+table+" WHERE tenant_id = $1 AND id = $2", tenantID, id)
		if err == nil && n == 0 {
			return ErrNotFound
		}
		return err
	})
	return db.wrap("delete "+what, err)
}

// where renders the tenant, directory and filter conditions of a list.
func (db *DB) where(tenantID, directoryID string, f Filter, fields map[string]fieldKind, table string) (string, []any, error) {
	b := &sqlFilter{fields: fields, table: table, args: []any{tenantID}, timeOf: db.d.timeArg}
	where := "tenant_id = $1"
	if directoryID != "" {
		where += " AND directory_id = " + b.arg(directoryID)
	}
	if f != nil {
		cond, err := b.render(f)
		if err != nil {
			return "", nil, err
		}
		where += " AND " + cond
	}
	return where, b.args, nil
}

// listWindow bounds a list; the numbers are ints, so formatting them into
// the statement is safe.
func listWindow(limit, offset int) (int, int) {
	switch {
	case limit <= 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	return limit, max(offset, 0)
}
