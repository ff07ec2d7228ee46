package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// KeptRevocation is a revocation order kept after it was applied, for as
// long as a session or refresh token it could have ended may still live:
// what a session store that lost or rewound data needs applied again.
type KeptRevocation struct {
	Seq       int64 // order of recording, for paging
	ID        string
	Kind      RevocationKind
	TenantID  string
	SubjectID string
	CreatedAt time.Time
	// AppliedAt is when the session store last acknowledged the order
	// (FinishRevocation); zero while it is still queued. Every session it
	// could have ended began before then.
	AppliedAt time.Time
}

// SessionStoreEpoch names the session store every kept revocation has been
// applied to: the server answering (Redis's run_id) and the epoch marker
// written into it after the last full replay.
type SessionStoreEpoch struct {
	Epoch     int64
	Server    string
	UpdatedAt time.Time
	// Applied is the highest count of applied revocations any node read
	// from the session store (sessions.Marker.Applied): a store counting
	// less has lost some.
	Applied int64
}

// RevocationKeeper is what outlives the session store's memory: the kept
// revocations and the session store epoch (global).
type RevocationKeeper interface {
	KeepRevocation(ctx context.Context, r Revocation) error
	KeptRevocations(ctx context.Context, since time.Time, afterSeq int64, limit int) ([]KeptRevocation, error)
	PruneKeptRevocations(ctx context.Context, before time.Time) (int, error)
	SessionStoreEpoch(ctx context.Context) (SessionStoreEpoch, error)
	AdvanceSessionStoreEpoch(ctx context.Context, from, to int64, server string) (bool, error)
	RaiseSessionStoreApplied(ctx context.Context, applied int64) error
}

// KeepRevocation keeps r as applied now, without queueing it: for a
// session ended straight in the session store (a sign-out, a token
// revocation), so that a session store that rewinds has it replayed like
// every queued order. Call it before ending the session, so that no moment
// exists when the session is ended and not kept.
func (db *DB) KeepRevocation(ctx context.Context, r Revocation) error {
	switch {
	case !r.Kind.Valid():
		return fmt.Errorf("%w: revocation kind %q", ErrInvalid, r.Kind)
	case r.TenantID == "":
		return fmt.Errorf("%w: revocation needs a tenant", ErrInvalid)
	case r.Kind != RevokeTenant && r.SubjectID == "":
		return fmt.Errorf("%w: %s revocation needs a subject", ErrInvalid, r.Kind)
	case r.Kind == RevokeClientGrant && !strings.Contains(r.SubjectID, " "):
		return fmt.Errorf("%w: client revocation needs a session and a client", ErrInvalid)
	}
	if r.ID == "" {
		r.ID = NewID(PrefixRevocation)
	}
	now := db.now()
	err := db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "INSERT INTO revocations_kept (id, kind, tenant_id, subject_id, created_at, applied_at) VALUES ($1, $2, $3, $4, $5, $5)",
			r.ID, string(r.Kind), r.TenantID, r.SubjectID, db.d.timeArg(now))
		return err
	})
	return db.wrap("keep revocation", err)
}

// KeptRevocations lists, in the order they were recorded and after
// afterSeq, up to limit kept revocations that still matter at a replay:
// those applied at or after since, and every one not yet applied. An order
// is kept from the transaction that records it, so an order is always in
// this list or was applied before since; a replay that reads it after
// noticing a rewind misses none, whichever node applies or retires what
// meanwhile.
func (db *DB) KeptRevocations(ctx context.Context, since time.Time, afterSeq int64, limit int) ([]KeptRevocation, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: kept revocations need a positive limit", ErrInvalid)
	}
	var out []KeptRevocation
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, `SELECT seq, id, kind, tenant_id, subject_id, created_at, applied_at FROM revocations_kept
			WHERE seq > $1 AND (applied_at IS NULL OR applied_at >= $2) ORDER BY seq LIMIT $3`,
			afterSeq, db.d.timeArg(since), limit)
		if err != nil {
			return err
		}
		out, err = collect(rs, func(r row) (KeptRevocation, error) {
			var k KeptRevocation
			var applied *time.Time
			err := r.Scan(&k.Seq, &k.ID, &k.Kind, &k.TenantID, &k.SubjectID, timeDest{&k.CreatedAt}, nullTimeDest{&applied})
			if applied != nil {
				k.AppliedAt = *applied
			}
			return k, err
		})
		return err
	})
	return out, db.wrap("kept revocations", err)
}

// PruneKeptRevocations deletes the kept revocations applied before before
// and says how many went. Orders not yet applied stay, whatever their age.
func (db *DB) PruneKeptRevocations(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := db.global(ctx, true, func(q querier) error {
		var err error
		n, err = q.exec(ctx, "DELETE FROM revocations_kept WHERE applied_at < $1", db.d.timeArg(before))
		return err
	})
	return int(n), db.wrap("prune kept revocations", err)
}

// SessionStoreEpoch reads the session store epoch.
func (db *DB) SessionStoreEpoch(ctx context.Context) (SessionStoreEpoch, error) {
	var e SessionStoreEpoch
	err := db.global(ctx, false, func(q querier) error {
		return q.queryRow(ctx, "SELECT epoch, server, updated_at, applied FROM session_store_epoch WHERE id = 1").
			Scan(&e.Epoch, &e.Server, timeDest{&e.UpdatedAt}, &e.Applied)
	})
	return e, db.wrap("session store epoch", err)
}

// AdvanceSessionStoreEpoch moves the epoch from from to to, naming server,
// if it is still from, and reports whether it did: of nodes replaying
// together, one advances it and the others find it advanced.
func (db *DB) AdvanceSessionStoreEpoch(ctx context.Context, from, to int64, server string) (bool, error) {
	if to <= from {
		return false, fmt.Errorf("%w: session store epoch must grow (%d to %d)", ErrInvalid, from, to)
	}
	var n int64
	err := db.global(ctx, true, func(q querier) error {
		var err error
		n, err = q.exec(ctx, "UPDATE session_store_epoch SET epoch = $2, server = $3, updated_at = $4 WHERE id = 1 AND epoch = $1",
			from, to, server, db.d.timeArg(db.now()))
		return err
	})
	return n == 1, db.wrap("advance session store epoch", err)
}

// RaiseSessionStoreApplied records that the session store counted applied
// revocations: the recorded count only grows.
func (db *DB) RaiseSessionStoreApplied(ctx context.Context, applied int64) error {
	err := db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "UPDATE session_store_epoch SET applied = $1 WHERE id = 1 AND applied < $1", applied)
		return err
	})
	return db.wrap("raise session store applied", err)
}
