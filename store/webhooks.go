package store

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

const webhookCols = `id, url, events, secret, created_at, disabled, deleted_at, previous_secret, previous_secret_expires_at,
	failing_since, last_failure_at, last_failure, disabled_reason, disabled_at`

// Additional data of the sealed webhook secrets: each column its own, so a
// value copied from one column to the other does not open.
func webhookSecretAAD(id string) []byte   { return aad("webhooks", id) }
func webhookPreviousAAD(id string) []byte { return aad("webhooks", id, "previous_secret") }

func (db *DB) scanWebhook(r row) (Webhook, error) {
	var w Webhook
	var sealed, prev []byte
	if err := r.Scan(&w.ID, &w.URL, jsonDest{&w.Events}, &sealed, timeDest{&w.CreatedAt}, &w.Disabled,
		nullTimeDest{&w.DeletedAt}, &prev, nullTimeDest{&w.PreviousSecretExpiresAt}, nullTimeDest{&w.FailingSince},
		nullTimeDest{&w.LastFailureAt}, &w.LastFailure, &w.DisabledReason, nullTimeDest{&w.DisabledAt}); err != nil {
		return Webhook{}, err
	}
	plain, err := db.cipher.Open(sealed, webhookSecretAAD(w.ID))
	if err != nil {
		return Webhook{}, fmt.Errorf("open webhook secret %s: %w", w.ID, err)
	}
	w.Secret = string(plain)
	if prev != nil {
		plain, err := db.cipher.Open(prev, webhookPreviousAAD(w.ID))
		if err != nil {
			return Webhook{}, fmt.Errorf("open previous webhook secret %s: %w", w.ID, err)
		}
		w.PreviousSecret = string(plain)
	}
	return w, nil
}

func validWebhookURL(raw string) error {
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%w: webhook url %q", ErrInvalid, raw)
	}
	return nil
}

// CreateWebhook registers an endpoint; its signing secret is sealed.
func (db *DB) CreateWebhook(ctx context.Context, w Webhook) (Webhook, error) {
	if err := validWebhookURL(w.URL); err != nil {
		return Webhook{}, err
	}
	if w.Secret == "" {
		return Webhook{}, fmt.Errorf("%w: webhook secret is empty", ErrInvalid)
	}
	if w.ID == "" {
		w.ID = NewID(PrefixWebhook)
	}
	if w.Events == nil {
		w.Events = []string{}
	}
	w.CreatedAt = db.now()
	w.DeletedAt, w.PreviousSecret, w.PreviousSecretExpiresAt = nil, "", nil
	events, err := jsonArg(w.Events)
	if err != nil {
		return Webhook{}, err
	}
	sealed, err := db.cipher.Seal([]byte(w.Secret), webhookSecretAAD(w.ID))
	if err != nil {
		return Webhook{}, fmt.Errorf("store: seal webhook secret: %w", err)
	}
	err = db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "INSERT INTO webhooks (id, url, events, secret, created_at, disabled) VALUES ($1, $2, $3, $4, $5, $6)",
			w.ID, w.URL, events, sealed, db.d.timeArg(w.CreatedAt), w.Disabled)
		return err
	})
	return w, db.wrap("create webhook", err)
}

// Webhooks lists every endpoint that is not deleted.
func (db *DB) Webhooks(ctx context.Context) ([]Webhook, error) {
	var out []Webhook
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, "SELECT "+webhookCols+" FROM webhooks WHERE deleted_at IS NULL ORDER BY id")
		if err != nil {
			return err
		}
		out, err = collect(rs, db.scanWebhook)
		return err
	})
	return out, db.wrap("list webhooks", err)
}

// Webhook returns one webhook, its secrets opened. A deleted webhook is
// returned too, with DeletedAt set: its deliveries still name it, and the
// dispatcher must tell "deleted" from "unavailable". Callers that serve
// the vendor's API treat it as not found.
func (db *DB) Webhook(ctx context.Context, id string) (Webhook, error) {
	var w Webhook
	err := db.global(ctx, false, func(q querier) error {
		var err error
		w, err = db.scanWebhook(q.queryRow(ctx, "SELECT "+webhookCols+" FROM webhooks WHERE id = $1", id))
		return err
	})
	return w, db.wrap("get webhook", err)
}

// WebhookUpdate is a change to a webhook; nil fields are left alone.
type WebhookUpdate struct {
	URL      *string
	Events   *[]string
	Disabled *bool
}

// Why the deliveries a webhook was still owed ended (their last_error).
const (
	DeliveryEndedDisabled = "webhook disabled: not retried"
	DeliveryEndedDeleted  = "webhook deleted: not retried"
	// DeliveryEndedUnsubscribed ends a delivery whose event type the
	// webhook's events list no longer holds (changed by PATCH).
	DeliveryEndedUnsubscribed = "webhook no longer subscribes to this event type: not sent"
)

// UpdateWebhook applies u to the webhook id (not deleted: ErrNotFound). A
// webhook left disabled is sent nothing more: the deliveries it was still
// owed (pending or retrying) end as dead letters in the same transaction,
// and ended reports how many. Enabling it again replays none of them.
func (db *DB) UpdateWebhook(ctx context.Context, id string, u WebhookUpdate) (w Webhook, ended int, err error) {
	if u.URL != nil {
		if err := validWebhookURL(*u.URL); err != nil {
			return Webhook{}, 0, err
		}
	}
	err = db.global(ctx, true, func(q querier) error {
		var err error
		w, err = db.scanWebhook(q.queryRow(ctx, "SELECT "+webhookCols+" FROM webhooks WHERE id = $1 AND deleted_at IS NULL", id))
		if err != nil {
			return err
		}
		if u.URL != nil {
			w.URL = *u.URL
		}
		if u.Events != nil {
			w.Events = *u.Events
		}
		if u.Disabled != nil {
			if w.Disabled && !*u.Disabled {
				// Enabled again: its failing streak starts over, or the
				// next failure would disable it at once.
				w.FailingSince, w.DisabledReason, w.DisabledAt = nil, "", nil
			} else if !w.Disabled && *u.Disabled {
				w.DisabledReason, w.DisabledAt = "", nil // an operator's choice
			}
			w.Disabled = *u.Disabled
		}
		if w.Events == nil {
			w.Events = []string{}
		}
		events, err := jsonArg(w.Events)
		if err != nil {
			return err
		}
		if _, err := q.exec(ctx, `UPDATE webhooks SET url = $2, events = $3, disabled = $4, failing_since = $5,
				disabled_reason = $6, disabled_at = $7 WHERE id = $1`,
			id, w.URL, events, w.Disabled, db.optTime(w.FailingSince), w.DisabledReason, db.optTime(w.DisabledAt)); err != nil {
			return err
		}
		switch {
		case w.Disabled:
			ended, err = db.endDeliveries(ctx, q, id, DeliveryEndedDisabled)
		case u.Events != nil:
			ended, err = db.endUnsubscribed(ctx, q, id, w.Events)
		}
		return err
	})
	return w, ended, db.wrap("update webhook", err)
}

// DeliveryEndedFailing ends what a webhook was owed when the dispatcher
// disabled it (DisableFailingWebhook).
const DeliveryEndedFailing = "webhook disabled after failing continuously: not retried"

// DisableFailingWebhook disables the webhook id, as an operator's PATCH
// would (what it was owed ends, counted by ended; nothing is queued for it
// while disabled), when its failing streak began at or before cutoff:
// every attempt since then failed. DisabledReason says so
// (WebhookDisabledFailing), and only an operator enables it again. A
// webhook not failing that long (a success came in since it was read),
// disabled already or deleted is ErrConflict: the check and the change are
// one statement, so of two nodes seeing the same failure only one
// disables it.
func (db *DB) DisableFailingWebhook(ctx context.Context, id string, cutoff time.Time) (w Webhook, ended int, err error) {
	now := db.now()
	err = db.global(ctx, true, func(q querier) error {
		n, err := q.exec(ctx, `UPDATE webhooks SET disabled = TRUE, disabled_reason = $2, disabled_at = $3
			WHERE id = $1 AND NOT disabled AND deleted_at IS NULL AND failing_since IS NOT NULL AND failing_since <= $4`,
			id, WebhookDisabledFailing, db.d.timeArg(now), db.d.timeArg(cutoff))
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: webhook %s is not failing since %s, or is disabled or deleted", ErrConflict, id, cutoff.UTC().Format(time.RFC3339))
		}
		if ended, err = db.endDeliveries(ctx, q, id, DeliveryEndedFailing); err != nil {
			return err
		}
		w, err = db.scanWebhook(q.queryRow(ctx, "SELECT "+webhookCols+" FROM webhooks WHERE id = $1", id))
		return err
	})
	return w, ended, db.wrap("disable failing webhook", err)
}

// endUnsubscribed dead-letters the deliveries of webhook id still waiting
// whose event is of a type events no longer lists: a receiver that
// narrowed its subscription must not keep being sent, or retried for
// days, what it asked to stop receiving. Widening it replays nothing, as
// re-enabling does not.
func (db *DB) endUnsubscribed(ctx context.Context, q querier, id string, events []string) (int, error) {
	if slices.Contains(events, "*") {
		return 0, nil
	}
	args := []any{id, DeliveryEndedUnsubscribed, db.d.timeArg(db.now())}
	keep := "FALSE" // an empty list subscribes to nothing
	if len(events) > 0 {
		in := make([]string, len(events))
		for i, t := range events {
			args = append(args, t)
			in[i] = fmt.Sprintf("$%d", len(args))
		}
		keep = "type IN (" + strings.Join(in, ", ") + ")"
	}
	n, err := q.exec(ctx, `UPDATE deliveries SET status = 'dead', last_error = $2, next_attempt_at = $3, updated_at = $3
		WHERE webhook_id = $1 AND status IN ('pending', 'failed')
		  AND event_id IN (SELECT id FROM events WHERE NOT (`+keep+`))`, args...)
	return int(n), err
}

// DeleteWebhook deletes the webhook id (ErrNotFound if there is none, or
// it is deleted already). Its row stays, hidden from Webhooks and without
// its secrets, so that the deliveries that name it stay readable: those it
// was still owed end as dead letters, which ended counts. The events stay
// in the stream.
func (db *DB) DeleteWebhook(ctx context.Context, id string) (ended int, err error) {
	now := db.now()
	// A deleted webhook signs nothing again: its secret is overwritten.
	blank, err := db.cipher.Seal(nil, webhookSecretAAD(id))
	if err != nil {
		return 0, fmt.Errorf("store: seal webhook secret: %w", err)
	}
	err = db.global(ctx, true, func(q querier) error {
		n, err := q.exec(ctx, `UPDATE webhooks SET deleted_at = $2, secret = $3, previous_secret = NULL,
			previous_secret_expires_at = NULL WHERE id = $1 AND deleted_at IS NULL`, id, db.d.timeArg(now), blank)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		ended, err = db.endDeliveries(ctx, q, id, DeliveryEndedDeleted)
		return err
	})
	return ended, db.wrap("delete webhook", err)
}

// endDeliveries dead-letters the deliveries of webhook id still waiting
// for an attempt (a claimed one in flight too: RecordDelivery keeps it
// ended unless that attempt succeeds).
func (db *DB) endDeliveries(ctx context.Context, q querier, id, why string) (int, error) {
	now := db.d.timeArg(db.now())
	n, err := q.exec(ctx, `UPDATE deliveries SET status = 'dead', last_error = $2, next_attempt_at = $3, updated_at = $3
		WHERE webhook_id = $1 AND status IN ('pending', 'failed')`, id, why, now)
	return int(n), err
}

// RotateWebhookSecret makes secret the webhook's signing secret and keeps
// the one it replaces, sealed, as PreviousSecret until now+overlap, so
// that deliveries carry both signatures while the receiver moves to the
// new one. A previous secret still kept from an earlier rotation is
// dropped. Two rotations of one webhook at once: the later is ErrConflict.
func (db *DB) RotateWebhookSecret(ctx context.Context, id, secret string, overlap time.Duration) (Webhook, error) {
	if secret == "" || overlap <= 0 {
		return Webhook{}, fmt.Errorf("%w: rotation needs a secret and a positive overlap", ErrInvalid)
	}
	var w Webhook
	err := db.global(ctx, true, func(q querier) error {
		var sealed []byte
		if err := q.queryRow(ctx, "SELECT secret FROM webhooks WHERE id = $1 AND deleted_at IS NULL", id).Scan(&sealed); err != nil {
			return err
		}
		old, err := db.cipher.Open(sealed, webhookSecretAAD(id))
		if err != nil {
			return fmt.Errorf("open webhook secret %s: %w", id, err)
		}
		prev, err := db.cipher.Seal(old, webhookPreviousAAD(id))
		if err != nil {
			return fmt.Errorf("seal previous webhook secret: %w", err)
		}
		next, err := db.cipher.Seal([]byte(secret), webhookSecretAAD(id))
		if err != nil {
			return fmt.Errorf("seal webhook secret: %w", err)
		}
		// Compare and swap on the sealed value read: a rotation that
		// committed in between would otherwise be lost, its secret
		// already handed out.
		n, err := q.exec(ctx, `UPDATE webhooks SET secret = $2, previous_secret = $3, previous_secret_expires_at = $4
			WHERE id = $1 AND secret = $5 AND deleted_at IS NULL`,
			id, next, prev, db.d.timeArg(db.now().Add(overlap)), sealed)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: the webhook's secret was rotated at the same time", ErrConflict)
		}
		w, err = db.scanWebhook(q.queryRow(ctx, "SELECT "+webhookCols+" FROM webhooks WHERE id = $1", id))
		return err
	})
	return w, db.wrap("rotate webhook secret", err)
}
