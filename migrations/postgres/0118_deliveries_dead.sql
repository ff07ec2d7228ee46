-- POST /webhooks/{id}/recover (store.RecoverDeliveries) requeues a
-- webhook's dead letters in batches, each going on along seq from the
-- last. Along deliveries_webhook (webhook_id, seq) a batch would read every
-- delivery of the webhook until it met enough dead ones: for a busy
-- webhook, the whole retention of its succeeded deliveries, in one
-- transaction. This partial index holds the dead letters only, which are
-- few while receivers are healthy, so each batch reads what it requeues.
-- IF NOT EXISTS: an operator may build it CONCURRENTLY beforehand
-- (docs/reference/operations.md).
CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries (webhook_id, seq) WHERE status = 'dead';
