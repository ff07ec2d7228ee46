-- SCIM directories and webhook deliveries (issue 5); see the PostgreSQL
-- migration of the same number for why a trigger fills deliveries.

CREATE TABLE deliveries (
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,
  id                TEXT NOT NULL UNIQUE,
  event_id          TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  webhook_id        TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
  attempts          INTEGER NOT NULL DEFAULT 0,
  next_attempt_at   INTEGER NOT NULL,
  last_status_code  INTEGER NOT NULL DEFAULT 0,
  last_error        TEXT NOT NULL DEFAULT '',
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  UNIQUE (event_id, webhook_id)
) STRICT;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, seq);
CREATE INDEX deliveries_event ON deliveries (event_id, seq);

CREATE TRIGGER events_enqueue_deliveries AFTER INSERT ON events
BEGIN
  INSERT INTO deliveries (id, event_id, webhook_id, next_attempt_at, created_at, updated_at)
  SELECT 'dlv_' || lower(hex(randomblob(16))), NEW.id, w.id, NEW.created_at, NEW.created_at, NEW.created_at
    FROM webhooks w
   WHERE EXISTS (SELECT 1 FROM json_each(w.events) j WHERE j.value = NEW.type OR j.value = '*');
END;

-- userName lookups (see the PostgreSQL migration).
CREATE INDEX users_directory_user_name ON users (tenant_id, directory_id, lower(user_name));
