-- Durable revocation and back-channel logout (issue 9).
--
-- revocations is the queue of "end these sessions" orders. A change that
-- must end sessions (a SCIM deprovisioning, a tenant paused or deleted, a
-- connection deactivated, an operator's revoke_sessions) inserts its row in
-- the transaction that makes the change, so the order commits exactly when
-- the change does; a worker on every node applies it to the session store
-- and deletes the row only once the store has acknowledged. It is global
-- on purpose and has no foreign key to tenants: the order to end a deleted
-- tenant's sessions must outlive the tenant's rows. It holds ids only.
CREATE TABLE revocations (
  seq              bigint GENERATED ALWAYS AS IDENTITY,
  id               text PRIMARY KEY,
  kind             text NOT NULL CHECK (kind IN ('session', 'user', 'tenant', 'connection')),
  tenant_id        text NOT NULL,
  subject_id       text NOT NULL DEFAULT '',
  reason           text NOT NULL DEFAULT '',
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL,
  last_error       text NOT NULL DEFAULT '',
  created_at       timestamptz NOT NULL
);
-- The claim query: due orders, oldest first.
CREATE INDEX revocations_due ON revocations (next_attempt_at, seq);

-- logouts is the back-channel logout queue: one row per (ended session,
-- application that received tokens in it and has a back-channel URI),
-- delivered with the webhooks' retry, backoff and dead-letter rules. The
-- logout token is signed at each attempt, so nothing secret is stored.
CREATE TABLE logouts (
  seq               bigint GENERATED ALWAYS AS IDENTITY,
  id                text PRIMARY KEY,
  session_id        text NOT NULL,
  tenant_id         text NOT NULL,
  user_id           text NOT NULL,
  application_id    text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
  attempts          integer NOT NULL DEFAULT 0,
  next_attempt_at   timestamptz NOT NULL,
  last_status_code  integer NOT NULL DEFAULT 0,
  last_error        text NOT NULL DEFAULT '',
  created_at        timestamptz NOT NULL,
  updated_at        timestamptz NOT NULL,
  UNIQUE (session_id, application_id)
);
CREATE INDEX logouts_due ON logouts (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX logouts_application ON logouts (application_id, seq);

GRANT SELECT, INSERT, UPDATE, DELETE ON revocations, logouts TO idbroker_app;
