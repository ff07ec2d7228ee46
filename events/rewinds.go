package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// RewindStore is what Rewinds needs of the store: the revocations kept
// after they were applied, and the session store epoch.
type RewindStore interface {
	KeptRevocations(ctx context.Context, since time.Time, afterSeq int64, limit int) ([]store.KeptRevocation, error)
	PruneKeptRevocations(ctx context.Context, before time.Time) (int, error)
	SessionStoreEpoch(ctx context.Context) (store.SessionStoreEpoch, error)
	AdvanceSessionStoreEpoch(ctx context.Context, from, to int64, server string) (bool, error)
	RaiseSessionStoreApplied(ctx context.Context, applied int64) error
}

// RewindSessions is the node's session store as Rewinds uses it: pass the
// node's *sessions.Cached, so that its cache empties with the store's
// suspension.
type RewindSessions interface {
	sessions.Store
	sessions.Rewindable
}

// Defaults of Rewinds.
const (
	// DefaultRewindCheck is how often a node reads the session store's
	// marker: one Redis round trip and one read of the database's row by
	// its key (a write too when the applied count grew).
	// A restart or failover is noticed at once anyway, by the revocation
	// subscription breaking.
	DefaultRewindCheck = time.Second
	// DefaultClockSlack is how much the clocks of two nodes may differ.
	// A replayed revocation ends the sessions begun up to this long after
	// it was applied, as well as all those before: a replay must never
	// spare a session the revocation ended because a node's clock was
	// behind, and ending a session begun just after a revocation only
	// signs someone in again.
	DefaultClockSlack = time.Minute
	rewindPruneEvery  = time.Hour
	replayBatch       = 500
	replayWorkers     = 16
)

// RewindConfig configures Rewinds.
type RewindConfig struct {
	Store    RewindStore
	Sessions RewindSessions
	// Keep is the longest a session, and so a refresh token, can live:
	// how long after it was applied a revocation is replayed and kept.
	Keep time.Duration
	// Check and Slack default to DefaultRewindCheck and DefaultClockSlack.
	Check, Slack time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// Rewinds keeps a node from trusting a session store that lost or rewound
// revocations: a Redis restarted from an older snapshot, promoted from a
// lagging replica, restored from a backup or emptied.
//
// Every revocation is kept in the database (store.KeptRevocation) until
// no session it could have ended can still live. The database also names
// the session store all of them were applied to (store.SessionStoreEpoch:
// the server's run_id and an epoch number, which the store holds too, see
// sessions.Marker). A store whose server or epoch differs from the
// database's, or that holds no epoch, may have lost revocations: the node
// suspends it (reads answer sessions.ErrSuspended, which the broker
// answers 503 with Retry-After) and replays every kept revocation into it,
// then writes epoch+1 into the store and into the database, and only then
// trusts it again. Several nodes noticing together each replay (replays
// are idempotent); one advances the epoch, the others find it advanced.
//
// Data restored into the same server with the same epoch (a managed
// Redis restored from a snapshot taken after the last advance), or a
// server that refuses INFO (no run_id to compare), is recognised by the
// store's count of applied revocations (sessions.Marker.Applied): every
// Check raises the database's copy to what it reads, and a store counting
// less than the database has lost revocations, and is replayed into like
// one with another epoch. The database is read before the store, so that
// a revocation counted between the two reads is never taken for a loss.
//
// The hot paths pay one atomic load: Check runs every Check interval.
type Rewinds struct {
	cfg  RewindConfig
	log  *slog.Logger
	wake wakeup

	// downs counts distrusts (the subscription broke): a Check that
	// began before one does not lift the suspension it set.
	downs atomic.Uint64

	mu        sync.Mutex // one Check at a time
	trusted   sessions.Marker
	suspended bool
	lastPrune time.Time
	blind     int // 0 unknown, 1 run_id read, 2 INFO refused: logged on change
}

// NewRewinds returns a Rewinds with the session store suspended until its
// first Check trusts it; Run it on every node.
func NewRewinds(cfg RewindConfig) (*Rewinds, error) {
	if cfg.Store == nil || cfg.Sessions == nil || cfg.Keep <= 0 {
		return nil, errors.New("events: rewinds need a Store, Sessions and a positive Keep")
	}
	if cfg.Check <= 0 {
		cfg.Check = DefaultRewindCheck
	}
	if cfg.Slack <= 0 {
		cfg.Slack = DefaultClockSlack
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Rewinds{cfg: cfg, log: cfg.Logger, wake: newWakeup()}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.cfg.Sessions.Suspend(true)
	r.suspended = true
	return r, nil
}

// Run checks the session store every Check interval, and at once when the
// revocation subscription breaks (a Redis restart or failover), until ctx
// is done; hourly it prunes the revocations no longer worth keeping.
func (r *Rewinds) Run(ctx context.Context) error {
	err := r.cfg.Sessions.Subscribe(ctx, func(rv sessions.Revocation) {
		if rv.Reason != sessions.ReasonResync {
			return
		}
		if rv.Down {
			// The server behind the subscription may be gone: whichever
			// answers next must prove itself first.
			r.distrust()
			r.log.InfoContext(ctx, "connection to the session store broke; not trusting it until checked")
		}
		r.wake.kick()
	})
	if err != nil {
		// Without it a restart is noticed at the next check, a second
		// later, and by the connections that reach the new server.
		r.log.ErrorContext(ctx, "subscribe to the session store's revocations", "err", err)
	}
	drain(ctx, r.wake, r.cfg.Check, r.cfg.Check, func(ctx context.Context) (int, error) {
		_, err := r.Check(ctx)
		if perr := r.prune(ctx); err == nil {
			err = perr
		}
		return 0, err
	}, func(ctx context.Context, err error) {
		r.log.WarnContext(ctx, "checking the session store for lost revocations failed; checking again", "err", err)
	})
	return nil
}

// distrust suspends the session store until the next Check trusts it.
func (r *Rewinds) distrust() {
	r.downs.Add(1)
	r.cfg.Sessions.Suspend(true)
}

// Check reads the session store's marker and, when it is not the one this
// node last trusted, compares it with the database's epoch, replaying the
// kept revocations when they differ. It returns how many sessions the
// replay ended. The store is suspended from the moment it is found
// different until it is trusted; an error leaves it suspended.
func (r *Rewinds) Check(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.seen()
	// The database first: every count it holds was read from the store
	// before, so a store counting less now has gone back.
	ep, dbErr := r.cfg.Store.SessionStoreEpoch(ctx)
	m, err := r.cfg.Sessions.Marker(ctx)
	if err != nil {
		r.suspend()
		return 0, fmt.Errorf("events: read the session store's marker: %w", err)
	}
	r.logMode(ctx, m)
	if s := r.cfg.Sessions.Stranger(); s != "" && s != m.Server {
		// Connections reach another server than this marker's (a
		// failover the pool is halfway through): wait until one answers.
		r.suspend()
		r.wake.kick()
		return 0, fmt.Errorf("events: the session store answers from two servers (%s and %s)", m.Server, s)
	}
	if dbErr != nil {
		if m.Present && m.Same(r.trusted) {
			// The same server, holding the same epoch: the database
			// being away is no reason to stop trusting it.
			r.trust(m, seen)
			return 0, fmt.Errorf("events: read the session store epoch (the store stays trusted): %w", dbErr)
		}
		r.suspend()
		return 0, fmt.Errorf("events: read the session store epoch: %w", dbErr)
	}
	lost := m.Applied < ep.Applied
	if !lost && m.Present && m.Same(r.trusted) {
		// The same server, holding the same epoch, counting no fewer
		// revocations: nothing was lost.
		r.trust(m, seen)
		return 0, r.raise(ctx, m, ep)
	}
	r.suspend()
	if !lost && m.Present && m.Epoch == ep.Epoch && m.Server == ep.Server {
		r.trust(m, seen)
		return 0, r.raise(ctx, m, ep)
	}
	r.log.WarnContext(ctx, "the session store may have lost revocations (restarted, failed over, restored or emptied); replaying them",
		"server", m.Server, "marker", m.Epoch, "marker_present", m.Present, "known_server", ep.Server, "epoch", ep.Epoch,
		"applied", m.Applied, "known_applied", ep.Applied)
	start := r.cfg.Now()
	orders, ended, err := r.replay(ctx)
	if err != nil {
		return ended, err
	}
	set, err := r.cfg.Sessions.SetMarker(ctx, ep.Epoch+1, ep.Applied)
	if err != nil {
		return ended, err
	}
	if set.Server != m.Server {
		return ended, fmt.Errorf("events: the session store changed during the replay (%s, then %s)", m.Server, set.Server)
	}
	advanced, err := r.cfg.Store.AdvanceSessionStoreEpoch(ctx, ep.Epoch, ep.Epoch+1, set.Server)
	if err != nil {
		return ended, err
	}
	if !advanced {
		// Another node replayed too and advanced first: if to the epoch
		// this server holds, its replay vouches for the server as ours
		// does; if further, look again.
		now, err := r.cfg.Store.SessionStoreEpoch(ctx)
		if err != nil || now.Epoch != set.Epoch || now.Server != set.Server {
			r.wake.kick()
			return ended, errors.New("events: session store epoch advanced by another node during the replay")
		}
	}
	if err := r.cfg.Store.RaiseSessionStoreApplied(ctx, set.Applied); err != nil {
		return ended, fmt.Errorf("events: record the session store's applied count: %w", err)
	}
	r.log.WarnContext(ctx, "revocations replayed into the session store; trusting it again",
		"server", set.Server, "epoch", set.Epoch, "revocations", orders, "sessions_ended", ended, "took", r.cfg.Now().Sub(start))
	r.trust(set, seen)
	return ended, nil
}

// raise records in the database the store's applied count m, when above
// the database's ep.
func (r *Rewinds) raise(ctx context.Context, m sessions.Marker, ep store.SessionStoreEpoch) error {
	if m.Applied <= ep.Applied {
		return nil
	}
	if err := r.cfg.Store.RaiseSessionStoreApplied(ctx, m.Applied); err != nil {
		// The store stays trusted; the next Check records it.
		return fmt.Errorf("events: record the session store's applied count: %w", err)
	}
	return nil
}

// logMode says once, and again if it changes, how this node recognises a
// session store that lost revocations: by run_id, epoch and applied count,
// or, when the server refuses INFO, by epoch and applied count alone.
func (r *Rewinds) logMode(ctx context.Context, m sessions.Marker) {
	mode := 1
	if m.Blind {
		mode = 2
	}
	if mode == r.blind {
		return
	}
	r.blind = mode
	if m.Blind {
		r.log.WarnContext(ctx, "the session store refuses INFO: a restart or failover is recognised by its epoch and count of applied revocations only (see the operations guide)")
		return
	}
	r.log.InfoContext(ctx, "the session store is checked by run_id, epoch and count of applied revocations", "server", m.Server)
}

// replay applies again every kept revocation applied within Keep (and
// every one not yet applied), sparing the sessions begun after it. Orders
// are independent and idempotent, so each page is applied by
// replayWorkers at once: the replay costs round trips, not Redis's time.
func (r *Rewinds) replay(ctx context.Context) (orders, ended int, err error) {
	now := r.cfg.Now()
	since := now.Add(-r.cfg.Keep - r.cfg.Slack)
	for after := int64(0); ; {
		page, err := r.cfg.Store.KeptRevocations(ctx, since, after, replayBatch)
		if err != nil {
			return orders, ended, fmt.Errorf("events: read kept revocations: %w", err)
		}
		n, err := r.replayPage(ctx, page, now)
		orders += len(page)
		ended += n
		if err != nil {
			return orders, ended, err
		}
		if len(page) < replayBatch {
			return orders, ended, nil
		}
		after = page[len(page)-1].Seq
	}
}

// replayPage applies page with replayWorkers workers and says how many
// sessions it ended; the first error stops it.
func (r *Rewinds) replayPage(ctx context.Context, page []store.KeptRevocation, now time.Time) (int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		ended atomic.Int64
		next  atomic.Int64
	)
	for range min(replayWorkers, len(page)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(page) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				k := page[i]
				before := k.AppliedAt
				if before.IsZero() {
					// Still queued: it ends whatever it finds when applied.
					before = now
				}
				gone, err := r.cfg.Sessions.RevokeBefore(ctx, string(k.Kind), k.TenantID, k.SubjectID, before.Add(r.cfg.Slack))
				if err != nil {
					cancel(fmt.Errorf("events: replay revocation %s: %w", k.ID, err))
					return
				}
				ended.Add(int64(len(gone)))
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return int(ended.Load()), err
	}
	return int(ended.Load()), nil
}

func (r *Rewinds) suspend() {
	if !r.suspended {
		r.cfg.Sessions.Suspend(true)
		r.suspended = true
	}
	r.trusted = sessions.Marker{}
}

// seen is what trust compares to learn whether the store may have been
// suspended while a Check ran: the subscription's breaks and the
// connections that reached a server not vouched for.
type seen struct{ downs, strangers uint64 }

func (r *Rewinds) seen() seen {
	return seen{r.downs.Load(), r.cfg.Sessions.Strangers()}
}

// trust vouches for m's server and lifts the suspension — unless the
// subscription broke or a connection reached another server since the
// Check began (then the next Check decides), checked again after lifting
// it, since either may set it at any moment.
func (r *Rewinds) trust(m sessions.Marker, before seen) {
	r.cfg.Sessions.Vouch(m.Server)
	if r.seen() != before {
		r.trusted = sessions.Marker{}
		r.wake.kick()
		return
	}
	r.trusted = m
	// Always: distrust and a stranger suspend without mu.
	r.cfg.Sessions.Suspend(false)
	r.suspended = false
	if r.seen() != before {
		r.suspend()
		r.wake.kick()
	}
}

// prune deletes the kept revocations that no session can outlive any more,
// at most once per rewindPruneEvery.
func (r *Rewinds) prune(ctx context.Context) error {
	now := r.cfg.Now()
	if now.Sub(r.lastPrune) < rewindPruneEvery {
		return nil
	}
	n, err := r.cfg.Store.PruneKeptRevocations(ctx, now.Add(-r.cfg.Keep-r.cfg.Slack))
	if err != nil {
		return fmt.Errorf("events: prune kept revocations: %w", err)
	}
	r.lastPrune = now
	if n > 0 {
		r.log.InfoContext(ctx, "kept revocations pruned", "count", n)
	}
	return nil
}
