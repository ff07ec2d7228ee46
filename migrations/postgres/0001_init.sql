-- idbroker schema, PostgreSQL.
--
-- Every table that holds a tenant's data has tenant_id NOT NULL, indexes
-- that lead with it, and Row-Level Security ENABLED and FORCED. The broker
-- queries as idbroker_app, a NOLOGIN role that owns nothing, with
-- app.tenant_id set per transaction. Cross-tenant lookups that turn a
-- credential into a tenant are SECURITY DEFINER functions owned by
-- idbroker_resolver, the only role with a read-all policy, and they return
-- ids, never rows.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'idbroker_app') THEN
    CREATE ROLE idbroker_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; -- another database's migration won the race
END $$;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'idbroker_resolver') THEN
    CREATE ROLE idbroker_resolver NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

-- The migrating user switches to idbroker_app for queries and hands the
-- resolver functions to idbroker_resolver.
DO $$
BEGIN
  EXECUTE format('GRANT idbroker_app, idbroker_resolver TO %I', current_user);
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

CREATE TABLE tenants (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  status      text NOT NULL CHECK (status IN ('active', 'trial', 'paused')),
  tier        text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);

CREATE TABLE domains (
  tenant_id           text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id                  text NOT NULL,
  domain              text NOT NULL,
  verified            boolean NOT NULL DEFAULT false,
  verification_token  text NOT NULL,
  verified_at         timestamptz,
  created_at          timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, domain)
);
-- Global on purpose: a verified domain belongs to one tenant only.
CREATE UNIQUE INDEX domains_verified_domain ON domains (domain) WHERE verified;

CREATE TABLE applications (
  id                         text PRIMARY KEY,
  name                       text NOT NULL,
  secret_hash                bytea,
  public                     boolean NOT NULL DEFAULT false,
  redirect_uris              jsonb NOT NULL,
  post_logout_redirect_uris  jsonb NOT NULL,
  backchannel_logout_uri     text NOT NULL DEFAULT '',
  id_token_signing_alg       text NOT NULL DEFAULT 'RS256',
  access_token_ttl_ms        bigint NOT NULL DEFAULT 0,
  id_token_ttl_ms            bigint NOT NULL DEFAULT 0,
  refresh_token_ttl_ms       bigint NOT NULL DEFAULT 0,
  created_at                 timestamptz NOT NULL,
  updated_at                 timestamptz NOT NULL
);

CREATE TABLE connections (
  tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id          text NOT NULL,
  type        text NOT NULL CHECK (type IN ('saml', 'oidc')),
  name        text NOT NULL,
  status      text NOT NULL CHECK (status IN ('draft', 'active', 'inactive')),
  config      jsonb NOT NULL,
  secrets     bytea,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
-- Resolving a connection named in an ACS URL looks up by id alone.
CREATE UNIQUE INDEX connections_id ON connections (id);

CREATE TABLE directories (
  tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id          text NOT NULL,
  name        text NOT NULL,
  token_hash  bytea NOT NULL,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
-- SCIM requests name the directory in the URL; the token then proves it.
CREATE UNIQUE INDEX directories_id ON directories (id);

CREATE TABLE users (
  tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id              text NOT NULL,
  directory_id    text,
  external_id     text NOT NULL DEFAULT '',
  user_name       text NOT NULL DEFAULT '',
  email           text NOT NULL DEFAULT '',
  email_verified  boolean NOT NULL DEFAULT false,
  given_name      text NOT NULL DEFAULT '',
  family_name     text NOT NULL DEFAULT '',
  display_name    text NOT NULL DEFAULT '',
  active          boolean NOT NULL DEFAULT true,
  attributes      jsonb NOT NULL DEFAULT '{}',
  version         bigint NOT NULL DEFAULT 1,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, directory_id) REFERENCES directories (tenant_id, id) ON DELETE SET NULL (directory_id)
);
CREATE INDEX users_email ON users (tenant_id, lower(email));
-- SCIM userName is unique within a directory (409 uniqueness).
CREATE UNIQUE INDEX users_user_name ON users (tenant_id, directory_id, lower(user_name)) WHERE directory_id IS NOT NULL AND user_name <> '';
CREATE INDEX users_external_id ON users (tenant_id, directory_id, external_id);

-- Which upstream identity is which user: SSO logins link by IdP subject.
CREATE TABLE user_identities (
  tenant_id      text NOT NULL,
  connection_id  text NOT NULL,
  idp_subject    text NOT NULL,
  user_id        text NOT NULL,
  created_at     timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, connection_id, idp_subject),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_identities_user ON user_identities (tenant_id, user_id);

CREATE TABLE groups (
  tenant_id     text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id            text NOT NULL,
  directory_id  text NOT NULL,
  external_id   text NOT NULL DEFAULT '',
  display_name  text NOT NULL,
  attributes    jsonb NOT NULL DEFAULT '{}',
  version       bigint NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, directory_id) REFERENCES directories (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX groups_display_name ON groups (tenant_id, directory_id, lower(display_name));

CREATE TABLE group_members (
  tenant_id  text NOT NULL,
  group_id   text NOT NULL,
  user_id    text NOT NULL,
  PRIMARY KEY (tenant_id, group_id, user_id),
  FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_members_user ON group_members (tenant_id, user_id);

CREATE TABLE signing_keys (
  id           text PRIMARY KEY,
  alg          text NOT NULL CHECK (alg IN ('RS256', 'ES256')),
  status       text NOT NULL CHECK (status IN ('active', 'overlap', 'retired')),
  private_key  bytea NOT NULL,
  created_at   timestamptz NOT NULL,
  retire_at    timestamptz
);
-- One signing key per algorithm at a time, even when two nodes start at once.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE status = 'active';

CREATE TABLE api_keys (
  id            text PRIMARY KEY,
  name          text NOT NULL,
  hash          bytea NOT NULL UNIQUE,
  prefix        text NOT NULL,
  created_at    timestamptz NOT NULL,
  last_used_at  timestamptz,
  revoked_at    timestamptz
);

CREATE TABLE portal_links (
  tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id          text NOT NULL,
  intent      text NOT NULL CHECK (intent IN ('sso', 'dsync', 'domain_verification', 'audit_logs')),
  token_hash  bytea NOT NULL,
  return_url  text NOT NULL DEFAULT '',
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  created_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
-- The link's token is the credential that finds its tenant.
CREATE UNIQUE INDEX portal_links_token ON portal_links (token_hash);

-- Append-only: idbroker_app may insert and read, never update or delete
-- (erasing a tenant cascades as the owner).
CREATE TABLE audit_events (
  tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  seq         bigint NOT NULL,
  id          text NOT NULL,
  actor       jsonb NOT NULL,
  action      text NOT NULL,
  resource    jsonb NOT NULL,
  context     jsonb NOT NULL DEFAULT '{}',
  request_id  text NOT NULL DEFAULT '',
  ts          timestamptz NOT NULL,
  prev_hash   text NOT NULL,
  hash        text NOT NULL,
  PRIMARY KEY (tenant_id, seq),
  UNIQUE (tenant_id, id)
);
CREATE INDEX audit_events_action ON audit_events (tenant_id, action, seq);

-- The outbox. The vendor's event stream spans tenants, so it is global;
-- rows of an erased tenant go with it.
CREATE TABLE events (
  seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id          text NOT NULL UNIQUE,
  tenant_id   text REFERENCES tenants (id) ON DELETE CASCADE,
  type        text NOT NULL,
  data        jsonb NOT NULL,
  created_at  timestamptz NOT NULL
);
CREATE INDEX events_tenant ON events (tenant_id, seq);

CREATE TABLE webhooks (
  id          text PRIMARY KEY,
  url         text NOT NULL,
  events      jsonb NOT NULL,
  secret      bytea NOT NULL,
  created_at  timestamptz NOT NULL
);

-- Row-Level Security on every tenant table.
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['domains', 'connections', 'directories', 'users', 'user_identities',
                           'groups', 'group_members', 'portal_links', 'audit_events']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
                      USING (tenant_id = current_setting('app.tenant_id', true))
                      WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
  END LOOP;
END $$;

CREATE POLICY resolver_read ON domains FOR SELECT TO idbroker_resolver USING (true);
CREATE POLICY resolver_read ON connections FOR SELECT TO idbroker_resolver USING (true);
CREATE POLICY resolver_read ON directories FOR SELECT TO idbroker_resolver USING (true);
CREATE POLICY resolver_read ON portal_links FOR SELECT TO idbroker_resolver USING (true);

GRANT USAGE ON SCHEMA public TO idbroker_app, idbroker_resolver;
GRANT SELECT, INSERT, UPDATE, DELETE ON
  tenants, domains, applications, connections, directories, users, user_identities,
  groups, group_members, signing_keys, api_keys, portal_links, events, webhooks
  TO idbroker_app;
GRANT SELECT, INSERT ON audit_events TO idbroker_app;
GRANT SELECT (tenant_id, domain, verified) ON domains TO idbroker_resolver;
GRANT SELECT (tenant_id, id) ON connections TO idbroker_resolver;
GRANT SELECT (tenant_id, id, token_hash) ON directories TO idbroker_resolver;
GRANT SELECT (tenant_id, id, token_hash, expires_at, used_at) ON portal_links TO idbroker_resolver;

CREATE FUNCTION idb_resolve_domain(p_domain text) RETURNS text
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS
$$ SELECT tenant_id FROM domains WHERE domain = p_domain AND verified $$;

CREATE FUNCTION idb_resolve_connection(p_id text) RETURNS text
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS
$$ SELECT tenant_id FROM connections WHERE id = p_id $$;

CREATE FUNCTION idb_directory_token(p_id text, OUT tenant_id text, OUT token_hash bytea)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS
$$ SELECT tenant_id, token_hash FROM directories WHERE id = p_id $$;

-- Changing an owner needs CREATE on the schema for the new owner (unless
-- the migrating user is a superuser); it is taken back right after.
GRANT CREATE ON SCHEMA public TO idbroker_resolver;
ALTER FUNCTION idb_resolve_domain(text) OWNER TO idbroker_resolver;
ALTER FUNCTION idb_resolve_connection(text) OWNER TO idbroker_resolver;
ALTER FUNCTION idb_directory_token(text) OWNER TO idbroker_resolver;
REVOKE CREATE ON SCHEMA public FROM idbroker_resolver;
REVOKE ALL ON FUNCTION idb_resolve_domain(text), idb_resolve_connection(text), idb_directory_token(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idb_resolve_domain(text), idb_resolve_connection(text), idb_directory_token(text) TO idbroker_app;
