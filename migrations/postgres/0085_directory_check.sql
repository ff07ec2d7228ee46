-- SCIM writes may run under a tenant a node remembered for a directory
-- token instead of looking the token up first (a round trip per request).
-- The remembered tenant is only a guess: the write's transaction calls this
-- function right after setting app.tenant_id, in the same round trip as its
-- first statement, and it raises IDB01 unless the directory exists, its
-- token hash is the one given, it belongs to app.tenant_id and that tenant
-- is live (a paused, cancelled or deleted tenant's directory takes no
-- writes). The raise aborts the transaction before anything else of it
-- runs, so a rotated token, a deleted directory or a tenant taken out of
-- service stop the token at once on every node, as the lookup did.
--
-- Like idb_directory_auth (0083) it runs as idbroker_resolver, whose
-- read-all policy on directories lets it see a directory of another tenant
-- (which then fails the tenant comparison), with search_path pinned, and
-- only idbroker_app may call it. It returns nothing and reveals nothing
-- but pass or fail.
CREATE FUNCTION idb_directory_check(p_id text, p_token_hash bytea) RETURNS void
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS
$$
BEGIN
  PERFORM 1
     FROM public.directories d JOIN public.tenants t ON t.id = d.tenant_id
    WHERE d.id = p_id
      AND d.token_hash = p_token_hash
      AND d.tenant_id = current_setting('app.tenant_id', true)
      AND t.status IN ('active', 'trial', 'past_due');
  IF NOT FOUND THEN
    RAISE EXCEPTION 'directory credential no longer valid' USING ERRCODE = 'IDB01';
  END IF;
END
$$;

GRANT CREATE ON SCHEMA public TO idbroker_resolver;
ALTER FUNCTION idb_directory_check(text, bytea) OWNER TO idbroker_resolver;
REVOKE CREATE ON SCHEMA public FROM idbroker_resolver;
REVOKE ALL ON FUNCTION idb_directory_check(text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idb_directory_check(text, bytea) TO idbroker_app;
