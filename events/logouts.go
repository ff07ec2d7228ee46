package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/idbroker/idbroker/internal/tracing"
	"github.com/idbroker/idbroker/store"
)

// LogoutStore is what a LogoutDispatcher needs of the store.
type LogoutStore interface {
	DueLogouts(ctx context.Context, now time.Time) (bool, error)
	ClaimLogouts(ctx context.Context, now time.Time, lease time.Duration, limit int, skip ...string) ([]store.Logout, error)
	RecordLogout(ctx context.Context, id string, r store.DeliveryResult) error
	ReleaseLogouts(ctx context.Context, now time.Time, ids ...string) error
}

// LogoutSender makes one attempt at delivering a back-channel logout: it
// signs the logout token and POSTs it (the broker's *Provider). It returns
// what the application answered (a zero Status if nothing came back) and
// nil on success.
type LogoutSender interface {
	SendLogout(ctx context.Context, l store.Logout) (LogoutAnswer, error)
}

// LogoutAnswer is what an application answered a back-channel logout.
type LogoutAnswer struct {
	Status int // the HTTP status; 0 if none came back
	// RetryAfter is the answer's Retry-After header as sent (seconds or
	// an HTTP date, RFC 9110 section 10.2.3), "" if none: an application
	// shedding load (429, 503) is not sent the logout again before then,
	// within MaxDelay and the logout's own retry window.
	RetryAfter string
}

// Defaults of a LogoutDispatcher. A logout matters while the application
// may still hold the session, so it is retried for a day, starting fast.
const (
	DefaultLogoutMaxAge    = 24 * time.Hour
	DefaultLogoutBaseDelay = time.Second
	DefaultLogoutMaxDelay  = 10 * time.Minute
	DefaultLogoutPoll      = 250 * time.Millisecond
	logoutBatch            = 20
)

// LogoutConfig configures a LogoutDispatcher.
type LogoutConfig struct {
	Store  LogoutStore
	Sender LogoutSender
	Logger *slog.Logger
	Now    func() time.Time
	// MaxAge, BaseDelay, MaxDelay and Poll default to the constants above;
	// Timeout (one attempt) to DefaultTimeout.
	MaxAge, BaseDelay, MaxDelay, Poll, Timeout time.Duration
	// TracerProvider, when tracing is on, gets a span per batch and per
	// logout (tracing.StartBackground); nil means none.
	TracerProvider trace.TracerProvider
	// OnOutcome, as Config's, hears every attempt's recorded outcome.
	OnOutcome func(store.DeliveryStatus)
	// Patience is Config.Patience for applications: how long a pass
	// waits for its sends before leaving those still running (an
	// application whose logout endpoint hangs) to go on by themselves,
	// so that no other application's logouts wait for them. Zero waits
	// for every send; the broker sets DefaultPatience.
	Patience time.Duration
}

// LogoutDispatcher delivers the back-channel logout queue (store.Logout
// rows, queued when sessions end) the way Dispatcher delivers webhooks:
// claimed with a lease so that two nodes never send one at once, retried
// with exponential backoff and jitter, dead-lettered (status dead, visible
// through store.ListLogouts) after MaxAge or at once when the application
// refuses it with a 4xx other than 408 and 429. Nothing is lost to a
// shutdown: an attempt in flight keeps its row, retried once its lease
// runs out.
type LogoutDispatcher struct {
	cfg   LogoutConfig
	log   *slog.Logger
	wake  wakeup
	lanes *lanes // by application

	// failing holds the applications whose last logout from this node
	// failed, so that their failing and their recovery are logged once
	// each (logStreak), not once per logout. Only failing applications
	// are in it.
	failingMu sync.Mutex
	failing   map[string]bool
}

// NewLogoutDispatcher returns a LogoutDispatcher; Run it on every node.
func NewLogoutDispatcher(cfg LogoutConfig) (*LogoutDispatcher, error) {
	if cfg.Store == nil || cfg.Sender == nil {
		return nil, errors.New("events: logout dispatcher needs a Store and a Sender")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultLogoutMaxAge
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = DefaultLogoutBaseDelay
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = DefaultLogoutMaxDelay
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultLogoutPoll
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	wake := newWakeup()
	d := &LogoutDispatcher{cfg: cfg, log: cfg.Logger, wake: wake, lanes: newLanes(wake)}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

// Kick makes Run look for due logouts now rather than at its next poll.
func (d *LogoutDispatcher) Kick() { d.wake.kick() }

// Run delivers due logouts until ctx is done; it returns nil then, once
// the sends still running have ended (each by its Timeout).
func (d *LogoutDispatcher) Run(ctx context.Context) error {
	drain(ctx, d.wake, d.cfg.Poll, d.cfg.Poll, d.DeliverDue, func(ctx context.Context, err error) {
		d.log.ErrorContext(ctx, "back-channel logout dispatch failed", "err", err)
	})
	d.Wait()
	return nil
}

// Wait returns once the sends that passes left running (see Patience)
// have ended.
func (d *LogoutDispatcher) Wait() { d.lanes.wait() }

// DeliverDue claims the logouts due now, attempts each once and records
// the outcomes; it reports how many it attempted.
func (d *LogoutDispatcher) DeliverDue(ctx context.Context) (int, error) {
	now := d.cfg.Now()
	due, err := d.cfg.Store.DueLogouts(ctx, now)
	if err != nil || !due {
		return 0, err
	}
	lease := 3 * d.cfg.Timeout
	claimed, err := d.cfg.Store.ClaimLogouts(ctx, now, lease, logoutBatch, d.lanes.busyDests()...)
	if err != nil {
		return 0, fmt.Errorf("events: claim logouts: %w", err)
	}
	if len(claimed) == 0 {
		return 0, nil
	}
	ctx, batch := tracing.StartBackground(ctx, d.cfg.TracerProvider, SpanLogoutBatch, now)
	defer batch.End()
	if batch.IsRecording() {
		batch.SetAttributes(attribute.Int("batch.size", len(claimed)))
	}
	// As webhooks: one application at a time each, attempts started only
	// within the first Timeout of the lease, the rest released.
	startBy := now.Add(lease - 2*d.cfg.Timeout)
	err = runLanes(ctx, d.lanes, claimed, func(l store.Logout) string { return l.ApplicationID }, d.cfg.Patience,
		func(ctx context.Context, queue []store.Logout) error {
			return sendInLease(ctx, queue, d.cfg.Now, startBy, d.deliver,
				func(ctx context.Context, left []store.Logout) error {
					ids := make([]string, len(left))
					for i, l := range left {
						ids[i] = l.ID
					}
					if err := d.cfg.Store.ReleaseLogouts(ctx, d.cfg.Now(), ids...); err != nil {
						return fmt.Errorf("events: release logouts: %w", err)
					}
					return nil
				})
		},
		func(err error) { d.log.ErrorContext(ctx, "back-channel logout dispatch failed", "err", err) })
	if err != nil {
		tracing.Fail(batch, "record logout")
	}
	return len(claimed), err
}

// The spans of back-channel logout deliveries (when tracing is on).
const (
	SpanLogoutBatch   = "backchannel_logout.batch"
	SpanLogoutDeliver = "backchannel_logout.deliver"
)

// deliver attempts one logout and records the outcome, in a span of its
// own: the POST to the application is its client span, and the
// application is sent its traceparent.
func (d *LogoutDispatcher) deliver(ctx context.Context, l store.Logout) error {
	ctx, span := tracing.StartBackground(ctx, d.cfg.TracerProvider, SpanLogoutDeliver, time.Time{})
	defer span.End()
	if span.IsRecording() {
		tracing.SetSpanTenant(span, l.TenantID)
		span.SetAttributes(attribute.String("logout.id", l.ID), tracing.ClientKey.String(l.ApplicationID),
			attribute.Int("delivery.attempt", l.Attempts))
	}
	// As a webhook's, a started send outlives shutdown, up to Timeout.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Timeout)
	sent := d.cfg.Now()
	answer, err := d.cfg.Sender.SendLogout(actx, l)
	cancel()
	res := d.result(l, answer.Status, err, retryAfter(answer.RetryAfter, sent))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("delivery.status", string(res.Status)))
		if res.Status != store.DeliverySucceeded {
			tracing.Fail(span, string(res.Status))
		}
	}
	if res.Status == store.DeliveryDead {
		d.log.WarnContext(ctx, "back-channel logout dead-lettered", "logout", l.ID, "client_id", l.ApplicationID,
			"sid", l.SessionID, "attempts", l.Attempts, "err", res.Error)
	}
	if err := d.cfg.Store.RecordLogout(context.WithoutCancel(ctx), l.ID, res); err != nil {
		return fmt.Errorf("events: record logout %s: %w", l.ID, err)
	}
	if d.cfg.OnOutcome != nil {
		d.cfg.OnOutcome(res.Status)
	}
	d.logStreak(ctx, l, res)
	return nil
}

// logStreak logs an application's logout endpoint starting to fail, and
// accepting logouts again, once each on this node: an operator paged for
// the backlog learns which application it is at once, not a day later
// from the dead letters.
func (d *LogoutDispatcher) logStreak(ctx context.Context, l store.Logout, res store.DeliveryResult) {
	ok := res.Status == store.DeliverySucceeded
	d.failingMu.Lock()
	was := d.failing[l.ApplicationID]
	switch {
	case !ok && !was:
		if d.failing == nil {
			d.failing = map[string]bool{}
		}
		d.failing[l.ApplicationID] = true
	case ok && was:
		delete(d.failing, l.ApplicationID)
	}
	d.failingMu.Unlock()
	switch {
	case !ok && !was:
		d.log.WarnContext(ctx, "back-channel logout failing: the application's logout endpoint does not accept logouts; they are retried for a day, then dead-lettered",
			"client_id", l.ApplicationID, "tenant_id", l.TenantID, "status_code", res.StatusCode, "err", res.Error)
	case ok && was:
		d.log.InfoContext(ctx, "back-channel logouts delivered again", "client_id", l.ApplicationID, "tenant_id", l.TenantID)
	}
}

// result is the outcome of an attempt at l that the application answered
// status (0: none) and err; wait is what it asked for with Retry-After.
// A logout is retried until MaxAge after it was queued (or redelivered:
// store.Logout.RetryFrom), its deadline. The next attempt waits the
// backoff, or wait when that is longer, but never more than MaxDelay (a
// Retry-After of days must not park the logout while the application may
// still honour the session) and never past the deadline: an application
// that asks for more time than is left gets one last attempt at the
// deadline, not none.
func (d *LogoutDispatcher) result(l store.Logout, status int, err error, wait time.Duration) store.DeliveryResult {
	if err == nil {
		return store.DeliveryResult{Status: store.DeliverySucceeded, StatusCode: status}
	}
	why := err.Error()
	if len(why) > 500 {
		why = why[:500]
	}
	now := d.cfg.Now()
	born := l.CreatedAt
	if l.RetryFrom != nil && l.RetryFrom.After(born) {
		born = *l.RetryFrom
	}
	deadline := born.Add(d.cfg.MaxAge)
	refused := status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
	if refused || !now.Before(deadline) {
		return store.DeliveryResult{Status: store.DeliveryDead, StatusCode: status, Error: why}
	}
	delay := d.cfg.BaseDelay
	for i := 1; i < l.Attempts-l.RetryBase && delay < d.cfg.MaxDelay; i++ {
		delay *= 2
	}
	delay = min(delay, d.cfg.MaxDelay)
	delay = delay/2 + rand.N(delay/2+1)
	if wait > delay {
		delay = min(wait, d.cfg.MaxDelay)
	}
	next := now.Add(delay)
	if next.After(deadline) {
		next = deadline
	}
	return store.DeliveryResult{Status: store.DeliveryFailed, StatusCode: status, Error: why, NextAttemptAt: next}
}
