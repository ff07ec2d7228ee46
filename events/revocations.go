package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/idbroker/idbroker/internal/tracing"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// RevocationStore is what a Revoker needs of the store: the revocation
// queue, and the logout queue its finished orders feed.
type RevocationStore interface {
	DueRevocations(ctx context.Context, now time.Time) (bool, error)
	ClaimRevocations(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Revocation, error)
	FinishRevocation(ctx context.Context, id string, logouts []store.Logout) error
	RetryRevocation(ctx context.Context, id string, next time.Time, why string) error
}

// Defaults of a Revoker.
const (
	// DefaultRevocationRetry is how often an unacknowledged revocation is
	// tried again. With the idle poll below it bounds how long after the
	// session store comes back a queued revocation takes effect: well
	// under a second.
	DefaultRevocationRetry = 100 * time.Millisecond
	// DefaultRevocationPoll is how often an idle Revoker looks for work
	// recorded by other nodes (a read; claims are writes).
	DefaultRevocationPoll = 250 * time.Millisecond
	// DefaultApplyTimeout bounds Apply: the order is durable and Run
	// applies what Apply could not, so a request need not wait longer
	// for a session store that hangs.
	DefaultApplyTimeout = 5 * time.Second
	revocationLease     = 30 * time.Second
	revocationBatch     = 50
)

// RevokerConfig configures a Revoker.
type RevokerConfig struct {
	Store RevocationStore
	// Sessions is the session store the revocations are applied to; pass
	// the node's *sessions.Cached so its cache forgets at once.
	Sessions sessions.Store
	Logger   *slog.Logger
	Now      func() time.Time
	// Retry and Poll default to DefaultRevocationRetry and
	// DefaultRevocationPoll.
	Retry, Poll time.Duration
	// ApplyTimeout defaults to DefaultApplyTimeout.
	ApplyTimeout time.Duration
	// Ended, if set, is called with the sessions each applied revocation
	// ended, after their logouts are queued (to wake the logout dispatcher).
	Ended func(rv store.Revocation, ended []sessions.Session)
	// Pending, if set, is told on every pass (every Poll at least)
	// whether the queue holds revocations not yet applied, whoever
	// recorded them, or could not be read, and told true by Apply before
	// it asks the session store: pass the node's
	// (*sessions.Cached).Hold, so that its cache vouches for no session
	// while an order to end sessions waits for the session store. The
	// Store must then offer PendingRevocations (every store.DB does).
	Pending func(pending bool)
	// TracerProvider, when tracing is on, gets a span per batch Run
	// claims (tracing.StartBackground); nil means none. Each order
	// applied is a span under its batch, or under the request that
	// applied it at once.
	TracerProvider trace.TracerProvider
}

// The spans of revocations (when tracing is on).
const (
	SpanRevocationBatch = "revocation.batch"
	SpanRevocationApply = "revocation.apply"
)

// Revoker applies the revocation queue to the session store.
//
// The guarantee it implements: a change that must end sessions records a
// store.Revocation in its own transaction (store.RecordRevocation), so the
// order exists if and only if the change committed. The caller then calls
// Apply for immediate effect; whatever Apply could not finish (the session
// store is unreachable) stays queued, and Run, on every node, claims and
// retries it every Retry until the session store acknowledges, across
// restarts. Applying is idempotent, so two nodes applying one order, or a
// crash between applying and deleting it, are harmless.
type Revoker struct {
	cfg    RevokerConfig
	log    *slog.Logger
	wake   wakeup
	failed atomic.Bool // the last attempt failed: ping before claiming
	// applies counts Apply calls, so that a pass whose read of the queue
	// predates one does not tell Pending false over Apply's true.
	applies atomic.Uint64

	// What Pending is told, under holdMu so that no two tellings cross:
	// the node's cache vouches for nothing while an Apply waits for the
	// session store (inflight) or the last pass saw orders waiting
	// (queued). An Apply acknowledged with nothing else waiting releases
	// the cache at once, not at the next pass: a node that revokes
	// several times a second would otherwise never cache at all.
	holdMu   sync.Mutex
	inflight int
	queued   bool
}

// tellPending tells Pending what holds now; holdMu must be held.
func (r *Revoker) tellPending() { r.cfg.Pending(r.inflight > 0 || r.queued) }

// NewRevoker returns a Revoker; Run it on every node.
func NewRevoker(cfg RevokerConfig) (*Revoker, error) {
	if cfg.Store == nil || cfg.Sessions == nil {
		return nil, errors.New("events: revoker needs a Store and Sessions")
	}
	if _, ok := cfg.Store.(pendingLister); cfg.Pending != nil && !ok {
		return nil, errors.New("events: a revoker told of pending revocations needs a Store that lists them")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRevocationRetry
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultRevocationPoll
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = DefaultApplyTimeout
	}
	r := &Revoker{cfg: cfg, log: cfg.Logger, wake: newWakeup()}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Apply applies revocations whose transaction has committed, now, in the
// caller's goroutine, so that a response sent after it finds the sessions
// already ended, giving up after ApplyTimeout. It returns the sessions ended. An error means some were
// not acknowledged by the session store: they stay queued for Run, which
// applies them as soon as it answers again, so the caller should report
// success all the same; the change and its revocation are durable.
func (r *Revoker) Apply(ctx context.Context, revs ...store.Revocation) ([]sessions.Session, error) {
	// The order is already durable: a client hanging up must not leave it
	// half done. Nor may a session store that hangs hold the request: with
	// no bound, a SCIM deprovisioning waited 20 s on a frozen Redis, past
	// the request's own timeout; what is not done by ApplyTimeout stays
	// queued for Run.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ApplyTimeout)
	defer cancel()
	if r.cfg.Pending != nil && len(revs) > 0 {
		// This node knows at once, not at its next poll: should the
		// session store hang, its cache must not vouch meanwhile.
		r.applies.Add(1)
		r.holdMu.Lock()
		r.inflight++
		r.tellPending()
		r.holdMu.Unlock()
	}
	var all []sessions.Session
	for _, rv := range revs {
		ended, err := r.apply(ctx, rv)
		all = append(all, ended...)
		if err != nil {
			r.failed.Store(true)
			r.wake.kick()
			r.applied(len(revs), false)
			return all, err
		}
	}
	r.applied(len(revs), true)
	return all, nil
}

// applied ends an Apply of n orders: acknowledged, the hold it took is
// released (unless another Apply waits, or a pass saw orders waiting);
// not, its orders stay queued, and so does the hold, until a pass finds
// the queue empty.
func (r *Revoker) applied(n int, ok bool) {
	if r.cfg.Pending == nil || n == 0 {
		return
	}
	r.holdMu.Lock()
	defer r.holdMu.Unlock()
	r.inflight--
	if !ok {
		r.queued = true
	}
	r.tellPending()
}

// apply ends the sessions of one order, queues their logouts and deletes
// the order.
func (r *Revoker) apply(ctx context.Context, rv store.Revocation) (_ []sessions.Session, err error) {
	ctx, span := tracing.Start(ctx, SpanRevocationApply)
	defer func() {
		if err != nil {
			tracing.Fail(span, "not applied")
		}
		span.End()
	}()
	if span.IsRecording() {
		tracing.SetSpanTenant(span, rv.TenantID)
		span.SetAttributes(attribute.String("revocation.id", rv.ID), attribute.String("revocation.kind", string(rv.Kind)))
	}
	ss := r.cfg.Sessions
	// The session store remembers what this order ended, so that a retry
	// after a failed finish (below) queues the same logouts instead of
	// none: the sessions are gone by then, not the applications' right to
	// hear of it.
	ctx = sessions.ForOrder(ctx, rv.ID)
	var ended []sessions.Session
	switch rv.Kind {
	case store.RevokeSession:
		ended, err = ss.RevokeSession(ctx, rv.SubjectID)
	case store.RevokeUser:
		ended, err = ss.RevokeUser(ctx, rv.TenantID, rv.SubjectID)
	case store.RevokeTenant:
		ended, err = ss.RevokeTenant(ctx, rv.TenantID)
	case store.RevokeConnection:
		ended, err = ss.RevokeConnection(ctx, rv.TenantID, rv.SubjectID)
	case store.RevokeClientGrant:
		// No session ends: one application's tokens die, as of the
		// order's recording (the broker answered 200 then).
		sid, client, ok := sessions.ParseGrantSubject(rv.SubjectID)
		if !ok {
			err = fmt.Errorf("malformed grant %q", rv.SubjectID)
			break
		}
		err = ss.RevokeClient(ctx, sid, client, rv.CreatedAt)
	default:
		err = fmt.Errorf("unknown revocation kind %q", rv.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("events: apply revocation %s (%s %s): %w", rv.ID, rv.Kind, rv.SubjectID, err)
	}
	var logouts []store.Logout
	for _, s := range ended {
		for _, app := range s.Apps {
			logouts = append(logouts, store.Logout{SessionID: s.ID, TenantID: s.TenantID, UserID: s.UserID, ApplicationID: app})
		}
	}
	if err := r.finish(ctx, rv, ended, logouts); err != nil {
		// The sessions have ended; only the bookkeeping failed. The order
		// stays queued, and its retry gets the same sessions from the
		// session store's memory of it (sessions.ForOrder), for
		// sessions.OrderMemory.
		r.log.ErrorContext(ctx, "revocation applied but not recorded; it is retried", "revocation", rv.ID, "logouts", len(logouts), "err", err)
		return ended, fmt.Errorf("events: finish revocation %s: %w", rv.ID, err)
	}
	r.log.InfoContext(ctx, "sessions revoked", "revocation", rv.ID, "kind", rv.Kind, "tenant_id", rv.TenantID,
		"subject", rv.SubjectID, "reason", rv.Reason, "sessions", len(ended), "logouts", len(logouts))
	if r.cfg.Ended != nil {
		r.cfg.Ended(rv, ended)
	}
	return ended, nil
}

// Run applies queued revocations until ctx is done: those recorded on any
// node whose immediate Apply failed or never ran (a crash between commit
// and Apply). It returns nil once ctx is done.
func (r *Revoker) Run(ctx context.Context) error {
	drain(ctx, r.wake, r.cfg.Poll, r.cfg.Retry, r.ApplyDue, func(ctx context.Context, err error) {
		r.log.WarnContext(ctx, "revocations not yet applied; retrying", "err", err)
	})
	return nil
}

// pendingLister lists the revocations not yet applied (store.DB does).
type pendingLister interface {
	PendingRevocations(ctx context.Context, limit int) ([]store.Revocation, error)
}

// pinger is the session stores' health check (Memory and Redis have it).
type pinger interface {
	Ping(ctx context.Context) error
}

// ApplyDue claims the revocations due now and applies them, stopping at
// the first the session store does not acknowledge (the others would fail
// the same way); it reports how many it applied.
func (r *Revoker) ApplyDue(ctx context.Context) (int, error) {
	if r.cfg.Pending != nil {
		applies := r.applies.Load()
		pending, err := r.cfg.Store.(pendingLister).PendingRevocations(ctx, 1)
		// An Apply that began meanwhile may be of an order this read
		// missed: not the moment to say the queue is empty.
		r.holdMu.Lock()
		r.queued = err != nil || len(pending) > 0 || r.applies.Load() != applies
		r.tellPending()
		r.holdMu.Unlock()
		if err != nil {
			return 0, fmt.Errorf("events: pending revocations: %w", err)
		}
		if len(pending) == 0 {
			return 0, nil
		}
	}
	now := r.cfg.Now()
	due, err := r.cfg.Store.DueRevocations(ctx, now)
	if err != nil || !due {
		return 0, err
	}
	if p, ok := r.cfg.Sessions.(pinger); ok && r.failed.Load() {
		// While the session store is down, a ping is cheaper than claiming
		// and releasing every queued order.
		if err := p.Ping(ctx); err != nil {
			return 0, err
		}
	}
	claimed, err := r.cfg.Store.ClaimRevocations(ctx, now, revocationLease, revocationBatch)
	if err != nil {
		return 0, fmt.Errorf("events: claim revocations: %w", err)
	}
	if len(claimed) == 0 {
		return 0, nil
	}
	ctx = context.WithoutCancel(ctx) // finish what was claimed
	ctx, batch := tracing.StartBackground(ctx, r.cfg.TracerProvider, SpanRevocationBatch, now)
	defer batch.End()
	if batch.IsRecording() {
		batch.SetAttributes(attribute.Int("batch.size", len(claimed)))
	}
	for i, rv := range claimed {
		if _, err := r.apply(ctx, rv); err != nil {
			r.failed.Store(true)
			next := r.cfg.Now().Add(r.cfg.Retry)
			for _, left := range claimed[i:] {
				if rerr := r.cfg.Store.RetryRevocation(ctx, left.ID, next, err.Error()); rerr != nil {
					r.log.ErrorContext(ctx, "reschedule revocation", "revocation", left.ID, "err", rerr)
				}
			}
			tracing.Fail(batch, "session store")
			return i, err
		}
	}
	r.failed.Store(false)
	return len(claimed), nil
}

// eventStore is what a RevocationStore also offers when the orders it
// finishes should be announced (every store.DB does): session.revoked
// events written in the transaction that retires the order.
type eventStore interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	AppendEvent(ctx context.Context, e store.Event) (store.Event, error)
}

// finish retires rv with its logouts and, in the same transaction, one
// session.revoked event per user whose sessions it ended: whatever ended
// them (an operator, a deprovisioning, a tenant paused or deleted, a
// connection switched off, a reused code), the vendor hears of it the
// same way. An order applied again ends nothing more, so it announces
// nothing twice.
func (r *Revoker) finish(ctx context.Context, rv store.Revocation, ended []sessions.Session, logouts []store.Logout) error {
	es, ok := r.cfg.Store.(eventStore)
	if !ok {
		return r.cfg.Store.FinishRevocation(ctx, rv.ID, logouts)
	}
	evs, err := revokedEvents(rv, ended)
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return r.cfg.Store.FinishRevocation(ctx, rv.ID, logouts)
	}
	if rs, ok := es.(retiringStore); ok {
		// Recorded once: a run that finds the order retired (another
		// node's, or an earlier run whose answer was lost) records
		// nothing, since the session store gives every run of one order
		// the same sessions (sessions.ForOrder).
		return es.InTx(ctx, func(ctx context.Context) error {
			retired, err := rs.RetireRevocation(ctx, rv.ID)
			if err != nil || !retired {
				return err
			}
			for _, e := range evs {
				if _, err := es.AppendEvent(ctx, e); err != nil {
					return fmt.Errorf("append session.revoked: %w", err)
				}
			}
			return rs.EnqueueLogouts(ctx, logouts)
		})
	}
	return es.InTx(ctx, func(ctx context.Context) error {
		for _, e := range evs {
			if _, err := es.AppendEvent(ctx, e); err != nil {
				return fmt.Errorf("append session.revoked: %w", err)
			}
		}
		return r.cfg.Store.FinishRevocation(ctx, rv.ID, logouts)
	})
}

// retiringStore records an order's outcome only if it retires the order
// (store.DB does).
type retiringStore interface {
	RetireRevocation(ctx context.Context, id string) (bool, error)
	EnqueueLogouts(ctx context.Context, ls []store.Logout) error
}

// revokedEvents groups the sessions ended by rv per user, in the order
// they came, as session.revoked events.
func revokedEvents(rv store.Revocation, ended []sessions.Session) ([]store.Event, error) {
	type key struct{ tenant, user string }
	var order []key
	ids := map[key][]string{}
	for _, s := range ended {
		k := key{s.TenantID, s.UserID}
		if k.tenant == "" {
			k.tenant = rv.TenantID
		}
		if _, ok := ids[k]; !ok {
			order = append(order, k)
		}
		ids[k] = append(ids[k], s.ID)
	}
	reason := RevokedReason(rv)
	if len(order) == 0 && rv.Kind == store.RevokeUser && reason == "operator" {
		// An operator asked for this user's sessions to end: the vendor
		// hears that it was done even when none was live, as the API's
		// 204 says.
		order = append(order, key{rv.TenantID, rv.SubjectID})
		ids[order[0]] = []string{}
	}
	out := make([]store.Event, 0, len(order))
	for _, k := range order {
		data, err := json.Marshal(map[string]any{"user_id": k.user, "session_ids": ids[k], "reason": reason})
		if err != nil {
			return nil, fmt.Errorf("encode session.revoked: %w", err)
		}
		out = append(out, store.Event{TenantID: k.tenant, Type: "session.revoked", Data: data})
	}
	return out, nil
}

// RevokedReason is the reason a session.revoked event gives for rv:
// operator, deprovisioned, tenant_paused, tenant_cancelled,
// tenant_deleted, connection_deactivated, connection_deleted or
// code_reused (revoked for anything else).
func RevokedReason(rv store.Revocation) string {
	switch {
	case rv.Reason == "operator":
		return "operator"
	case strings.HasPrefix(rv.Reason, "scim:"):
		return "deprovisioned"
	case rv.Kind == store.RevokeTenant && strings.HasPrefix(rv.Reason, "tenant."):
		return "tenant_" + strings.TrimPrefix(rv.Reason, "tenant.")
	case rv.Kind == store.RevokeConnection && strings.HasPrefix(rv.Reason, "connection."):
		return "connection_" + strings.TrimPrefix(rv.Reason, "connection.")
	case rv.Kind == store.RevokeSession && strings.Contains(rv.Reason, "code reused"):
		return "code_reused"
	}
	return "revoked"
}
