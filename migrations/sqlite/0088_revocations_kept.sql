-- Revocations outlive the session store's memory of them; see the
-- PostgreSQL migration of the same number. The embedded deployment's
-- session store lives in the process, so every start finds it new and
-- empty and the replay ends nothing; the code path is the same.
CREATE TABLE revocations_kept (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  id          TEXT NOT NULL UNIQUE,
  kind        TEXT NOT NULL CHECK (kind IN ('session', 'user', 'tenant', 'connection')),
  tenant_id   TEXT NOT NULL,
  subject_id  TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  applied_at  INTEGER
) STRICT;
CREATE INDEX revocations_kept_applied ON revocations_kept (applied_at);

INSERT INTO revocations_kept (id, kind, tenant_id, subject_id, created_at)
  SELECT id, kind, tenant_id, subject_id, created_at FROM revocations ORDER BY seq;

CREATE TABLE session_store_epoch (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  epoch       INTEGER NOT NULL,
  server      TEXT NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;
INSERT INTO session_store_epoch (id, epoch, server, updated_at) VALUES (1, 0, '', 0);
