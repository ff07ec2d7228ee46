package store

import (
	"context"
	"fmt"
	"time"
)

// UsageMeter names a kind of billable fact.
type UsageMeter string

const (
	// MeterLogin is one completed sign-in; Subject is the user.
	MeterLogin UsageMeter = "login.succeeded"
	// MeterActiveUser is a user's first sign-in of a calendar month (UTC);
	// its key holds tenant, user and month, so it is written once.
	MeterActiveUser UsageMeter = "user.active"
	// MeterSCIMOperation is one SCIM write; Subject is the operation.
	MeterSCIMOperation UsageMeter = "scim.operation"
	// MeterConnections and MeterDirectoryUsers are daily snapshots; Value
	// is the count that day.
	MeterConnections    UsageMeter = "connection.count"
	MeterDirectoryUsers UsageMeter = "directory.user_count"
)

// Valid reports whether m is a meter the store accepts.
func (m UsageMeter) Valid() bool {
	switch m {
	case MeterLogin, MeterActiveUser, MeterSCIMOperation, MeterConnections, MeterDirectoryUsers:
		return true
	}
	return false
}

// UsageRecord is one billable fact of a tenant. IdempotencyKey is unique
// within the tenant: a second record with the same key is not written.
type UsageRecord struct {
	TenantID       string
	IdempotencyKey string
	Meter          UsageMeter
	Subject        string
	Value          int64
	At             time.Time
}

// UsageDay sums one meter's records of one UTC day.
type UsageDay struct {
	Day   string // YYYY-MM-DD
	Meter UsageMeter
	Sum   int64
	Max   int64
}

const usageCols = "tenant_id, idempotency_key, meter, subject, value, at"

func scanUsage(r row) (UsageRecord, error) {
	var u UsageRecord
	err := r.Scan(&u.TenantID, &u.IdempotencyKey, &u.Meter, &u.Subject, &u.Value, timeDest{&u.At})
	return u, err
}

// RecordUsage writes r for the tenant in ctx unless a record with its key
// exists; it reports whether it wrote. Call it inside the InTx of the fact
// it counts, so that the two commit or roll back together.
func (db *DB) RecordUsage(ctx context.Context, r UsageRecord) (bool, error) {
	var n int64
	err := db.recordUsage(ctx, r, func(q querier, sql string, args []any) (err error) {
		n, err = q.exec(ctx, sql, args...)
		return err
	})
	return n == 1, db.wrap("record usage", err)
}

// RecordUsageLater is RecordUsage for a caller that does not need to know
// whether the record was new (a key of its own making): inside a
// transaction on PostgreSQL the INSERT is sent with the transaction's next
// statement or its COMMIT instead of a round trip of its own, and an error
// of it is returned by that call. It is what a SCIM write meters with.
func (db *DB) RecordUsageLater(ctx context.Context, r UsageRecord) error {
	err := db.recordUsage(ctx, r, func(q querier, sql string, args []any) error {
		return db.execLater(ctx, q, "record usage", sql, args...)
	})
	return db.wrap("record usage", err)
}

// recordUsage checks r and has run send the INSERT of RecordUsage and
// RecordUsageLater for the tenant in ctx.
func (db *DB) recordUsage(ctx context.Context, r UsageRecord, run func(q querier, sql string, args []any) error) error {
	if !r.Meter.Valid() || r.IdempotencyKey == "" {
		return fmt.Errorf("%w: usage record needs a known meter and an idempotency key", ErrInvalid)
	}
	if r.At.IsZero() {
		r.At = db.now()
	}
	r.At = r.At.UTC().Truncate(time.Microsecond)
	return db.scoped(ctx, func(q querier, tenantID string) error {
		return run(q, `INSERT INTO usage_records (tenant_id, idempotency_key, meter, subject, value, day, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING`,
			[]any{tenantID, r.IdempotencyKey, r.Meter, r.Subject, r.Value, r.At.Format(time.DateOnly), db.d.timeArg(r.At)})
	})
}

// UsageByDay sums the records of the tenant in ctx in [from, to) per UTC
// day and meter, in day order.
func (db *DB) UsageByDay(ctx context.Context, from, to time.Time) ([]UsageDay, error) {
	var out []UsageDay
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		rs, err := q.query(ctx, `SELECT day, meter, SUM(value), MAX(value) FROM usage_records
			WHERE tenant_id = $1 AND at >= $2 AND at < $3 GROUP BY day, meter ORDER BY day, meter`,
			tenantID, db.d.timeArg(from.UTC()), db.d.timeArg(to.UTC()))
		if err != nil {
			return err
		}
		out, err = collect(rs, func(r row) (UsageDay, error) {
			var d UsageDay
			err := r.Scan(&d.Day, &d.Meter, &d.Sum, &d.Max)
			return d, err
		})
		return err
	})
	return out, db.wrap("usage by day", err)
}

// UsageRecords pages through the records of the tenant in ctx in [from,
// to), ordered by time then key; a page continues after (afterAt, afterKey)
// when afterKey is set.
func (db *DB) UsageRecords(ctx context.Context, from, to time.Time, afterAt time.Time, afterKey string, limit int) ([]UsageRecord, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []UsageRecord
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		query := "SELECT " + usageCols + " FROM usage_records WHERE tenant_id = $1 AND at >= $2 AND at < $3"
		args := []any{tenantID, db.d.timeArg(from.UTC()), db.d.timeArg(to.UTC())}
		if afterKey != "" {
			query += " AND " + db.d.after("at", "idempotency_key", "$4", "$5")
			args = append(args, db.d.timeArg(afterAt.UTC()), afterKey)
		}
		query += fmt.Sprintf(" ORDER BY at, idempotency_key LIMIT %d", limit)
		rs, err := q.query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanUsage)
		return err
	})
	return out, db.wrap("list usage records", err)
}

// UsageTenants lists, in id order, every tenant id with records in [from,
// to), erased tenants' pseudonyms included: the cross-tenant step of a
// usage export, which then reads each tenant under its own scope.
func (db *DB) UsageTenants(ctx context.Context, from, to time.Time) ([]string, error) {
	query := "SELECT DISTINCT tenant_id FROM usage_records WHERE at >= $1 AND at < $2 ORDER BY tenant_id"
	if db.d.rowSecurity() {
		query = "SELECT idb_usage_tenants($1, $2)"
	}
	var out []string
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, query, db.d.timeArg(from.UTC()), db.d.timeArg(to.UTC()))
		if err != nil {
			return err
		}
		out, err = collect(rs, scanString)
		return err
	})
	return out, db.wrap("list usage tenants", err)
}

// UsageCounts counts what the daily snapshots meter for the tenant in ctx:
// its active connections and the active users its directories provision.
func (db *DB) UsageCounts(ctx context.Context) (connections, directoryUsers int64, err error) {
	err = db.scopedRead(ctx, func(q querier, tenantID string) error {
		if err := q.queryRow(ctx, "SELECT COUNT(*) FROM connections WHERE tenant_id = $1 AND status = 'active'", tenantID).Scan(&connections); err != nil {
			return err
		}
		return q.queryRow(ctx, "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND directory_id IS NOT NULL AND active", tenantID).Scan(&directoryUsers)
	})
	return connections, directoryUsers, db.wrap("count usage", err)
}

// UsageStore is the usage part of Store: records are tenant-scoped, except
// UsageTenants, the export's one cross-tenant step.
type UsageStore interface {
	RecordUsage(ctx context.Context, r UsageRecord) (bool, error)
	RecordUsageLater(ctx context.Context, r UsageRecord) error
	UsageByDay(ctx context.Context, from, to time.Time) ([]UsageDay, error)
	UsageRecords(ctx context.Context, from, to, afterAt time.Time, afterKey string, limit int) ([]UsageRecord, error)
	UsageTenants(ctx context.Context, from, to time.Time) ([]string, error)
	UsageCounts(ctx context.Context) (connections, directoryUsers int64, err error)
}
