-- The self-serve portal (issue 10).
--
-- Opening a portal link spends it and starts a portal session of one hour:
-- the session's own secret (hashed) lives on the link's row, so one row is
-- one admin visit, from the vendor's call to sign-out or expiry. The
-- session cookie names the tenant and the link, so a session is found by
-- primary key under its tenant; only the link itself, a bare token, needs
-- the cross-tenant lookup below.
ALTER TABLE portal_links ADD COLUMN session_hash bytea;
ALTER TABLE portal_links ADD COLUMN session_expires_at timestamptz;

CREATE FUNCTION idb_resolve_portal_link(p_hash bytea) RETURNS text
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS
$$ SELECT tenant_id FROM portal_links WHERE token_hash = p_hash $$;

GRANT CREATE ON SCHEMA public TO idbroker_resolver;
ALTER FUNCTION idb_resolve_portal_link(bytea) OWNER TO idbroker_resolver;
REVOKE CREATE ON SCHEMA public FROM idbroker_resolver;
REVOKE ALL ON FUNCTION idb_resolve_portal_link(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idb_resolve_portal_link(bytea) TO idbroker_app;

-- The last test login of each connection (portal "Test connection"): the
-- profile and raw attributes it produced, or the check that failed and
-- what the IdP sent. One row per connection, replaced by the next test.
CREATE TABLE connection_tests (
  tenant_id        text NOT NULL,
  connection_id    text NOT NULL,
  ok               boolean NOT NULL,
  -- The connection's updated_at when tested: a later change makes the
  -- test stale.
  conn_updated_at  timestamptz NOT NULL,
  result           jsonb NOT NULL,
  created_at       timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, connection_id),
  FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE connection_tests ENABLE ROW LEVEL SECURITY;
ALTER TABLE connection_tests FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON connection_tests
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON connection_tests TO idbroker_app;

-- A domain's last DNS check, for the portal's "last checked" and the
-- reason a check failed.
ALTER TABLE domains ADD COLUMN last_checked_at timestamptz;
ALTER TABLE domains ADD COLUMN last_check_error text NOT NULL DEFAULT '';
