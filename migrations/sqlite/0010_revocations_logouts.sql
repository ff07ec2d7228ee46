-- Durable revocation and back-channel logout (issue 9); see the PostgreSQL
-- migration of the same number.
CREATE TABLE revocations (
  seq              INTEGER PRIMARY KEY AUTOINCREMENT,
  id               TEXT NOT NULL UNIQUE,
  kind             TEXT NOT NULL CHECK (kind IN ('session', 'user', 'tenant', 'connection')),
  tenant_id        TEXT NOT NULL,
  subject_id       TEXT NOT NULL DEFAULT '',
  reason           TEXT NOT NULL DEFAULT '',
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,
  last_error       TEXT NOT NULL DEFAULT '',
  created_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX revocations_due ON revocations (next_attempt_at, seq);

CREATE TABLE logouts (
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,
  id                TEXT NOT NULL UNIQUE,
  session_id        TEXT NOT NULL,
  tenant_id         TEXT NOT NULL,
  user_id           TEXT NOT NULL,
  application_id    TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
  status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
  attempts          INTEGER NOT NULL DEFAULT 0,
  next_attempt_at   INTEGER NOT NULL,
  last_status_code  INTEGER NOT NULL DEFAULT 0,
  last_error        TEXT NOT NULL DEFAULT '',
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  UNIQUE (session_id, application_id)
) STRICT;
CREATE INDEX logouts_due ON logouts (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX logouts_application ON logouts (application_id, seq);
