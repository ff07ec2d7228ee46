-- See the PostgreSQL migration of the same number. SQLite cannot alter a
-- CHECK constraint, so both tables are rebuilt: new table, copy (seq
-- included, so the order of recording stays), drop, rename, indexes again.
CREATE TABLE revocations_new (
  seq              INTEGER PRIMARY KEY AUTOINCREMENT,
  id               TEXT NOT NULL UNIQUE,
  kind             TEXT NOT NULL CHECK (kind IN ('session', 'user', 'tenant', 'connection', 'client')),
  tenant_id        TEXT NOT NULL,
  subject_id       TEXT NOT NULL DEFAULT '',
  reason           TEXT NOT NULL DEFAULT '',
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,
  last_error       TEXT NOT NULL DEFAULT '',
  created_at       INTEGER NOT NULL
) STRICT;
INSERT INTO revocations_new (seq, id, kind, tenant_id, subject_id, reason, attempts, next_attempt_at, last_error, created_at)
  SELECT seq, id, kind, tenant_id, subject_id, reason, attempts, next_attempt_at, last_error, created_at FROM revocations;
DROP TABLE revocations;
ALTER TABLE revocations_new RENAME TO revocations;
CREATE INDEX revocations_due ON revocations (next_attempt_at, seq);

CREATE TABLE revocations_kept_new (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  id          TEXT NOT NULL UNIQUE,
  kind        TEXT NOT NULL CHECK (kind IN ('session', 'user', 'tenant', 'connection', 'client')),
  tenant_id   TEXT NOT NULL,
  subject_id  TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  applied_at  INTEGER
) STRICT;
INSERT INTO revocations_kept_new (seq, id, kind, tenant_id, subject_id, created_at, applied_at)
  SELECT seq, id, kind, tenant_id, subject_id, created_at, applied_at FROM revocations_kept;
DROP TABLE revocations_kept;
ALTER TABLE revocations_kept_new RENAME TO revocations_kept;
CREATE INDEX revocations_kept_applied ON revocations_kept (applied_at);
