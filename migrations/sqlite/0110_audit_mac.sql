-- The audit chains' hash and prev_hash are the unkeyed SHA-256 chain again,
-- as every build computes and checks them, and the key goes into a column
-- of its own: mac is HMAC-SHA256(audit key of key_version, hash), written
-- by every build from this migration on. A build from before 0109 leaves
-- it empty, so nodes of both versions can write one chain during a rolling
-- upgrade and both verify it. Since hash covers every row before it, one
-- valid mac vouches for the whole chain up to its row.
--
-- Rows that 0109 keyed (key_version > 0, hash an HMAC) cannot be re-chained
-- here: SQL has no audit key. They keep their hash, get an empty mac, and
-- are checked the 0109 way (see store.AuditKeys.Hash).
ALTER TABLE audit_events ADD COLUMN mac TEXT NOT NULL DEFAULT '';
ALTER TABLE operator_audit ADD COLUMN mac TEXT NOT NULL DEFAULT '';
ALTER TABLE tenant_erasures ADD COLUMN mac TEXT NOT NULL DEFAULT '';
