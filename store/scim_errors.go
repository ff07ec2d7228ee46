package store

import (
	"context"
	"fmt"
	"time"
)

// SCIMErrorsKept is how many of a directory's SCIM errors the store keeps:
// the newest ones, enough to see what an IdP keeps getting wrong.
const SCIMErrorsKept = 20

// prefixSCIMError names the rows of the error ring; no API shows them.
const prefixSCIMError = "serr"

// SCIMError is one failed SCIM request of a directory, as its IdP was
// answered: the RFC 7644 error (status, scimType, detail) and the request
// line without query string or body (Path names our own ids only).
type SCIMError struct {
	TenantID    string
	DirectoryID string
	ID          string
	At          time.Time
	Status      int
	ScimType    string
	Detail      string
	Method      string
	Path        string
}

// SCIMErrorStore keeps the last SCIM errors of each directory. Store
// includes it.
type SCIMErrorStore interface {
	// RecordSCIMError adds e to the ring of its directory (of the tenant in
	// ctx) and, in the same transaction, drops what is older than the
	// newest SCIMErrorsKept: a bounded write per failed request.
	RecordSCIMError(ctx context.Context, e SCIMError) error
	// SCIMErrors lists the kept errors of a directory of the tenant in
	// ctx, newest first.
	SCIMErrors(ctx context.Context, directoryID string) ([]SCIMError, error)
}

const scimErrorCols = "tenant_id, directory_id, id, at, status, scim_type, detail, method, path"

// RecordSCIMError adds e to its directory's ring; see SCIMErrorStore.
func (db *DB) RecordSCIMError(ctx context.Context, e SCIMError) error {
	if e.DirectoryID == "" || e.Status == 0 || e.Method == "" {
		return fmt.Errorf("%w: a SCIM error needs a directory, a status and a method", ErrInvalid)
	}
	if e.ID == "" {
		e.ID = NewID(prefixSCIMError)
	}
	if e.At.IsZero() {
		e.At = db.now()
	}
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		if _, err := q.exec(ctx, "INSERT INTO scim_errors ("+scimErrorCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
			tenantID, e.DirectoryID, e.ID, db.d.timeArg(e.At), e.Status, e.ScimType, e.Detail, e.Method, e.Path); err != nil {
			return err
		}
		// The ring's tail: everything at or below the oldest row past the
		// ones kept, found and deleted along the primary key. Nothing while
		// the ring is not full (the subquery is NULL).
		_, err := q.exec(ctx, `DELETE FROM scim_errors WHERE tenant_id = $1 AND directory_id = $2 AND id <= (
			SELECT id FROM scim_errors WHERE tenant_id = $1 AND directory_id = $2 ORDER BY id DESC LIMIT 1 OFFSET $3)`,
			tenantID, e.DirectoryID, SCIMErrorsKept)
		return err
	})
	return db.wrap("record scim error", err)
}

// SCIMErrors lists a directory's kept SCIM errors, newest first.
func (db *DB) SCIMErrors(ctx context.Context, directoryID string) ([]SCIMError, error) {
	var out []SCIMError
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		rs, err := q.query(ctx, "SELECT "+scimErrorCols+" FROM scim_errors WHERE tenant_id = $1 AND directory_id = $2 ORDER BY id DESC LIMIT $3",
			tenantID, directoryID, SCIMErrorsKept)
		if err != nil {
			return err
		}
		out, err = collect(rs, func(r row) (SCIMError, error) {
			var e SCIMError
			err := r.Scan(&e.TenantID, &e.DirectoryID, &e.ID, timeDest{&e.At}, &e.Status, &e.ScimType, &e.Detail, &e.Method, &e.Path)
			return e, err
		})
		return err
	})
	return out, db.wrap("list scim errors", err)
}
