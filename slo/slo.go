// Package slo measures each tenant's service levels and reports them
// against the targets of the tenant's tier.
//
// Two things are measured, per tenant: sign-in completion (the broker's
// answer to the IdP's post to the ACS or callback URL) and token issuance
// (the answers of the token endpoint). A Recorder counts them on the hot
// path in memory only: per tenant, kind and minute, how many requests
// succeeded, were refused (4xx) or failed on the broker's side (5xx), and a
// latency histogram with fixed buckets (store.SLOBucketBounds). Once a
// minute (Run) it writes what it holds to the store, one row per tenant,
// kind, minute and node, replacing its own earlier write of the same
// minute; nodes never share a row, so any number may run. Rows older than
// Retention are pruned by the same loop, on every node (it is idempotent).
//
// Report turns the rows of the last hour, day and 30 days into figures:
// p50 and p99 latency, error rate, availability and the error budget left,
// beside the targets of the tenant's tier (Targets).
package slo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/idbroker/idbroker/store"
)

// The kinds of request measured.
const (
	SignIn = store.SLOSignIn
	Token  = store.SLOToken
)

// Retention is how long measurements are kept: the longest window
// reported.
const Retention = 30 * 24 * time.Hour

// DefaultFlushInterval is how often Run writes the measurements to the
// store; reported figures lag by up to this much.
const DefaultFlushInterval = time.Minute

// pruneInterval is how often Run deletes measurements past Retention.
const pruneInterval = time.Hour

// maxOpen bounds the minutes a Recorder holds while the store does not
// answer: past it, new minutes are dropped (and counted in the log) rather
// than growing without end.
const maxOpen = 100_000

// Outcome classifies an answer.
type Outcome int

const (
	OK          Outcome = iota // 1xx to 3xx
	ClientError                // 4xx: refused, the caller's or the IdP's doing
	ServerError                // 5xx: the broker failed
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case ClientError:
		return "client_error"
	}
	return "server_error"
}

// OutcomeOf classifies an HTTP status.
func OutcomeOf(status int) Outcome {
	switch {
	case status >= http.StatusInternalServerError:
		return ServerError
	case status >= http.StatusBadRequest:
		return ClientError
	}
	return OK
}

// Store is what a Recorder needs of persistence; *store.DB implements it.
type Store interface {
	WriteSLOMinutes(ctx context.Context, ms []store.SLOMinute) error
	PruneSLOMinutes(ctx context.Context, before time.Time) (int64, error)
}

// Config configures a Recorder.
type Config struct {
	// Store receives the measurements. Required.
	Store Store
	// Node names this process among the nodes writing measurements; it
	// must differ between processes running at once. Required.
	Node string
	// Now is the clock that says which minute a request falls in; nil
	// means time.Now.
	Now func() time.Time
	// Logger receives flush and prune failures; nil discards.
	Logger *slog.Logger
	// OnObserve, if set, is called with every measurement (the metrics
	// hook). It runs on the request's goroutine and must be quick.
	OnObserve func(tenantID string, kind store.SLOKind, o Outcome, elapsed time.Duration)
}

// Recorder aggregates measurements in memory and writes them once a
// minute. Its methods are safe for concurrent use; a nil *Recorder records
// nothing.
type Recorder struct {
	cfg Config

	mu      sync.Mutex
	open    map[minuteKey]*minute
	dropped int64 // measurements refused since the last warning (maxOpen)
}

type minuteKey struct {
	tenant string
	kind   store.SLOKind
	minute int64 // unix seconds of the minute's start
}

// minute is one open row. version counts observations; flushed is the
// version last written, so a minute is clean when they are equal.
type minute struct {
	counts           store.SLOCounts
	version, flushed uint64
}

// New returns a Recorder over cfg.
func New(cfg Config) (*Recorder, error) {
	if cfg.Store == nil || cfg.Node == "" {
		return nil, errors.New("slo: a Recorder needs a Store and a Node")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{cfg: cfg, open: map[minuteKey]*minute{}}, nil
}

// bucket returns the latency bucket of d.
func bucket(d time.Duration) int {
	for i, b := range store.SLOBucketBounds {
		if d <= time.Duration(b)*time.Millisecond {
			return i
		}
	}
	return store.SLOBuckets - 1
}

// Observe records one answered request of tenantID: its kind, HTTP status
// and how long it took. It takes a lock and touches a map: no I/O.
func (r *Recorder) Observe(tenantID string, kind store.SLOKind, status int, elapsed time.Duration) {
	if r == nil || tenantID == "" || !kind.Valid() {
		return
	}
	o := OutcomeOf(status)
	if r.cfg.OnObserve != nil {
		r.cfg.OnObserve(tenantID, kind, o, elapsed)
	}
	b := bucket(elapsed)
	r.mu.Lock()
	defer r.mu.Unlock()
	// The minute is read under the lock: Flush forgets only minutes
	// before the one its clock is in, so none can be reopened here with
	// partial counts that would replace what was written.
	k := minuteKey{tenant: tenantID, kind: kind, minute: r.cfg.Now().Unix() / 60 * 60}
	m := r.open[k]
	if m == nil {
		if len(r.open) >= maxOpen {
			r.dropped++
			return
		}
		m = &minute{}
		r.open[k] = m
	}
	switch o {
	case OK:
		m.counts.OK++
	case ClientError:
		m.counts.ClientErrors++
	default:
		m.counts.ServerErrors++
	}
	m.counts.Latency[b]++
	m.version++
}

// Flush writes every minute observed since the last flush, and forgets
// the minutes that are over and written. A failed flush keeps them all for
// the next one.
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	var (
		rows     []store.SLOMinute
		versions []uint64
		keys     []minuteKey
	)
	for k, m := range r.open {
		if m.version == m.flushed {
			continue
		}
		rows = append(rows, store.SLOMinute{
			TenantID: k.tenant, Kind: k.kind, Minute: time.Unix(k.minute, 0).UTC(), Node: r.cfg.Node, SLOCounts: m.counts,
		})
		versions = append(versions, m.version)
		keys = append(keys, k)
	}
	dropped := r.dropped
	r.dropped = 0
	r.mu.Unlock()
	if dropped > 0 {
		r.cfg.Logger.WarnContext(ctx, "slo: measurements dropped: too many minutes waiting for the store", "dropped", dropped)
	}

	var err error
	if len(rows) > 0 {
		err = r.cfg.Store.WriteSLOMinutes(ctx, rows)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	current := r.cfg.Now().Unix() / 60 * 60
	if err == nil {
		for i, k := range keys {
			if m := r.open[k]; m != nil && m.flushed < versions[i] {
				m.flushed = versions[i]
			}
		}
	}
	for k, m := range r.open {
		if k.minute < current && m.version == m.flushed {
			delete(r.open, k)
		}
	}
	if err != nil {
		return fmt.Errorf("slo: flush: %w", err)
	}
	return nil
}

// Prune deletes the measurements older than Retention.
func (r *Recorder) Prune(ctx context.Context) error {
	if _, err := r.cfg.Store.PruneSLOMinutes(ctx, r.cfg.Now().Add(-Retention-time.Minute)); err != nil {
		return fmt.Errorf("slo: prune: %w", err)
	}
	return nil
}

// Run flushes every flushEvery (DefaultFlushInterval when 0) and prunes
// every hour until ctx is done; then it flushes once more, so that a node
// shutting down loses nothing it measured.
func (r *Recorder) Run(ctx context.Context, flushEvery time.Duration) {
	if r == nil {
		return
	}
	if flushEvery <= 0 {
		flushEvery = DefaultFlushInterval
	}
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	prune := time.NewTicker(pruneInterval)
	defer prune.Stop()
	if err := r.Prune(ctx); err != nil && ctx.Err() == nil {
		r.cfg.Logger.ErrorContext(ctx, "slo measurements", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := r.Flush(final); err != nil {
				r.cfg.Logger.ErrorContext(final, "slo measurements lost at shutdown", "err", err)
			}
			return
		case <-flush.C:
			if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.WarnContext(ctx, "slo measurements kept for the next flush", "err", err)
			}
		case <-prune.C:
			if err := r.Prune(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.ErrorContext(ctx, "slo measurements", "err", err)
			}
		}
	}
}
