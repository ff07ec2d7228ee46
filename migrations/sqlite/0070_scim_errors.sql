-- The last SCIM errors of each directory: see the PostgreSQL migration of
-- the same number. SQLite has no row security; the store filters by tenant.
CREATE TABLE scim_errors (
  tenant_id     TEXT NOT NULL,
  directory_id  TEXT NOT NULL,
  id            TEXT NOT NULL,
  at            INTEGER NOT NULL,
  status        INTEGER NOT NULL,
  scim_type     TEXT NOT NULL DEFAULT '',
  detail        TEXT NOT NULL DEFAULT '',
  method        TEXT NOT NULL,
  path          TEXT NOT NULL,
  PRIMARY KEY (tenant_id, directory_id, id),
  FOREIGN KEY (tenant_id, directory_id) REFERENCES directories (tenant_id, id) ON DELETE CASCADE
) STRICT;
