-- SCIM token rotation with an overlap: the hash of the token a rotation
-- replaced keeps authenticating until previous_token_expires_at, so that
-- the IdP (Okta, Entra ID) can be given the new token without a window of
-- refused provisioning calls.
--
-- The resolver functions that read a directory's token (0083, 0085) return
-- and compare the current hash only; the new ones below add the previous
-- one. The old functions stay for nodes of the previous release during a
-- rolling upgrade (they refuse a previous token, as before).
ALTER TABLE directories ADD COLUMN previous_token_hash bytea;
ALTER TABLE directories ADD COLUMN previous_token_expires_at timestamptz;
GRANT SELECT (previous_token_hash, previous_token_expires_at) ON directories TO idbroker_resolver;

CREATE FUNCTION idb_directory_auth2(p_id text, OUT tenant_id text, OUT token_hash bytea, OUT status text,
    OUT previous_token_hash bytea, OUT previous_token_expires_at timestamptz)
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS
$$
BEGIN
  SELECT d.tenant_id, d.token_hash, t.status, d.previous_token_hash, d.previous_token_expires_at
    INTO tenant_id, token_hash, status, previous_token_hash, previous_token_expires_at
    FROM public.directories d JOIN public.tenants t ON t.id = d.tenant_id
   WHERE d.id = p_id;
END
$$;

CREATE FUNCTION idb_directory_check2(p_id text, p_token_hash bytea) RETURNS void
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS
$$
BEGIN
  PERFORM 1
     FROM public.directories d JOIN public.tenants t ON t.id = d.tenant_id
    WHERE d.id = p_id
      AND (d.token_hash = p_token_hash
           OR (d.previous_token_hash = p_token_hash AND d.previous_token_expires_at > pg_catalog.statement_timestamp()))
      AND d.tenant_id = current_setting('app.tenant_id', true)
      AND t.status IN ('active', 'trial', 'past_due');
  IF NOT FOUND THEN
    RAISE EXCEPTION 'directory credential no longer valid' USING ERRCODE = 'IDB01';
  END IF;
END
$$;

GRANT CREATE ON SCHEMA public TO idbroker_resolver;
ALTER FUNCTION idb_directory_auth2(text) OWNER TO idbroker_resolver;
ALTER FUNCTION idb_directory_check2(text, bytea) OWNER TO idbroker_resolver;
REVOKE CREATE ON SCHEMA public FROM idbroker_resolver;
REVOKE ALL ON FUNCTION idb_directory_auth2(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION idb_directory_check2(text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idb_directory_auth2(text) TO idbroker_app;
GRANT EXECUTE ON FUNCTION idb_directory_check2(text, bytea) TO idbroker_app;
