-- The self-serve portal (issue 10): see the PostgreSQL migration of the
-- same number. SQLite has no row security; the store filters by tenant.
ALTER TABLE portal_links ADD COLUMN session_hash BLOB;
ALTER TABLE portal_links ADD COLUMN session_expires_at INTEGER;

CREATE TABLE connection_tests (
  tenant_id        TEXT NOT NULL,
  connection_id    TEXT NOT NULL,
  ok               INTEGER NOT NULL,
  conn_updated_at  INTEGER NOT NULL,
  result           TEXT NOT NULL,
  created_at       INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, connection_id),
  FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
) STRICT;

ALTER TABLE domains ADD COLUMN last_checked_at INTEGER;
ALTER TABLE domains ADD COLUMN last_check_error TEXT NOT NULL DEFAULT '';
