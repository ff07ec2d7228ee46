-- See the PostgreSQL migration of the same number.
ALTER TABLE webhooks ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));
ALTER TABLE webhooks ADD COLUMN deleted_at INTEGER;
ALTER TABLE webhooks ADD COLUMN previous_secret BLOB;
ALTER TABLE webhooks ADD COLUMN previous_secret_expires_at INTEGER;

DROP TRIGGER events_enqueue_deliveries;
CREATE TRIGGER events_enqueue_deliveries AFTER INSERT ON events
BEGIN
  INSERT INTO deliveries (id, event_id, webhook_id, next_attempt_at, created_at, updated_at)
  SELECT 'dlv_' || lower(hex(randomblob(16))), NEW.id, w.id, NEW.created_at, NEW.created_at, NEW.created_at
    FROM webhooks w
   WHERE w.disabled = 0 AND w.deleted_at IS NULL
     AND EXISTS (SELECT 1 FROM json_each(w.events) j WHERE j.value = NEW.type OR j.value = '*');
END;
