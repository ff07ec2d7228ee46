-- Tenant lifecycle (issue 12); see the PostgreSQL migration of the same
-- number. SQLite cannot alter a CHECK constraint, and rebuilding tenants
-- would cascade-delete every child row, so the constraint's text is widened
-- in place: SQLite documents this edit of sqlite_schema as safe for changes
-- that do not affect the stored format, which a wider CHECK does not.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, 'CHECK (status IN (''active'', ''trial'', ''paused''))',
                          'CHECK (status IN (''trial'', ''active'', ''past_due'', ''paused'', ''cancelled'', ''deleted''))')
 WHERE type = 'table' AND name = 'tenants';
PRAGMA writable_schema = RESET;

ALTER TABLE tenants ADD COLUMN deleted_at INTEGER;
ALTER TABLE tenants ADD COLUMN status_before_delete TEXT NOT NULL DEFAULT '';
CREATE INDEX tenants_deleted_at ON tenants (deleted_at) WHERE status = 'deleted';

CREATE TABLE tenant_erasures (
  erased_tenant  TEXT PRIMARY KEY,
  audit_id       TEXT NOT NULL UNIQUE,
  seq            INTEGER NOT NULL,
  actor          TEXT NOT NULL,
  action         TEXT NOT NULL,
  resource       TEXT NOT NULL,
  context        TEXT NOT NULL,
  request_id     TEXT NOT NULL DEFAULT '',
  ts             INTEGER NOT NULL,
  prev_hash      TEXT NOT NULL,
  hash           TEXT NOT NULL
) STRICT;
