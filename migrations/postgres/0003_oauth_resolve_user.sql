-- The OpenID Provider's one cross-tenant lookup (issue 3): an operator names
-- a user by id alone (POST /api/v1/users/{id}/revoke_sessions), and the
-- broker must learn the user's tenant before it may touch anything of it.
-- Like idb_resolve_connection, the function runs as idbroker_resolver, which
-- may read only the two columns it needs.

-- users is keyed (tenant_id, id); this index serves the lookup by id alone.
CREATE INDEX users_id ON users (id);

CREATE POLICY resolver_read ON users FOR SELECT TO idbroker_resolver USING (true);
GRANT SELECT (tenant_id, id) ON users TO idbroker_resolver;

CREATE FUNCTION idb_resolve_user(p_id text) RETURNS text
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS
$$ SELECT tenant_id FROM users WHERE id = p_id $$;

GRANT CREATE ON SCHEMA public TO idbroker_resolver;
ALTER FUNCTION idb_resolve_user(text) OWNER TO idbroker_resolver;
REVOKE CREATE ON SCHEMA public FROM idbroker_resolver;
REVOKE ALL ON FUNCTION idb_resolve_user(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idb_resolve_user(text) TO idbroker_app;
