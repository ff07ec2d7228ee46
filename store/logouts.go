package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Logout is one back-channel logout on its way to one application: the
// session that ended, and whose it was. Rows are queued by
// FinishRevocation (or EnqueueLogouts) and delivered like webhook
// deliveries: claimed with a lease, retried with backoff, dead-lettered
// after the dispatcher's retry window. Status and the attempt fields mean
// what they mean for a Delivery.
type Logout struct {
	ID             string // blo_…
	SessionID      string
	TenantID       string
	UserID         string
	ApplicationID  string
	Status         DeliveryStatus
	Attempts       int
	NextAttemptAt  time.Time
	LastStatusCode int
	LastError      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// RetryFrom and RetryBase are a redelivery's, as a Delivery's: the
	// retry window starts anew at RetryFrom, the backoff after RetryBase
	// attempts.
	RetryFrom *time.Time
	RetryBase int
}

const logoutCols = `id, session_id, tenant_id, user_id, application_id, status, attempts, next_attempt_at,
	last_status_code, last_error, created_at, updated_at, retry_from, retry_base`

func scanLogout(r row) (Logout, error) {
	var l Logout
	err := r.Scan(&l.ID, &l.SessionID, &l.TenantID, &l.UserID, &l.ApplicationID, &l.Status, &l.Attempts,
		timeDest{&l.NextAttemptAt}, &l.LastStatusCode, &l.LastError, timeDest{&l.CreatedAt}, timeDest{&l.UpdatedAt},
		nullTimeDest{&l.RetryFrom}, &l.RetryBase)
	return l, err
}

// EnqueueLogouts queues a back-channel logout for each of ls (SessionID,
// TenantID, UserID and ApplicationID set) whose application exists and has
// a back-channel logout URI at this moment; the others are skipped. A
// (session, application) pair already queued is not queued again.
func (db *DB) EnqueueLogouts(ctx context.Context, ls []Logout) error {
	if len(ls) == 0 {
		return nil
	}
	now := db.now()
	err := db.global(ctx, true, func(q querier) error {
		for _, l := range ls {
			if l.SessionID == "" || l.ApplicationID == "" {
				return fmt.Errorf("%w: a logout needs a session and an application", ErrInvalid)
			}
			_, err := q.exec(ctx, `INSERT INTO logouts (id, session_id, tenant_id, user_id, application_id,
					next_attempt_at, created_at, updated_at)
				SELECT $1, $2, $3, $4, a.id, $6, $6, $6 FROM applications a
				 WHERE a.id = $5 AND a.backchannel_logout_uri <> ''
				ON CONFLICT (session_id, application_id) DO NOTHING`,
				NewID(PrefixLogout), l.SessionID, l.TenantID, l.UserID, l.ApplicationID, db.d.timeArg(now))
			if err != nil {
				return err
			}
		}
		return nil
	})
	return db.wrap("enqueue logouts", err)
}

// ClaimLogouts is ClaimDeliveries for back-channel logouts.
// The logouts of the applications in skip are left for a later claim, as
// ClaimDeliveries leaves those of its skipped webhooks.
func (db *DB) ClaimLogouts(ctx context.Context, now time.Time, lease time.Duration, limit int, skip ...string) ([]Logout, error) {
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("%w: claim needs a positive limit and lease", ErrInvalid)
	}
	lock := ""
	if db.d.rowSecurity() { // PostgreSQL
		lock = " FOR UPDATE SKIP LOCKED"
	}
	args := []any{db.d.timeArg(now.Add(lease)), db.d.timeArg(now), limit}
	except := notIn("application_id", &args, skip)
	var out []Logout
	err := db.global(ctx, true, func(q querier) error {
		rs, err := q.query(ctx, `UPDATE logouts SET next_attempt_at = $1, attempts = attempts + 1, updated_at = $2
			WHERE id IN (SELECT id FROM logouts WHERE status IN ('pending', 'failed') AND next_attempt_at <= $2`+except+`
				ORDER BY next_attempt_at, seq LIMIT $3`+lock+`)
			RETURNING `+logoutCols, args...)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanLogout)
		return err
	})
	return out, db.wrap("claim logouts", err)
}

// DueLogouts reports whether any logout is due at now, with a read only.
func (db *DB) DueLogouts(ctx context.Context, now time.Time) (bool, error) {
	var n int
	err := db.global(ctx, false, func(q querier) error {
		return q.queryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM logouts
			WHERE status IN ('pending', 'failed') AND next_attempt_at <= $1 LIMIT 1) d`,
			db.d.timeArg(now)).Scan(&n)
	})
	return n > 0, db.wrap("due logouts", err)
}

// ReleaseLogouts is ReleaseDeliveries for back-channel logouts.
func (db *DB) ReleaseLogouts(ctx context.Context, now time.Time, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	err := db.global(ctx, true, func(q querier) error {
		for _, id := range ids {
			if _, err := q.exec(ctx, `UPDATE logouts SET next_attempt_at = $2, attempts = attempts - 1, updated_at = $2
				WHERE id = $1 AND status IN ('pending', 'failed') AND attempts > 0`, id, db.d.timeArg(now)); err != nil {
				return err
			}
		}
		return nil
	})
	return db.wrap("release logouts", err)
}

// RecordLogout stores the outcome of an attempt on a claimed logout.
func (db *DB) RecordLogout(ctx context.Context, id string, r DeliveryResult) error {
	switch r.Status {
	case DeliverySucceeded, DeliveryFailed, DeliveryDead:
	default:
		return fmt.Errorf("%w: logout status %q", ErrInvalid, r.Status)
	}
	now := db.now()
	next := r.NextAttemptAt
	if r.Status != DeliveryFailed || next.IsZero() {
		next = now
	}
	err := db.global(ctx, true, func(q querier) error {
		n, err := q.exec(ctx, `UPDATE logouts SET status = $2, last_status_code = $3, last_error = $4,
			next_attempt_at = $5, updated_at = $6 WHERE id = $1`,
			id, string(r.Status), r.StatusCode, r.Error, db.d.timeArg(next), db.d.timeArg(now))
		if err == nil && n == 0 {
			return ErrNotFound
		}
		return err
	})
	return db.wrap("record logout", err)
}

// LogoutQuery selects back-channel logouts: those of one application,
// of one tenant, both, or (neither set) every one, for the vendor's
// console; optionally of one status (DeliveryDead lists the dead letters).
type LogoutQuery struct {
	ApplicationID string
	TenantID      string
	Status        DeliveryStatus
	Page          Page
}

// ListLogouts pages through back-channel logouts in the order they were
// queued.
func (db *DB) ListLogouts(ctx context.Context, q LogoutQuery) ([]Logout, string, error) {
	p := q.Page.Normalize()
	var out []Logout
	err := db.global(ctx, false, func(qr querier) error {
		conds := []string{"true"}
		args := []any{p.Limit + 1}
		add := func(cond string, v any) {
			args = append(args, v)
			conds = append(conds, fmt.Sprintf(cond, len(args)))
		}
		if q.ApplicationID != "" {
			add("application_id = $%d", q.ApplicationID)
		}
		if q.TenantID != "" {
			add("tenant_id = $%d", q.TenantID)
		}
		if q.Status != "" {
			add("status = $%d", string(q.Status))
		}
		if p.After != "" {
			add("seq > (SELECT seq FROM logouts WHERE id = $%d)", p.After)
		}
		rs, err := qr.query(ctx, "SELECT "+logoutCols+" FROM logouts WHERE "+strings.Join(conds, " AND ")+" ORDER BY seq LIMIT $1", args...)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanLogout)
		return err
	})
	if err != nil {
		return nil, "", db.wrap("list logouts", err)
	}
	out, next := cut(out, p.Limit, func(l Logout) string { return l.ID })
	return out, next, nil
}

// RedeliverLogout puts a failed or dead back-channel logout of tenantID
// back in the queue, due at once, and returns it. Its retry window starts
// anew (RetryFrom, RetryBase): the dispatcher retries it on the usual
// schedule for as long as a new logout, not once. Another tenant's logout is ErrNotFound; a
// pending or delivered one is ErrConflict.
func (db *DB) RedeliverLogout(ctx context.Context, tenantID, id string) (Logout, error) {
	now := db.now()
	var l Logout
	err := db.global(ctx, true, func(q querier) error {
		var err error
		l, err = scanLogout(q.queryRow(ctx, `UPDATE logouts SET status = 'pending', next_attempt_at = $3, updated_at = $3,
				retry_from = $3, retry_base = attempts
			WHERE id = $1 AND tenant_id = $2 AND status IN ('failed', 'dead') RETURNING `+logoutCols,
			id, tenantID, db.d.timeArg(now)))
		if db.d.isNoRows(err) {
			if _, gerr := scanLogout(q.queryRow(ctx, "SELECT "+logoutCols+" FROM logouts WHERE id = $1 AND tenant_id = $2", id, tenantID)); gerr != nil {
				return gerr
			}
			return fmt.Errorf("%w: only a failed or dead logout can be redelivered", ErrConflict)
		}
		return err
	})
	return l, db.wrap("redeliver logout", err)
}
