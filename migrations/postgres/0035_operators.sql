-- Operators of the console (issue 11): the vendor's own staff, so global
-- tables like api_keys, not tenant data.
--
-- totp_secret is sealed by the store (internal/secrets), never stored in
-- the clear. totp_last_step is the RFC 6238 time step of the last code
-- accepted: a code is accepted only by the UPDATE that raises it, so of two
-- nodes offered the same code at once exactly one succeeds.

CREATE TABLE operators (
  id                text PRIMARY KEY,
  email             text NOT NULL,
  status            text NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
  password_hash     text NOT NULL DEFAULT '',
  totp_secret       bytea,
  totp_last_step    bigint NOT NULL DEFAULT 0,
  enrol_token_hash  bytea,
  enrol_expires_at  timestamptz,
  failed_attempts   integer NOT NULL DEFAULT 0,
  locked_until      timestamptz,
  last_login_at     timestamptz,
  created_at        timestamptz NOT NULL,
  updated_at        timestamptz NOT NULL
);
CREATE UNIQUE INDEX operators_email ON operators (lower(email));
CREATE UNIQUE INDEX operators_enrol_token ON operators (enrol_token_hash) WHERE enrol_token_hash IS NOT NULL;

-- Single-use recovery codes: a code is spent by deleting its row.
CREATE TABLE operator_recovery_codes (
  operator_id  text NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
  code_hash    bytea NOT NULL,
  PRIMARY KEY (operator_id, code_hash)
);

-- Console sessions: only the SHA-256 of the cookie is kept.
CREATE TABLE operator_sessions (
  id            text PRIMARY KEY,
  token_hash    bytea NOT NULL UNIQUE,
  operator_id   text NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
  csrf_token    text NOT NULL,
  created_at    timestamptz NOT NULL,
  last_seen_at  timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);

-- What operators did that belongs to no tenant (sign-ins, lockouts,
-- enrolment, webhook redeliveries). Append-only like audit_events: the app
-- role may insert and read, never change a row. Actions on a tenant go to
-- that tenant's own hash-chained audit.
CREATE TABLE operator_audit (
  seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id          text NOT NULL UNIQUE,
  actor       jsonb NOT NULL,
  action      text NOT NULL,
  resource    jsonb NOT NULL,
  context     jsonb NOT NULL DEFAULT '{}',
  request_id  text NOT NULL DEFAULT '',
  ts          timestamptz NOT NULL
);
CREATE INDEX operator_audit_action ON operator_audit (action, seq);

GRANT SELECT, INSERT, UPDATE, DELETE ON operators, operator_recovery_codes, operator_sessions TO idbroker_app;
GRANT SELECT, INSERT ON operator_audit TO idbroker_app;
