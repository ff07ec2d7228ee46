-- Audit chains are keyed from here on: each new row's hash is an HMAC-SHA256
-- under an audit key that is stored only sealed under the master key, so
-- someone who can write the database but does not hold the master key can
-- no longer re-compute the chain after changing a row. key_version names
-- the key a row was hashed with; 0 is the unkeyed SHA-256 of the rows
-- written before this migration, which stay verifiable as they were.
CREATE TABLE audit_keys (
  id          TEXT PRIMARY KEY,
  version     INTEGER NOT NULL UNIQUE CHECK (version > 0),
  mac_key     BLOB NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;
-- Never removed, and only the sealed key changes (a master key rewrap):
-- a removed key would leave its rows unverifiable.
CREATE TRIGGER audit_keys_no_delete BEFORE DELETE ON audit_keys
BEGIN SELECT RAISE(ABORT, 'audit_keys is append-only'); END;
CREATE TRIGGER audit_keys_no_update BEFORE UPDATE OF id, version, created_at ON audit_keys
BEGIN SELECT RAISE(ABORT, 'audit_keys: only mac_key may change'); END;

ALTER TABLE audit_events ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE operator_audit ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenant_erasures ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0;
