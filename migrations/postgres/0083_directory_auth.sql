-- SCIM authenticates every request with the directory's token:
-- AuthenticateDirectory read idb_directory_token (0001), a SECURITY DEFINER
-- SQL function, joined to tenants for the status. A SECURITY DEFINER SQL
-- function is never inlined, and a SQL function that is not inlined is
-- parsed and planned again at every call: per request, more server CPU than
-- the lookup itself. This one is PL/pgSQL, whose statement plan is kept
-- for the session, and it reads the tenant's status itself so the caller's
-- JOIN goes. It still returns what the token check needs and nothing else:
-- the tenant id, the token hash and the tenant's status. No row yields a
-- row of NULLs, which the caller filters out.
--
-- idb_directory_token stays for nodes of the previous release during a
-- rolling upgrade.
GRANT SELECT (id, status) ON tenants TO idbroker_resolver;

CREATE FUNCTION idb_directory_auth(p_id text, OUT tenant_id text, OUT token_hash bytea, OUT status text)
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS
$$
BEGIN
  SELECT d.tenant_id, d.token_hash, t.status INTO tenant_id, token_hash, status
    FROM public.directories d JOIN public.tenants t ON t.id = d.tenant_id
   WHERE d.id = p_id;
END
$$;

GRANT CREATE ON SCHEMA public TO idbroker_resolver;
ALTER FUNCTION idb_directory_auth(text) OWNER TO idbroker_resolver;
REVOKE CREATE ON SCHEMA public FROM idbroker_resolver;
REVOKE ALL ON FUNCTION idb_directory_auth(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idb_directory_auth(text) TO idbroker_app;
