-- The last SCIM errors of each directory (issue 10): what Okta or Entra
-- was answered when a request of its failed, for the portal's directory
-- page. A ring, not a log: the insert's transaction deletes what is older
-- than the newest store.SCIMErrorsKept of the directory, so a sync storm
-- cannot grow it; a successful request writes nothing here. Rows name the
-- method, the route with our own ids only, and the SCIM answer: no query
-- strings, bodies or tokens.
CREATE TABLE scim_errors (
  tenant_id     text NOT NULL,
  directory_id  text NOT NULL,
  -- Time-ordered (store.NewID): the ring's order.
  id            text NOT NULL,
  at            timestamptz NOT NULL,
  status        integer NOT NULL,
  scim_type     text NOT NULL DEFAULT '',
  detail        text NOT NULL DEFAULT '',
  method        text NOT NULL,
  path          text NOT NULL,
  PRIMARY KEY (tenant_id, directory_id, id),
  FOREIGN KEY (tenant_id, directory_id) REFERENCES directories (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE scim_errors ENABLE ROW LEVEL SECURITY;
ALTER TABLE scim_errors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scim_errors
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, DELETE ON scim_errors TO idbroker_app;
