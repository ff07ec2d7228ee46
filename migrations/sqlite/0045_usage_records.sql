-- Usage metering (issue 12); see the PostgreSQL migration of the same
-- number for why the key is the primary key and why there is no foreign key
-- to tenants.
CREATE TABLE usage_records (
  tenant_id        TEXT NOT NULL,
  idempotency_key  TEXT NOT NULL,
  meter            TEXT NOT NULL CHECK (meter IN ('login.succeeded', 'user.active', 'scim.operation',
                                                  'connection.count', 'directory.user_count')),
  subject          TEXT NOT NULL DEFAULT '',
  value            INTEGER NOT NULL DEFAULT 1,
  day              TEXT NOT NULL,
  at               INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, idempotency_key)
) STRICT;
CREATE INDEX usage_records_at ON usage_records (tenant_id, at, idempotency_key);
