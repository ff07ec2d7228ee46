-- Operators of the console (issue 11); see the PostgreSQL migration.

CREATE TABLE operators (
  id                TEXT PRIMARY KEY,
  email             TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
  password_hash     TEXT NOT NULL DEFAULT '',
  totp_secret       BLOB,
  totp_last_step    INTEGER NOT NULL DEFAULT 0,
  enrol_token_hash  BLOB,
  enrol_expires_at  INTEGER,
  failed_attempts   INTEGER NOT NULL DEFAULT 0,
  locked_until      INTEGER,
  last_login_at     INTEGER,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX operators_email ON operators (lower(email));
CREATE UNIQUE INDEX operators_enrol_token ON operators (enrol_token_hash) WHERE enrol_token_hash IS NOT NULL;

CREATE TABLE operator_recovery_codes (
  operator_id  TEXT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
  code_hash    BLOB NOT NULL,
  PRIMARY KEY (operator_id, code_hash)
) STRICT;

CREATE TABLE operator_sessions (
  id            TEXT PRIMARY KEY,
  token_hash    BLOB NOT NULL UNIQUE,
  operator_id   TEXT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
  csrf_token    TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  last_seen_at  INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);

CREATE TABLE operator_audit (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  id          TEXT NOT NULL UNIQUE,
  actor       TEXT NOT NULL,
  action      TEXT NOT NULL,
  resource    TEXT NOT NULL,
  context     TEXT NOT NULL DEFAULT '{}',
  request_id  TEXT NOT NULL DEFAULT '',
  ts          INTEGER NOT NULL
) STRICT;
CREATE INDEX operator_audit_action ON operator_audit (action, seq);
CREATE TRIGGER operator_audit_no_update BEFORE UPDATE ON operator_audit
BEGIN SELECT RAISE(ABORT, 'operator_audit is append-only'); END;
CREATE TRIGGER operator_audit_no_delete BEFORE DELETE ON operator_audit
BEGIN SELECT RAISE(ABORT, 'operator_audit is append-only'); END;
