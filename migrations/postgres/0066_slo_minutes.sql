-- Per-tenant service levels (issue 12): the broker's own measurements of
-- sign-in completion and token issuance, one row per tenant, kind, minute
-- and node. Each node aggregates in memory and writes the whole minute it
-- saw (replacing its own row: a retried flush adds nothing), so nodes
-- never contend for a row and the figures of a window are plain sums.
--
-- A request counts once: as ok, client_errors (refused: 4xx) or
-- server_errors (5xx), and in one latency bucket, le_N meaning "answered
-- within N ms" (le_inf: slower than 10 s). Rows older than 30 days are
-- pruned. Foreign key to tenants: erasing a tenant removes its rows.
CREATE TABLE slo_minutes (
  tenant_id      text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  kind           text NOT NULL CHECK (kind IN ('sign_in', 'token')),
  minute         timestamptz NOT NULL,
  node           text NOT NULL,
  ok             bigint NOT NULL DEFAULT 0,
  client_errors  bigint NOT NULL DEFAULT 0,
  server_errors  bigint NOT NULL DEFAULT 0,
  le_5           bigint NOT NULL DEFAULT 0,
  le_10          bigint NOT NULL DEFAULT 0,
  le_25          bigint NOT NULL DEFAULT 0,
  le_50          bigint NOT NULL DEFAULT 0,
  le_100         bigint NOT NULL DEFAULT 0,
  le_250         bigint NOT NULL DEFAULT 0,
  le_500         bigint NOT NULL DEFAULT 0,
  le_750         bigint NOT NULL DEFAULT 0,
  le_1000        bigint NOT NULL DEFAULT 0,
  le_1500        bigint NOT NULL DEFAULT 0,
  le_2500        bigint NOT NULL DEFAULT 0,
  le_5000        bigint NOT NULL DEFAULT 0,
  le_10000       bigint NOT NULL DEFAULT 0,
  le_inf         bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, minute, kind, node)
);

ALTER TABLE slo_minutes ENABLE ROW LEVEL SECURITY;
ALTER TABLE slo_minutes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON slo_minutes
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON slo_minutes TO idbroker_app;
