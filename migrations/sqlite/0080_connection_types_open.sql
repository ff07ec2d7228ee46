-- idbroker: foreign_keys off
-- See the PostgreSQL migration of the same number. SQLite cannot alter a
-- CHECK constraint, so the table is rebuilt: new table, copy, drop, rename,
-- indexes again. The runner switches foreign keys off for this migration,
-- so that dropping the old table does not cascade into the rows that refer
-- to it, and commits only when every reference still resolves.
CREATE TABLE connections_new (
  tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id          TEXT NOT NULL,
  type        TEXT NOT NULL CHECK (length(type) BETWEEN 1 AND 32 AND type GLOB '[a-z]*' AND type NOT GLOB '*[^a-z0-9_]*'),
  name        TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('draft', 'active', 'inactive')),
  config      TEXT NOT NULL,
  secrets     BLOB,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  version     INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (tenant_id, id)
) STRICT;
INSERT INTO connections_new (tenant_id, id, type, name, status, config, secrets, created_at, updated_at, version)
  SELECT tenant_id, id, type, name, status, config, secrets, created_at, updated_at, version FROM connections;
DROP TABLE connections;
ALTER TABLE connections_new RENAME TO connections;
CREATE UNIQUE INDEX connections_id ON connections (id);
