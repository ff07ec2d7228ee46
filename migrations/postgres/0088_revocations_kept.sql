-- Revocations outlive the session store's memory of them.
--
-- The session store (Redis) forgets: a restart from an older snapshot, a
-- failover to a lagging replica or a restored backup brings back sessions
-- that were revoked after the snapshot was taken. revocations_kept keeps
-- every order from the moment it is recorded (in the transaction of the
-- change, beside its queue row in revocations) until no session or refresh
-- token it could have ended can still live: applied_at, set when the order
-- is retired from the queue, plus the longest session lifetime. When a node
-- finds that the session store is not the one every revocation was applied
-- to (session_store_epoch below), it applies them all again before trusting
-- it. Like revocations, it is global and holds ids only: the order to end a
-- deleted tenant's sessions must outlive the tenant's rows.
CREATE TABLE revocations_kept (
  seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  id          text PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('session', 'user', 'tenant', 'connection')),
  tenant_id   text NOT NULL,
  subject_id  text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL,
  applied_at  timestamptz
);
-- The pruning sweep: applied orders past the window.
CREATE INDEX revocations_kept_applied ON revocations_kept (applied_at);

-- Orders still queued when this migration runs are kept too.
INSERT INTO revocations_kept (id, kind, tenant_id, subject_id, created_at)
  SELECT id, kind, tenant_id, subject_id, created_at FROM revocations ORDER BY seq;

-- session_store_epoch is the one row naming the session store every kept
-- revocation has been applied to: the server (Redis run_id) and the epoch
-- marker written into it after the last full replay. A node that finds
-- another server, or the marker missing or different, replays the kept
-- revocations, writes epoch + 1 into the store and here, and only then
-- trusts the store again.
CREATE TABLE session_store_epoch (
  id          integer PRIMARY KEY CHECK (id = 1),
  epoch       bigint NOT NULL,
  server      text NOT NULL,
  updated_at  timestamptz NOT NULL
);
INSERT INTO session_store_epoch (id, epoch, server, updated_at) VALUES (1, 0, '', now());

GRANT SELECT, INSERT, UPDATE, DELETE ON revocations_kept TO idbroker_app;
GRANT SELECT, UPDATE ON session_store_epoch TO idbroker_app;
