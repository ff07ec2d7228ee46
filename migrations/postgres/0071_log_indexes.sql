-- The portal's sign-in and audit logs are filtered and paged over the
-- whole history (issue 10), newest first by (time, seq). Each filter the
-- page offers — none, the actor, the action or outcome — has an index that
-- starts with the tenant and that filter and ends with (time, seq): a date
-- range and the cursor are a range of it, and the order is its order, so a
-- page reads its own rows and no more. store.TestPostgresHotPathPlans
-- asserts the plans.
--
-- IF NOT EXISTS everywhere: on a large database an operator builds these
-- by hand beforehand, the indexes CONCURRENTLY, so that this transaction
-- finds them and holds its locks for moments, not for the build (see
-- "Upgrading" in docs/reference/operations.md, which lists the same
-- definitions; store.TestPrecreatedIndexesAreKept checks they match).
-- The runner records versions, not checksums, so databases that applied
-- the earlier text are unaffected.
CREATE INDEX IF NOT EXISTS audit_events_ts ON audit_events (tenant_id, ts, seq);
CREATE INDEX IF NOT EXISTS audit_events_action_ts ON audit_events (tenant_id, action, ts, seq);
-- The actor's id as a column: row security lets only leakproof operators
-- into an index condition, and jsonb's ->> is not one, so an index on the
-- expression would never be used by the application role.
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS actor_id text GENERATED ALWAYS AS (actor->>'id') STORED;
CREATE INDEX IF NOT EXISTS audit_events_actor_ts ON audit_events (tenant_id, actor_id, ts, seq);

-- Sign-ins are the outbox's authentication events: partial indexes, so
-- the rest of the stream does not pay for them. Queries repeat the
-- predicate word for word.
CREATE INDEX IF NOT EXISTS events_signins ON events (tenant_id, created_at, seq)
  WHERE type IN ('authentication.succeeded', 'authentication.failed');
CREATE INDEX IF NOT EXISTS events_signins_type ON events (tenant_id, type, created_at, seq)
  WHERE type IN ('authentication.succeeded', 'authentication.failed');
CREATE INDEX IF NOT EXISTS events_signins_email ON events (tenant_id, lower(data->>'email'), created_at, seq)
  WHERE type IN ('authentication.succeeded', 'authentication.failed');
