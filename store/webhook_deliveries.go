package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DeliveryStatus is where one event's delivery to one webhook stands.
type DeliveryStatus string

const (
	// DeliveryPending has not been attempted yet.
	DeliveryPending DeliveryStatus = "pending"
	// DeliverySucceeded was answered 2xx.
	DeliverySucceeded DeliveryStatus = "succeeded"
	// DeliveryFailed was attempted and failed; it is retried at NextAttemptAt.
	DeliveryFailed DeliveryStatus = "failed"
	// DeliveryDead failed for longer than the dispatcher's retry window and
	// is no longer retried (the dead-letter state).
	DeliveryDead DeliveryStatus = "dead"
)

// Delivery is one event on its way to one webhook. Rows are created by the
// database in the transaction that appends the event (see migration 0005),
// for every webhook subscribed to the event's type at that moment.
type Delivery struct {
	ID             string // dlv_…
	EventID        string
	WebhookID      string
	Status         DeliveryStatus
	Attempts       int // attempts started, counted when claimed
	NextAttemptAt  time.Time
	LastStatusCode int    // HTTP status of the last attempt; 0 if none came back
	LastError      string // why the last attempt failed, for operators
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// RetryFrom, set by a redelivery, starts the delivery's retry window
	// anew (it otherwise starts with its event), and RetryBase is the
	// attempts made before it: the backoff counts from there, so a
	// redelivered dead letter is retried as a new delivery is.
	RetryFrom *time.Time
	RetryBase int
}

// DeliveryResult is the outcome of one attempt, recorded by RecordDelivery.
type DeliveryResult struct {
	Status        DeliveryStatus
	StatusCode    int
	Error         string
	NextAttemptAt time.Time // when Status is DeliveryFailed
	// ReceiverFailed marks an attempt the receiver failed (an answer other
	// than 2xx, a timeout, a network or TLS error), as opposed to one that
	// ended for the broker's own reasons (its webhook disabled, its event
	// gone, the database unavailable). RecordDelivery counts it in the
	// webhook's failing streak (Webhook.FailingSince); a success ends the
	// streak.
	ReceiverFailed bool
	// At is when the attempt was made, by the dispatcher's clock: the
	// failing streak is measured on it, as the dispatcher's limit is.
	// Zero means now.
	At time.Time
}

// DeliveryQuery selects deliveries of one webhook or one event.
type DeliveryQuery struct {
	WebhookID string
	EventID   string
	Page      Page
}

const deliveryCols = `id, event_id, webhook_id, status, attempts, next_attempt_at, last_status_code,
	last_error, created_at, updated_at, retry_from, retry_base`

func scanDelivery(r row) (Delivery, error) {
	var d Delivery
	err := r.Scan(&d.ID, &d.EventID, &d.WebhookID, &d.Status, &d.Attempts, timeDest{&d.NextAttemptAt},
		&d.LastStatusCode, &d.LastError, timeDest{&d.CreatedAt}, timeDest{&d.UpdatedAt}, nullTimeDest{&d.RetryFrom}, &d.RetryBase)
	return d, err
}

// ClaimDeliveries takes up to limit deliveries due at now for this caller:
// each one's next attempt is pushed to now+lease and its attempt counted,
// in one statement, so no other dispatcher takes it until the lease runs
// out. On PostgreSQL, FOR UPDATE SKIP LOCKED lets several nodes claim side
// by side without waiting on each other's rows; on SQLite the single writer
// makes the claim exclusive already. lease must exceed the time one attempt
// may take, or a slow attempt could be repeated by another node. The batch
// comes back in the order the deliveries were enqueued (their events').
// The deliveries of the webhooks in skip are left for a later claim: the
// caller is still sending to them (a slow receiver), and a claim full of
// their overdue deliveries would hold up every other webhook's.
func (db *DB) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int, skip ...string) ([]Delivery, error) {
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("%w: claim needs a positive limit and lease", ErrInvalid)
	}
	lock := ""
	if db.d.rowSecurity() { // PostgreSQL
		lock = " FOR UPDATE SKIP LOCKED"
	}
	args := []any{db.d.timeArg(now.Add(lease)), db.d.timeArg(now), limit}
	except := notIn("webhook_id", &args, skip)
	type claimed struct {
		d   Delivery
		seq int64
	}
	var out []claimed
	err := db.global(ctx, true, func(q querier) error {
		rs, err := q.query(ctx, `UPDATE deliveries SET next_attempt_at = $1, attempts = attempts + 1, updated_at = $2
			WHERE id IN (SELECT id FROM deliveries WHERE status IN ('pending', 'failed') AND next_attempt_at <= $2`+except+`
				ORDER BY next_attempt_at, seq LIMIT $3`+lock+`)
			RETURNING `+deliveryCols+`, seq`, args...)
		if err != nil {
			return err
		}
		out, err = collect(rs, func(r row) (claimed, error) {
			var c claimed
			err := r.Scan(&c.d.ID, &c.d.EventID, &c.d.WebhookID, &c.d.Status, &c.d.Attempts, timeDest{&c.d.NextAttemptAt},
				&c.d.LastStatusCode, &c.d.LastError, timeDest{&c.d.CreatedAt}, timeDest{&c.d.UpdatedAt},
				nullTimeDest{&c.d.RetryFrom}, &c.d.RetryBase, &c.seq)
			return c, err
		})
		return err
	})
	if err != nil {
		return nil, db.wrap("claim deliveries", err)
	}
	// RETURNING has no order (PostgreSQL answers in whatever order the
	// join met the rows): put the batch back in the order the deliveries
	// were enqueued, which is the order of their events, so that a
	// receiver with nothing failing sees a group created before it is
	// deleted.
	slices.SortFunc(out, func(a, b claimed) int { return cmp.Compare(a.seq, b.seq) })
	ds := make([]Delivery, len(out))
	for i, c := range out {
		ds[i] = c.d
	}
	return ds, nil
}

// notIn is the condition " AND col NOT IN (…)" over values, numbered on
// after *args, which it extends; empty for no values.
func notIn(col string, args *[]any, values []string) string {
	if len(values) == 0 {
		return ""
	}
	in := make([]string, len(values))
	for i, v := range values {
		*args = append(*args, v)
		in[i] = fmt.Sprintf("$%d", len(*args))
	}
	return " AND " + col + " NOT IN (" + strings.Join(in, ", ") + ")"
}

// ReleaseDeliveries hands back claimed deliveries that were not attempted
// (the claimer ran out of lease time for them, or is shutting down): each
// is due again at now, for any node, and the attempt its claim counted is
// taken back. Only deliveries still waiting (pending or failed) change.
func (db *DB) ReleaseDeliveries(ctx context.Context, now time.Time, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	err := db.global(ctx, true, func(q querier) error {
		for _, id := range ids {
			if _, err := q.exec(ctx, `UPDATE deliveries SET next_attempt_at = $2, attempts = attempts - 1, updated_at = $2
				WHERE id = $1 AND status IN ('pending', 'failed') AND attempts > 0`, id, db.d.timeArg(now)); err != nil {
				return err
			}
		}
		return nil
	})
	return db.wrap("release deliveries", err)
}

// RecordDelivery stores the outcome of an attempt on a claimed delivery,
// and keeps its webhook's failing streak: a success ends it, a failure of
// the receiver's (r.ReceiverFailed) starts it or goes on with it, in the
// same transaction.
func (db *DB) RecordDelivery(ctx context.Context, id string, r DeliveryResult) error {
	switch r.Status {
	case DeliverySucceeded, DeliveryFailed, DeliveryDead:
	default:
		return fmt.Errorf("%w: delivery status %q", ErrInvalid, r.Status)
	}
	now := db.now()
	next := r.NextAttemptAt
	if r.Status != DeliveryFailed || next.IsZero() {
		next = now
	}
	err := db.global(ctx, true, func(q querier) error {
		// A delivery ended while its attempt was in flight (its webhook
		// disabled or deleted: endDeliveries) stays ended, unless the
		// attempt succeeded, which is then what happened.
		n, err := q.exec(ctx, `UPDATE deliveries SET status = $2, last_status_code = $3, last_error = $4,
			next_attempt_at = $5, updated_at = $6 WHERE id = $1 AND (status <> 'dead' OR $2 = 'succeeded')`,
			id, string(r.Status), r.StatusCode, r.Error, db.d.timeArg(next), db.d.timeArg(now))
		if err == nil && n == 0 {
			_, err = scanDelivery(q.queryRow(ctx, "SELECT "+deliveryCols+" FROM deliveries WHERE id = $1", id))
			return err
		}
		if err != nil {
			return err
		}
		switch {
		case r.Status == DeliverySucceeded:
			// The row is written only when a streak ends: a healthy
			// webhook's successes add no write.
			_, err = q.exec(ctx, `UPDATE webhooks SET failing_since = NULL
				WHERE id = (SELECT webhook_id FROM deliveries WHERE id = $1) AND failing_since IS NOT NULL`, id)
		case r.ReceiverFailed:
			at := r.At
			if at.IsZero() {
				at = now
			}
			_, err = q.exec(ctx, `UPDATE webhooks SET failing_since = COALESCE(failing_since, $2), last_failure_at = $2,
				last_failure = $3 WHERE id = (SELECT webhook_id FROM deliveries WHERE id = $1)`,
				id, db.d.timeArg(at), r.Error)
		}
		return err
	})
	return db.wrap("record delivery", err)
}

// ListDeliveries pages through the deliveries of q.WebhookID or
// q.EventID (at least one is required) in the order they were created.
func (db *DB) ListDeliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, string, error) {
	if q.WebhookID == "" && q.EventID == "" {
		return nil, "", fmt.Errorf("%w: list deliveries of a webhook or an event", ErrInvalid)
	}
	p := q.Page.Normalize()
	var out []Delivery
	err := db.global(ctx, false, func(qr querier) error {
		where, args := "TRUE", []any{p.Limit + 1}
		if q.WebhookID != "" {
			args = append(args, q.WebhookID)
			where += fmt.Sprintf(" AND webhook_id = $%d", len(args))
		}
		if q.EventID != "" {
			args = append(args, q.EventID)
			where += fmt.Sprintf(" AND event_id = $%d", len(args))
		}
		if p.After != "" {
			args = append(args, p.After)
			where += fmt.Sprintf(" AND seq > (SELECT seq FROM deliveries WHERE id = $%d)", len(args))
		}
		rs, err := qr.query(ctx, "SELECT "+deliveryCols+" FROM deliveries WHERE "+where+" ORDER BY seq LIMIT $1", args...)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanDelivery)
		return err
	})
	if err != nil {
		return nil, "", db.wrap("list deliveries", err)
	}
	out, next := cut(out, p.Limit, func(d Delivery) string { return d.ID })
	return out, next, nil
}

// Event returns one event of the stream.
func (db *DB) Event(ctx context.Context, id string) (Event, error) {
	var e Event
	err := db.global(ctx, false, func(q querier) error {
		var err error
		e, err = scanEvent(q.queryRow(ctx, "SELECT "+eventCols+" FROM events WHERE id = $1", id))
		return err
	})
	return e, db.wrap("get event", err)
}

// Delivery returns one delivery, of whichever webhook.
func (db *DB) Delivery(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	err := db.global(ctx, false, func(q querier) error {
		var err error
		d, err = scanDelivery(q.queryRow(ctx, "SELECT "+deliveryCols+" FROM deliveries WHERE id = $1", id))
		return err
	})
	return d, db.wrap("get delivery", err)
}

// RecoverBatch is how many dead letters one transaction of
// RecoverDeliveries requeues at most: a few milliseconds of writes, so
// that neither the dispatcher's claims (on SQLite, the single writer) nor
// a sign-in's event wait behind a recovery of many thousands.
const RecoverBatch = 500

// RecoverDeliveries requeues every dead delivery of webhook id whose event
// was appended at or after since, as RedeliverDelivery does one: due at
// once, each with a retry window of its own from now. Only the types the
// webhook still subscribes to come back (the others would only end
// again). It works in transactions of up to batch rows (RecoverBatch if
// batch <= 0), oldest first, so the receiver gets them in the order of
// their events; called inside a transaction it is all that one. It
// reports how many were requeued, also when it fails part way (ctx
// cancelled): those stay requeued, and calling again requeues the rest —
// a delivery already pending is not dead, so never requeued twice. An
// unknown or deleted webhook is ErrNotFound; a disabled one ErrConflict.
func (db *DB) RecoverDeliveries(ctx context.Context, id string, since time.Time, batch int) (int, error) {
	if batch <= 0 {
		batch = RecoverBatch
	}
	var (
		total   int
		lastSeq int64 = -1
	)
	for {
		n := 0
		err := db.global(ctx, true, func(q querier) error {
			var disabled bool
			var deleted *time.Time
			var subs []string
			err := q.queryRow(ctx, "SELECT disabled, deleted_at, events FROM webhooks WHERE id = $1", id).
				Scan(&disabled, nullTimeDest{&deleted}, jsonDest{&subs})
			switch {
			case err != nil:
				return err
			case deleted != nil:
				return fmt.Errorf("%w: webhook %s is deleted", ErrNotFound, id)
			case disabled:
				return fmt.Errorf("%w: only the dead letters of an enabled webhook can be recovered", ErrConflict)
			}
			now := db.d.timeArg(db.now())
			args := []any{id, db.d.timeArg(since), lastSeq, batch, now}
			types := ""
			if !slices.Contains(subs, "*") {
				in := make([]string, len(subs))
				for i, s := range subs {
					args = append(args, s)
					in[i] = fmt.Sprintf("$%d", len(args))
				}
				types = " AND e.type IN (" + strings.Join(in, ", ") + ")"
			}
			// Keyset on seq: each batch goes on from where the last one
			// stopped along deliveries_dead (webhook_id, seq, the dead
			// letters only: migration 0118), so a batch reads what it
			// requeues, not the webhook's delivered history.
			rs, err := q.query(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = $5, updated_at = $5,
					retry_from = $5, retry_base = attempts
				WHERE status = 'dead' AND id IN (
					SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id
					WHERE d.webhook_id = $1 AND d.seq > $3 AND d.status = 'dead' AND e.created_at >= $2`+types+`
					ORDER BY d.seq LIMIT $4)
				RETURNING seq`, args...)
			if err != nil {
				return err
			}
			seqs, err := collect(rs, func(r row) (int64, error) {
				var s int64
				return s, r.Scan(&s)
			})
			if err != nil {
				return err
			}
			n = len(seqs)
			for _, s := range seqs {
				lastSeq = max(lastSeq, s)
			}
			return nil
		})
		if err != nil {
			return total, db.wrap("recover deliveries", err)
		}
		total += n
		if n < batch {
			return total, nil
		}
	}
}
