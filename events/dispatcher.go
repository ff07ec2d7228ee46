package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/internal/tracing"
	"github.com/idbroker/idbroker/store"
)

// Defaults for zero Config fields.
const (
	DefaultMaxAge    = 72 * time.Hour
	DefaultInterval  = time.Second
	DefaultBatch     = 50
	DefaultTimeout   = 10 * time.Second
	DefaultBaseDelay = 10 * time.Second
	DefaultMaxDelay  = time.Hour
	// DefaultPatience is what the broker sets Config.Patience to.
	DefaultPatience = time.Second
	// DefaultDisableAfter is how long a webhook fails, every attempt,
	// before the dispatcher disables it (as Svix does after five days).
	DefaultDisableAfter = 5 * 24 * time.Hour
	// MinDisableAfter bounds Config.DisableAfter from below: a receiver
	// down for a night or a weekend's deploy must not lose its webhook.
	MinDisableAfter = 24 * time.Hour
)

// ActorDispatcher is the actor of the audit row of a webhook the
// dispatcher disabled.
var ActorDispatcher = store.Actor{Type: "system", ID: "webhook-dispatcher"}

// Store is what the dispatcher needs of the store: claim due deliveries,
// load what they send and where, and record how each attempt went.
type Store interface {
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int, skip ...string) ([]store.Delivery, error)
	RecordDelivery(ctx context.Context, id string, r store.DeliveryResult) error
	ReleaseDeliveries(ctx context.Context, now time.Time, ids ...string) error
	Event(ctx context.Context, id string) (store.Event, error)
	Webhook(ctx context.Context, id string) (store.Webhook, error)
	// Disabling a failing webhook, with its audit row, in one transaction.
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	DisableFailingWebhook(ctx context.Context, id string, cutoff time.Time) (store.Webhook, int, error)
	AppendOperatorAudit(ctx context.Context, e store.OperatorAuditEvent) (store.OperatorAuditEvent, error)
}

// Config configures a Dispatcher.
type Config struct {
	// Store is required.
	Store Store
	// Client sends the webhooks. Nil means the safe outbound client
	// (safehttp: private and metadata addresses refused, few redirects,
	// capped size) with Timeout; pass one built with AllowPrivate for
	// self-hosted receivers and tests.
	Client *http.Client
	Logger *slog.Logger
	// Now is the clock (tests move it); nil means time.Now.
	Now func() time.Time
	// MaxAge is how long after its event a failing delivery is retried
	// before it is dead-lettered; at least 24 h (DefaultMaxAge).
	MaxAge time.Duration
	// Interval between polls when there was nothing to do.
	Interval time.Duration
	// Batch is how many deliveries one poll claims.
	Batch int
	// Timeout bounds one attempt; the claim's lease is three times as long.
	Timeout time.Duration
	// BaseDelay and MaxDelay shape the backoff: the n-th retry waits
	// BaseDelay·2^(n-1), capped at MaxDelay, jittered down by up to half.
	BaseDelay, MaxDelay time.Duration
	// TracerProvider, when tracing is on, gets a span per batch and per
	// delivery (tracing.StartBackground); nil means none.
	TracerProvider trace.TracerProvider
	// OnOutcome, when set, hears the outcome of every attempt recorded
	// (succeeded, failed or dead): the broker counts them in /metrics.
	OnOutcome func(store.DeliveryStatus)
	// Patience is how long a pass waits for its webhooks' sends before it
	// returns, leaving those still running (a receiver that hangs until
	// Timeout, a slow one) to go on by themselves: later passes claim
	// every other webhook's deliveries meanwhile, and none of a webhook
	// still being sent to. Zero waits for every send of the pass, so that
	// a pass has delivered what it claimed when it returns (tests); the
	// broker sets DefaultPatience. With zero, one receiver that hangs
	// holds every pass, and so every other webhook, to one batch per
	// Timeout.
	Patience time.Duration
	// DisableAfter is how long a webhook may fail, every attempt (no 2xx
	// in between), before the dispatcher disables it: what it was owed
	// ends, nothing more is queued for it until an operator enables it
	// again, and its events stay in the stream. Zero means
	// DefaultDisableAfter; negative never disables; otherwise at least
	// MinDisableAfter.
	DisableAfter time.Duration
	// OnDisabled, when set, hears each webhook the dispatcher disabled,
	// after the change committed (the broker counts them in /metrics).
	OnDisabled func(store.Webhook)
}

// Dispatcher delivers the outbox to webhooks.
type Dispatcher struct {
	cfg   Config
	log   *slog.Logger
	lanes *lanes // by webhook
}

// New returns a Dispatcher.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil {
		return nil, errors.New("events: Store is required")
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxAge < 24*time.Hour {
		return nil, fmt.Errorf("events: MaxAge %v is under the 24 h retry promise", cfg.MaxAge)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = DefaultBaseDelay
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DisableAfter == 0 {
		cfg.DisableAfter = DefaultDisableAfter
	}
	if cfg.DisableAfter > 0 && cfg.DisableAfter < MinDisableAfter {
		return nil, fmt.Errorf("events: DisableAfter %v is under %v", cfg.DisableAfter, MinDisableAfter)
	}
	if cfg.Client == nil {
		cfg.Client = safehttp.NewClient(safehttp.Options{Timeout: cfg.Timeout})
	}
	cfg.Client = postOnlyRedirects(cfg.Client)
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, lanes: newLanes(newWakeup())}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

// Run delivers until ctx is done, then waits for the sends still running
// (each ends by its Timeout).
func (d *Dispatcher) Run(ctx context.Context) error {
	drain(ctx, d.lanes.wake, d.cfg.Interval, d.cfg.Interval, d.DeliverDue, func(ctx context.Context, err error) {
		d.log.ErrorContext(ctx, "webhook dispatch failed", "error", err)
	})
	d.Wait()
	return nil
}

// DeliverDue claims the deliveries due now, attempts each once and records
// the outcomes. It reports how many it claimed.
//
// The claim's lease is three Timeouts. Each webhook's deliveries go out
// one at a time, in the batch's order, on a goroutine of their own, and an
// attempt starts only within the first Timeout, so that every attempt
// ends and is recorded inside the lease; what did not start is released
// for the next claim, by any node. The pass waits up to Patience for its
// webhooks (zero: for all of them); a webhook still being sent to after
// that goes on by itself, and no pass claims its deliveries until it is
// done, so a receiver that hangs holds up neither the next pass nor any
// other webhook.
func (d *Dispatcher) DeliverDue(ctx context.Context) (int, error) {
	now := d.cfg.Now()
	lease := 3 * d.cfg.Timeout
	claimed, err := d.cfg.Store.ClaimDeliveries(ctx, now, lease, d.cfg.Batch, d.lanes.busyDests()...)
	if err != nil {
		return 0, fmt.Errorf("events: claim deliveries: %w", err)
	}
	if len(claimed) == 0 {
		return 0, nil // an idle poll is no span
	}
	ctx, batch := tracing.StartBackground(ctx, d.cfg.TracerProvider, SpanWebhookBatch, now)
	defer batch.End()
	if batch.IsRecording() {
		batch.SetAttributes(attribute.Int("batch.size", len(claimed)))
	}
	hooks := &hookCache{m: map[string]store.Webhook{}}
	startBy := now.Add(lease - 2*d.cfg.Timeout)
	err = runLanes(ctx, d.lanes, claimed, func(dl store.Delivery) string { return dl.WebhookID }, d.cfg.Patience,
		func(ctx context.Context, queue []store.Delivery) error {
			return sendInLease(ctx, queue, d.cfg.Now, startBy,
				func(ctx context.Context, dl store.Delivery) error { return d.deliver(ctx, dl, hooks) },
				func(ctx context.Context, left []store.Delivery) error {
					ids := make([]string, len(left))
					for i, dl := range left {
						ids[i] = dl.ID
					}
					if err := d.cfg.Store.ReleaseDeliveries(ctx, d.cfg.Now(), ids...); err != nil {
						return fmt.Errorf("events: release deliveries: %w", err)
					}
					return nil
				})
		},
		func(err error) { d.log.ErrorContext(ctx, "webhook dispatch failed", "error", err) })
	if err != nil {
		tracing.Fail(batch, "record delivery")
	}
	return len(claimed), err
}

// Wait returns once the sends that passes left running (see Patience)
// have ended.
func (d *Dispatcher) Wait() { d.lanes.wait() }

// hookCache holds the webhooks a batch sends to, each loaded once.
type hookCache struct {
	mu sync.Mutex
	m  map[string]store.Webhook
}

func (c *hookCache) get(ctx context.Context, st Store, id string) (store.Webhook, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.m[id]; ok {
		return w, nil
	}
	w, err := st.Webhook(ctx, id)
	if err == nil {
		c.m[id] = w
	}
	return w, err
}

// set replaces the webhook the batch holds (disabled meanwhile).
func (c *hookCache) set(w store.Webhook) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[w.ID] = w
}

// The spans of webhook deliveries (when tracing is on).
const (
	SpanWebhookBatch   = "webhook.batch"
	SpanWebhookDeliver = "webhook.deliver"
)

// deliver attempts one delivery and records the outcome, in a span of its
// own: the POST is its client span, and the receiver is sent its
// traceparent.
func (d *Dispatcher) deliver(ctx context.Context, dl store.Delivery, hooks *hookCache) error {
	ctx, span := tracing.StartBackground(ctx, d.cfg.TracerProvider, SpanWebhookDeliver, time.Time{})
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("delivery.id", dl.ID), attribute.String("webhook.id", dl.WebhookID),
			attribute.String("event.id", dl.EventID), attribute.Int("delivery.attempt", dl.Attempts))
	}
	res, hook := d.attempt(ctx, dl, hooks)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("delivery.status", string(res.Status)))
		if res.Status != store.DeliverySucceeded {
			tracing.Fail(span, string(res.Status))
		}
	}
	if err := d.cfg.Store.RecordDelivery(context.WithoutCancel(ctx), dl.ID, res); err != nil {
		return fmt.Errorf("events: record delivery %s: %w", dl.ID, err)
	}
	if d.cfg.OnOutcome != nil {
		d.cfg.OnOutcome(res.Status)
	}
	d.logStreak(ctx, hook, res, hooks)
	if res.ReceiverFailed {
		d.disableIfFailing(ctx, hook, hooks)
	}
	return nil
}

// logStreak logs a webhook's receiver starting to fail, and answering
// again, once each: as the batch read the webhook (FailingSince), then
// kept in the batch's cache so that its other deliveries log nothing. A
// receiver failing for hours otherwise shows in the gauges and the API
// only. The lines name the host, never the URL's path (some carry a
// secret) nor the event.
func (d *Dispatcher) logStreak(ctx context.Context, hook store.Webhook, res store.DeliveryResult, hooks *hookCache) {
	if hook.ID == "" {
		return
	}
	switch {
	case res.ReceiverFailed && hook.FailingSince == nil:
		at := res.At
		hook.FailingSince = &at
		hooks.set(hook)
		d.log.WarnContext(ctx, "webhook failing: its receiver does not accept deliveries; they are retried with backoff",
			"webhook_id", hook.ID, "host", hostOf(hook.URL), "status_code", res.StatusCode, "next_attempt", res.NextAttemptAt)
	case res.Status == store.DeliverySucceeded && hook.FailingSince != nil:
		since := *hook.FailingSince
		hook.FailingSince = nil
		hooks.set(hook)
		d.log.InfoContext(ctx, "webhook delivers again", "webhook_id", hook.ID, "host", hostOf(hook.URL), "failing_since", since)
	}
}

// disableIfFailing disables hook when every attempt at it has failed for
// DisableAfter: its streak, as the batch read it, began that long ago,
// and the attempt just recorded failed too. The store checks the streak
// again as it disables (a success recorded since by another node keeps
// the webhook), so of the nodes that see the same failures one disables
// it, writes the audit row and logs it. A failure here is logged: the
// next failed attempt tries again.
func (d *Dispatcher) disableIfFailing(ctx context.Context, hook store.Webhook, hooks *hookCache) {
	if d.cfg.DisableAfter < 0 || hook.ID == "" || hook.Disabled || hook.FailingSince == nil {
		return
	}
	cutoff := d.cfg.Now().Add(-d.cfg.DisableAfter)
	if hook.FailingSince.After(cutoff) {
		return
	}
	ctx = context.WithoutCancel(ctx)
	var (
		w     store.Webhook
		ended int
	)
	err := d.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if w, ended, err = d.cfg.Store.DisableFailingWebhook(ctx, hook.ID, cutoff); err != nil {
			return err
		}
		details, err := json.Marshal(map[string]any{
			"reason":           store.WebhookDisabledFailing,
			"failing_since":    w.FailingSince,
			"last_failure":     w.LastFailure,
			"deliveries_ended": ended,
			// The host only, as the webhook's other audit rows: some
			// receivers carry a secret in the path.
			"host": hostOf(w.URL),
		})
		if err != nil {
			return fmt.Errorf("encode audit context: %w", err)
		}
		_, err = d.cfg.Store.AppendOperatorAudit(ctx, store.OperatorAuditEvent{
			Actor: ActorDispatcher, Action: "webhook.disabled",
			Resource: store.Resource{Type: "webhook", ID: w.ID}, Context: details,
		})
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return // not failing that long after all, or another node disabled it
	}
	if err != nil {
		d.log.ErrorContext(ctx, "disable failing webhook", "webhook_id", hook.ID, "error", err)
		return
	}
	hooks.set(w) // what the batch still holds for it ends, unsent
	d.log.WarnContext(ctx, "webhook disabled: every attempt failed for too long; an operator must enable it again",
		"webhook_id", w.ID, "host", hostOf(w.URL), "failing_since", w.FailingSince,
		"last_failure", w.LastFailure, "deliveries_ended", ended)
	if d.cfg.OnDisabled != nil {
		d.cfg.OnDisabled(w)
	}
}

// hostOf is the host of a webhook's URL, what logs and audit rows name.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// payload is the webhook body: the event as GET /api/v1/events shows it.
type payload struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	TenantID  string          `json:"tenant_id,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// attempt makes one attempt at dl and returns its outcome, with the
// webhook it was for (zero when it could not be read).
func (d *Dispatcher) attempt(ctx context.Context, dl store.Delivery, hooks *hookCache) (store.DeliveryResult, store.Webhook) {
	// Shutdown does not cut a started attempt short: aborting the POST
	// left the receiver with an event it may well have taken, recorded as
	// failed, and sent it again. It runs to its answer or its Timeout,
	// which the broker waits for, and is recorded as it went.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Timeout)
	defer cancel()
	ev, err := d.cfg.Store.Event(ctx, dl.EventID)
	if errors.Is(err, store.ErrNotFound) {
		return store.DeliveryResult{Status: store.DeliveryDead, Error: "event unavailable: " + err.Error()}, store.Webhook{}
	}
	if err != nil {
		// A database hiccup is no reason to give up on the delivery:
		// retry it like a failed attempt.
		return d.failed(dl, dl.CreatedAt, 0, "event unavailable: "+err.Error(), 0), store.Webhook{}
	}
	tracing.SetSpanTenant(trace.SpanFromContext(ctx), ev.TenantID)
	hook, err := hooks.get(ctx, d.cfg.Store, dl.WebhookID)
	if err != nil {
		return d.failed(dl, ev.CreatedAt, 0, "webhook unavailable: "+err.Error(), 0), store.Webhook{}
	}
	res := d.send(ctx, dl, ev, hook)
	return res, hook
}

// send POSTs ev to hook as delivery dl, unless the webhook no longer
// wants it, and returns the outcome.
func (d *Dispatcher) send(ctx context.Context, dl store.Delivery, ev store.Event, hook store.Webhook) store.DeliveryResult {
	// Disabling or deleting a webhook ends what it was owed (store:
	// UpdateWebhook, DeleteWebhook); a delivery claimed just before, or
	// enqueued by an event committing at the same moment, ends here
	// instead of being sent or retried.
	switch {
	case hook.DeletedAt != nil:
		return store.DeliveryResult{Status: store.DeliveryDead, Error: store.DeliveryEndedDeleted}
	case hook.Disabled:
		return store.DeliveryResult{Status: store.DeliveryDead, Error: store.DeliveryEndedDisabled}
	case !slices.Contains(hook.Events, AllTypes) && !slices.Contains(hook.Events, ev.Type):
		// Its events list was narrowed after this was enqueued
		// (store: UpdateWebhook ends those still waiting then).
		return store.DeliveryResult{Status: store.DeliveryDead, Error: store.DeliveryEndedUnsubscribed}
	}
	body, err := json.Marshal(payload{ID: ev.ID, Type: ev.Type, TenantID: ev.TenantID, CreatedAt: ev.CreatedAt, Data: ev.Data})
	if err != nil {
		return store.DeliveryResult{Status: store.DeliveryDead, Error: "encode event: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return d.receiverFailed(d.failed(dl, ev.CreatedAt, 0, "bad webhook url", 0))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "idbroker-webhooks/1")
	// Spelled as documented, not as net/http would canonicalise them
	// (Idbroker-Signature): header names are case-insensitive, but some
	// receivers look them up as sent (an API Gateway event's headers).
	req.Header[HeaderEventID] = []string{ev.ID}
	req.Header[HeaderEventType] = []string{ev.Type}
	req.Header[HeaderDelivery] = []string{dl.ID}
	sent := d.cfg.Now()
	var old []string
	if hook.PreviousSecret != "" && hook.PreviousSecretExpiresAt != nil && sent.Before(*hook.PreviousSecretExpiresAt) {
		old = append(old, hook.PreviousSecret) // a rotation's overlap
	}
	req.Header[HeaderSignature] = []string{Sign(hook.Secret, sent, body, old...)}
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		// The error names the URL and the network failure, never the
		// secret or the body.
		return d.receiverFailed(d.failed(dl, ev.CreatedAt, 0, err.Error(), 0))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return store.DeliveryResult{Status: store.DeliverySucceeded, StatusCode: resp.StatusCode}
	}
	return d.receiverFailed(d.failed(dl, ev.CreatedAt, resp.StatusCode, "HTTP "+resp.Status, retryAfter(resp.Header.Get("Retry-After"), sent)))
}

// receiverFailed marks r as the receiver's failure, which counts toward
// disabling its webhook (store.DeliveryResult.ReceiverFailed).
func (d *Dispatcher) receiverFailed(r store.DeliveryResult) store.DeliveryResult {
	r.ReceiverFailed, r.At = true, d.cfg.Now()
	return r
}

// retryAfter reads a Retry-After header (RFC 9110 section 10.2.3: seconds
// or an HTTP date) as a wait from now; zero when there is none, it does
// not parse, or it is already past.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(1<<31))) * time.Second // far past any cap, without overflow
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// failed schedules the next attempt, or dead-letters the delivery once
// its event (created at born) is older than MaxAge, or, redelivered, once
// its redelivery is (store.Delivery.RetryFrom). wait is what the
// receiver asked for (Retry-After): the next attempt is no sooner, so a
// receiver shedding load (429, 503) is not hit again while it asked for
// time, but no later than MaxDelay either, which keeps a receiver from
// pushing an event out of its retry window.
func (d *Dispatcher) failed(dl store.Delivery, born time.Time, code int, why string, wait time.Duration) store.DeliveryResult {
	now := d.cfg.Now()
	if len(why) > 500 {
		why = why[:500]
	}
	if dl.RetryFrom != nil && dl.RetryFrom.After(born) {
		born = *dl.RetryFrom
	}
	if now.Sub(born) >= d.cfg.MaxAge {
		return store.DeliveryResult{Status: store.DeliveryDead, StatusCode: code, Error: why}
	}
	next := d.backoff(dl.Attempts - dl.RetryBase)
	if wait > next {
		next = min(wait, d.cfg.MaxDelay)
	}
	return store.DeliveryResult{Status: store.DeliveryFailed, StatusCode: code, Error: why, NextAttemptAt: now.Add(next)}
}

// backoff is the wait after the attempts-th failure.
func (d *Dispatcher) backoff(attempts int) time.Duration {
	delay := d.cfg.BaseDelay
	for i := 1; i < attempts && delay < d.cfg.MaxDelay; i++ {
		delay *= 2 // doubling stops at the cap, so it cannot overflow
	}
	delay = min(delay, d.cfg.MaxDelay)
	return delay/2 + rand.N(delay/2+1)
}

// postOnlyRedirects returns a copy of c that follows only the redirects
// that repeat the POST with its body (307, 308), within c's own rules. A
// 301, 302 or 303 would be followed by a GET without the event, whose 2xx
// would count the event as delivered: that answer is returned instead, a
// failed attempt, retried like any other.
func postOnlyRedirects(c *http.Client) *http.Client {
	out := *c
	next := c.CheckRedirect
	out.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.Method != via[0].Method {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 { // net/http's own limit
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &out
}
