package store

import (
	"context"
	"time"
)

// PurgeEvents deletes up to limit events appended before before, with
// their deliveries, and reports how many went. An event still owed a
// delivery (pending, or failed and waiting for its retry) stays until that
// delivery ends: retention never cuts a retry short.
//
// Events are the vendor's table, not a tenant's, and ids sort by the time
// they were minted, so the candidates are a range of the id index however
// large the table is.
func (db *DB) PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	err := db.global(ctx, true, func(q querier) error {
		var err error
		n, err = q.exec(ctx, `DELETE FROM events WHERE id IN (
			SELECT e.id FROM events e
			WHERE e.id < $1 AND e.created_at < $2
			  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status IN ('pending', 'failed'))
			ORDER BY e.id LIMIT $3)`,
			idAt(PrefixEvent, before), db.d.timeArg(before), limit)
		return err
	})
	return int(n), db.wrap("purge events", err)
}

// PurgeDeletedWebhooks deletes up to limit webhooks deleted before before
// that no delivery names any more (their deliveries went with their
// events), and reports how many went. Until then a deleted webhook's row
// stays, hidden and without its secrets, so its deliveries stay readable.
func (db *DB) PurgeDeletedWebhooks(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	err := db.global(ctx, true, func(q querier) error {
		var err error
		n, err = q.exec(ctx, `DELETE FROM webhooks WHERE id IN (
			SELECT w.id FROM webhooks w
			WHERE w.deleted_at IS NOT NULL AND w.deleted_at < $1
			  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id)
			LIMIT $2)`,
			db.d.timeArg(before), limit)
		return err
	})
	return int(n), db.wrap("purge deleted webhooks", err)
}
