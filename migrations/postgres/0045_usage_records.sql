-- Usage metering (issue 12).
--
-- One row per billable fact, written in the transaction of the fact. The
-- primary key is the record's idempotency key within its tenant, so a
-- retried transaction, a second node or a re-run snapshot job adds nothing
-- (INSERT … ON CONFLICT DO NOTHING): "user.active" is keyed by tenant, user
-- and calendar month, which is what makes MAU count each user once.
--
-- No foreign key to tenants: when a tenant is erased, its records are
-- reduced to pseudonymised monthly totals that outlive it (billing law), and
-- everything else of them is deleted by the erase job.
CREATE TABLE usage_records (
  tenant_id        text NOT NULL,
  idempotency_key  text NOT NULL,
  meter            text NOT NULL CHECK (meter IN ('login.succeeded', 'user.active', 'scim.operation',
                                                  'connection.count', 'directory.user_count')),
  subject          text NOT NULL DEFAULT '',
  value            bigint NOT NULL DEFAULT 1,
  day              text NOT NULL,
  at               timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, idempotency_key)
);
CREATE INDEX usage_records_at ON usage_records (tenant_id, at, idempotency_key);

ALTER TABLE usage_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_records FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_records
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON usage_records TO idbroker_app;

-- The export walks every tenant that has records in a window, erased ones
-- included; like the resolvers, this returns tenant ids and nothing else.
CREATE POLICY resolver_read ON usage_records FOR SELECT TO idbroker_resolver USING (true);
GRANT SELECT (tenant_id, at) ON usage_records TO idbroker_resolver;

CREATE FUNCTION idb_usage_tenants(p_from timestamptz, p_to timestamptz) RETURNS SETOF text
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS
$$ SELECT DISTINCT tenant_id FROM usage_records WHERE at >= p_from AND at < p_to ORDER BY tenant_id $$;

GRANT CREATE ON SCHEMA public TO idbroker_resolver;
ALTER FUNCTION idb_usage_tenants(timestamptz, timestamptz) OWNER TO idbroker_resolver;
REVOKE CREATE ON SCHEMA public FROM idbroker_resolver;
REVOKE ALL ON FUNCTION idb_usage_tenants(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idb_usage_tenants(timestamptz, timestamptz) TO idbroker_app;
