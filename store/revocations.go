package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ID prefixes of the revocation and logout queues (internal records, not
// part of the contract's resources).
const (
	PrefixRevocation = "rvk"
	PrefixLogout     = "blo"
)

// RevocationStore is the revocation queue (global): orders to end
// sessions, recorded in the transaction of the change that requires them,
// and the back-channel logout queue their application feeds.
type RevocationStore interface {
	RecordRevocation(ctx context.Context, r Revocation) (Revocation, error)
	DueRevocations(ctx context.Context, now time.Time) (bool, error)
	ClaimRevocations(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Revocation, error)
	FinishRevocation(ctx context.Context, id string, logouts []Logout) error
	RetryRevocation(ctx context.Context, id string, next time.Time, why string) error
	PendingRevocations(ctx context.Context, limit int) ([]Revocation, error)

	EnqueueLogouts(ctx context.Context, ls []Logout) error
	DueLogouts(ctx context.Context, now time.Time) (bool, error)
	ClaimLogouts(ctx context.Context, now time.Time, lease time.Duration, limit int, skip ...string) ([]Logout, error)
	RecordLogout(ctx context.Context, id string, r DeliveryResult) error
	ReleaseLogouts(ctx context.Context, now time.Time, ids ...string) error
	ListLogouts(ctx context.Context, q LogoutQuery) ([]Logout, string, error)
	RedeliverLogout(ctx context.Context, tenantID, id string) (Logout, error)
}

// RevocationKind says which sessions a Revocation ends.
type RevocationKind string

// Kinds of revocation: what SubjectID names.
const (
	RevokeSession    RevocationKind = "session"    // SubjectID is a ses_ id
	RevokeUser       RevocationKind = "user"       // SubjectID is a usr_ id
	RevokeTenant     RevocationKind = "tenant"     // SubjectID is empty
	RevokeConnection RevocationKind = "connection" // SubjectID is a conn_ id
	// RevokeClientGrant ends one application's grant in one session, which
	// lives on: SubjectID is "{ses_ id} {client id}"
	// (sessions.GrantSubject). No session ends, so no logout is queued.
	RevokeClientGrant RevocationKind = "client"
)

// Valid reports whether k is a known kind.
func (k RevocationKind) Valid() bool {
	switch k {
	case RevokeSession, RevokeUser, RevokeTenant, RevokeConnection, RevokeClientGrant:
		return true
	}
	return false
}

// Revocation is a durable order to end sessions: every session of a user,
// a tenant or a connection, or one session. RecordRevocation writes it in
// the transaction of the change that requires it; a worker (see package
// events) applies it to the session store and deletes it once the store
// has acknowledged, retrying until then.
type Revocation struct {
	ID        string // rvk_…
	Kind      RevocationKind
	TenantID  string
	SubjectID string
	// Reason says why, for logs and operators ("scim.user.deleted",
	// "tenant.deleted", "connection.deactivated", "operator", …).
	Reason string
	// NotBefore delays the order (zero: due at once). Nothing records a
	// delayed order today: a connection's deactivation sweeps again on a
	// timer of the node that made it (connections/revoke.go), and a
	// sign-in that a stale node let through re-reads the connection once
	// its session exists (broker's stillAllowed).
	NotBefore time.Time
	Attempts  int
	LastError string
	CreatedAt time.Time
}

const revocationCols = "id, kind, tenant_id, subject_id, reason, attempts, next_attempt_at, last_error, created_at"

func scanRevocation(r row) (Revocation, error) {
	var v Revocation
	err := r.Scan(&v.ID, &v.Kind, &v.TenantID, &v.SubjectID, &v.Reason, &v.Attempts,
		timeDest{&v.NotBefore}, &v.LastError, timeDest{&v.CreatedAt})
	return v, err
}

// RecordRevocation writes r to the revocation queue. Call it inside the
// InTx of the change that must end the sessions, so that the order commits
// exactly when the change does: then no failure of the session store
// (Redis down) can leave the change made and the sessions alive. After the
// commit, hand the returned Revocation to the applier for immediate effect;
// if that fails, the workers retry until the session store acknowledges.
func (db *DB) RecordRevocation(ctx context.Context, r Revocation) (Revocation, error) {
	switch {
	case !r.Kind.Valid():
		return Revocation{}, fmt.Errorf("%w: revocation kind %q", ErrInvalid, r.Kind)
	case r.TenantID == "":
		return Revocation{}, fmt.Errorf("%w: revocation needs a tenant", ErrInvalid)
	case r.Kind != RevokeTenant && r.SubjectID == "":
		return Revocation{}, fmt.Errorf("%w: %s revocation needs a subject", ErrInvalid, r.Kind)
	case r.Kind == RevokeClientGrant && !strings.Contains(r.SubjectID, " "):
		return Revocation{}, fmt.Errorf("%w: client revocation needs a session and a client", ErrInvalid)
	}
	if r.ID == "" {
		r.ID = NewID(PrefixRevocation)
	}
	r.CreatedAt = db.now()
	if r.NotBefore.Before(r.CreatedAt) {
		r.NotBefore = r.CreatedAt
	}
	r.Attempts, r.LastError = 0, ""
	err := db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "INSERT INTO revocations ("+revocationCols+") VALUES ($1, $2, $3, $4, $5, 0, $6, '', $7)",
			r.ID, string(r.Kind), r.TenantID, r.SubjectID, r.Reason, db.d.timeArg(r.NotBefore), db.d.timeArg(r.CreatedAt))
		if err != nil {
			return err
		}
		// Kept from the start, so that no moment exists when the order is
		// in neither table (see KeptRevocations).
		_, err = q.exec(ctx, "INSERT INTO revocations_kept (id, kind, tenant_id, subject_id, created_at) VALUES ($1, $2, $3, $4, $5)",
			r.ID, string(r.Kind), r.TenantID, r.SubjectID, db.d.timeArg(r.CreatedAt))
		return err
	})
	return r, db.wrap("record revocation", err)
}

// DueRevocations reports whether any revocation is due at now, cheaply
// (a read on the pool), so that idle workers poll without writing.
func (db *DB) DueRevocations(ctx context.Context, now time.Time) (bool, error) {
	var n int
	err := db.global(ctx, false, func(q querier) error {
		return q.queryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM revocations WHERE next_attempt_at <= $1 LIMIT 1) d",
			db.d.timeArg(now)).Scan(&n)
	})
	return n > 0, db.wrap("due revocations", err)
}

// ClaimRevocations takes up to limit revocations due at now, pushing each
// one's next attempt to now+lease and counting the attempt, so that no
// other worker takes it meanwhile (FOR UPDATE SKIP LOCKED on PostgreSQL;
// SQLite's one writer serialises claims).
func (db *DB) ClaimRevocations(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Revocation, error) {
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("%w: claim needs a positive limit and lease", ErrInvalid)
	}
	lock := ""
	if db.d.rowSecurity() { // PostgreSQL
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []Revocation
	err := db.global(ctx, true, func(q querier) error {
		rs, err := q.query(ctx, `UPDATE revocations SET next_attempt_at = $1, attempts = attempts + 1
			WHERE id IN (SELECT id FROM revocations WHERE next_attempt_at <= $2
				ORDER BY next_attempt_at, seq LIMIT $3`+lock+`)
			RETURNING `+revocationCols,
			db.d.timeArg(now.Add(lease)), db.d.timeArg(now), limit)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanRevocation)
		return err
	})
	return out, db.wrap("claim revocations", err)
}

// FinishRevocation deletes applied revocation id from the queue, marks its
// kept copy applied now (see KeptRevocations) and, in the same
// transaction, queues the back-channel logouts of the sessions it ended:
// one per (session, application) for applications that have a
// back-channel logout URI now. Deleting an already deleted revocation (two
// nodes applied it) is not an error; logouts are queued at most once.
func (db *DB) FinishRevocation(ctx context.Context, id string, logouts []Logout) error {
	err := db.InTx(ctx, func(ctx context.Context) error {
		if id != "" {
			if _, err := db.RetireRevocation(ctx, id); err != nil {
				return err
			}
		}
		return db.EnqueueLogouts(ctx, logouts)
	})
	return db.wrap("finish revocation", err)
}

// RetireRevocation takes order id off the queue, marking it applied, and
// reports whether it was still queued: false when another node, or an
// earlier run, retired it first. Call it inside the InTx that records
// what the order ended, and record that only when it reports true, so
// that an order applied twice (two nodes at once; a retry, which the
// session store answers with what the first run ended) is recorded once.
func (db *DB) RetireRevocation(ctx context.Context, id string) (bool, error) {
	var retired bool
	err := db.global(ctx, true, func(q querier) error {
		n, err := q.exec(ctx, "DELETE FROM revocations WHERE id = $1", id)
		if err != nil {
			return err
		}
		retired = n > 0
		// A second finish moves applied_at later, which only widens
		// what a replay ends (never what it spares).
		_, err = q.exec(ctx, "UPDATE revocations_kept SET applied_at = $2 WHERE id = $1", id, db.d.timeArg(db.now()))
		return err
	})
	return retired, db.wrap("retire revocation", err)
}

// RetryRevocation records a failed attempt at revocation id and makes it
// due again at next.
func (db *DB) RetryRevocation(ctx context.Context, id string, next time.Time, why string) error {
	if len(why) > 500 {
		why = why[:500]
	}
	err := db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "UPDATE revocations SET next_attempt_at = $2, last_error = $3 WHERE id = $1",
			id, db.d.timeArg(next), why)
		return err
	})
	return db.wrap("retry revocation", err)
}

// PendingRevocations lists the revocations not yet applied, oldest first,
// for operators and tests.
func (db *DB) PendingRevocations(ctx context.Context, limit int) ([]Revocation, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []Revocation
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, "SELECT "+revocationCols+" FROM revocations ORDER BY seq LIMIT $1", limit)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanRevocation)
		return err
	})
	return out, db.wrap("pending revocations", err)
}
