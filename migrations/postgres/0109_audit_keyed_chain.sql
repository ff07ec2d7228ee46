-- Audit chains are keyed from here on: each new row's hash is an HMAC-SHA256
-- under an audit key that is stored only sealed under the master key, so
-- someone who can write the database but does not hold the master key can
-- no longer re-compute the chain after changing a row. key_version names
-- the key a row was hashed with; 0 is the unkeyed SHA-256 of the rows
-- written before this migration, which stay verifiable as they were.
CREATE TABLE audit_keys (
  id          text PRIMARY KEY,
  version     integer NOT NULL UNIQUE CHECK (version > 0),
  mac_key     bytea NOT NULL,
  created_at  timestamptz NOT NULL
);
-- Read and added by the broker; UPDATE of the sealed key only, for
-- "idbroker keys rewrap". No DELETE: a removed key would leave its rows
-- unverifiable.
GRANT SELECT, INSERT ON audit_keys TO idbroker_app;
GRANT UPDATE (mac_key) ON audit_keys TO idbroker_app;
COMMENT ON TABLE audit_keys IS 'Audit chain HMAC keys, sealed under the master key. Never delete a row: the audit rows hashed with it could no longer be verified.';

ALTER TABLE audit_events ADD COLUMN key_version integer NOT NULL DEFAULT 0;
ALTER TABLE operator_audit ADD COLUMN key_version integer NOT NULL DEFAULT 0;
ALTER TABLE tenant_erasures ADD COLUMN key_version integer NOT NULL DEFAULT 0;
