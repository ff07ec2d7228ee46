package connections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Revoker applies revocations once their transaction has committed (an
// *events.Revoker). An error means the session store did not acknowledge
// and the revocation stays queued, to be applied as soon as it answers.
type Revoker interface {
	Apply(ctx context.Context, revs ...store.Revocation) ([]sessions.Session, error)
}

// recordRevocation records, in the transaction of ctx, the order to end
// every session made through conn, when a Revoker will apply it.
func (r *Registry) recordRevocation(ctx context.Context, conn store.Connection, reason string) (*store.Revocation, error) {
	if r.cfg.Revoker == nil || r.cfg.Sessions == nil {
		return nil, nil
	}
	rv, err := r.cfg.Store.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeConnection, TenantID: conn.TenantID, SubjectID: conn.ID, Reason: reason})
	if err != nil {
		return nil, fmt.Errorf("record revocation: %w", err)
	}
	return &rv, nil
}

// endSessions revokes every session made through conn: by applying rv,
// recorded with the change (durable: a failure leaves it queued for the
// Revoker's retries), or directly without a Revoker. A failure is logged,
// not returned: the connection change itself has committed, and an
// inactive connection refuses new logins regardless.
//
// It revokes again once every node's cache has expired: another node may
// still hold the connection as active for up to CacheTTL and let a login
// through, and that session must not outlive the deactivation.
func (r *Registry) endSessions(ctx context.Context, conn store.Connection, rv *store.Revocation) {
	if r.cfg.Sessions == nil {
		return
	}
	if rv != nil {
		if _, err := r.cfg.Revoker.Apply(ctx, *rv); err != nil {
			r.cfg.Logger.WarnContext(ctx, "revocation of a deactivated connection's sessions queued until the session store answers",
				"tenant", conn.TenantID, "connection", conn.ID, "revocation", rv.ID, "err", err)
		}
	} else if _, err := r.cfg.Sessions.RevokeConnection(ctx, conn.TenantID, conn.ID); err != nil {
		r.cfg.Logger.ErrorContext(ctx, "revoke sessions of deactivated connection", "tenant", conn.TenantID, "connection", conn.ID, "err", err)
	}
	if r.cfg.CacheTTL <= 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	time.AfterFunc(r.sweepDelay(), func() { r.sweepSessions(ctx, conn) })
}

// sweepDelay is how long after a deactivation every node's cache has
// surely dropped the active connection, and the logins it let through
// have finished.
func (r *Registry) sweepDelay() time.Duration {
	return max(2*r.cfg.CacheTTL, r.cfg.CacheTTL+time.Second)
}

// sweepSessions is endSessions' second pass, skipped when the connection
// was turned back on meanwhile (its new sessions are legitimate).
func (r *Registry) sweepSessions(ctx context.Context, conn store.Connection) {
	cur, err := r.cfg.Store.Connection(ctx, conn.ID)
	switch {
	case err == nil && cur.Status == store.ConnectionActive:
		return
	case err != nil && !errors.Is(err, store.ErrNotFound):
		r.cfg.Logger.ErrorContext(ctx, "re-read deactivated connection", "tenant", conn.TenantID, "connection", conn.ID, "err", err)
		return
	}
	if _, err := r.cfg.Sessions.RevokeConnection(ctx, conn.TenantID, conn.ID); err != nil {
		r.cfg.Logger.ErrorContext(ctx, "revoke sessions of deactivated connection", "tenant", conn.TenantID, "connection", conn.ID, "err", err)
	}
}
