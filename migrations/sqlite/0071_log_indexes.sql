-- The portal's logs over the whole history: see the PostgreSQL migration
-- of the same number. store.TestSQLiteHotPathPlans asserts the plans.
CREATE INDEX audit_events_ts ON audit_events (tenant_id, ts, seq);
CREATE INDEX audit_events_action_ts ON audit_events (tenant_id, action, ts, seq);
ALTER TABLE audit_events ADD COLUMN actor_id TEXT GENERATED ALWAYS AS (json_extract(actor, '$.id')) VIRTUAL;
CREATE INDEX audit_events_actor_ts ON audit_events (tenant_id, actor_id, ts, seq);

CREATE INDEX events_signins ON events (tenant_id, created_at, seq)
  WHERE type IN ('authentication.succeeded', 'authentication.failed');
CREATE INDEX events_signins_type ON events (tenant_id, type, created_at, seq)
  WHERE type IN ('authentication.succeeded', 'authentication.failed');
CREATE INDEX events_signins_email ON events (tenant_id, lower(json_extract(data, '$.email')), created_at, seq)
  WHERE type IN ('authentication.succeeded', 'authentication.failed');
