-- Per-tenant service levels (issue 12); see the PostgreSQL migration of the
-- same number.
CREATE TABLE slo_minutes (
  tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  kind           TEXT NOT NULL CHECK (kind IN ('sign_in', 'token')),
  minute         INTEGER NOT NULL,
  node           TEXT NOT NULL,
  ok             INTEGER NOT NULL DEFAULT 0,
  client_errors  INTEGER NOT NULL DEFAULT 0,
  server_errors  INTEGER NOT NULL DEFAULT 0,
  le_5           INTEGER NOT NULL DEFAULT 0,
  le_10          INTEGER NOT NULL DEFAULT 0,
  le_25          INTEGER NOT NULL DEFAULT 0,
  le_50          INTEGER NOT NULL DEFAULT 0,
  le_100         INTEGER NOT NULL DEFAULT 0,
  le_250         INTEGER NOT NULL DEFAULT 0,
  le_500         INTEGER NOT NULL DEFAULT 0,
  le_750         INTEGER NOT NULL DEFAULT 0,
  le_1000        INTEGER NOT NULL DEFAULT 0,
  le_1500        INTEGER NOT NULL DEFAULT 0,
  le_2500        INTEGER NOT NULL DEFAULT 0,
  le_5000        INTEGER NOT NULL DEFAULT 0,
  le_10000       INTEGER NOT NULL DEFAULT 0,
  le_inf         INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, minute, kind, node)
) STRICT;
