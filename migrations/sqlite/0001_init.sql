-- idbroker schema, SQLite (the embedded single-node default).
--
-- Same tables and columns as the PostgreSQL schema. SQLite has no row-level
-- security: isolation rests on the store adding tenant_id to every
-- statement, which the shared repository code does for both dialects.
-- Times are stored as integer microseconds since the epoch (UTC), booleans
-- as 0/1, JSON as text.

CREATE TABLE tenants (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('active', 'trial', 'paused')),
  tier        TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE domains (
  tenant_id           TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id                  TEXT NOT NULL,
  domain              TEXT NOT NULL,
  verified            INTEGER NOT NULL DEFAULT 0,
  verification_token  TEXT NOT NULL,
  verified_at         INTEGER,
  created_at          INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, domain)
) STRICT;
CREATE UNIQUE INDEX domains_verified_domain ON domains (domain) WHERE verified;

CREATE TABLE applications (
  id                         TEXT PRIMARY KEY,
  name                       TEXT NOT NULL,
  secret_hash                BLOB,
  public                     INTEGER NOT NULL DEFAULT 0,
  redirect_uris              TEXT NOT NULL,
  post_logout_redirect_uris  TEXT NOT NULL,
  backchannel_logout_uri     TEXT NOT NULL DEFAULT '',
  id_token_signing_alg       TEXT NOT NULL DEFAULT 'RS256',
  access_token_ttl_ms        INTEGER NOT NULL DEFAULT 0,
  id_token_ttl_ms            INTEGER NOT NULL DEFAULT 0,
  refresh_token_ttl_ms       INTEGER NOT NULL DEFAULT 0,
  created_at                 INTEGER NOT NULL,
  updated_at                 INTEGER NOT NULL
) STRICT;

CREATE TABLE connections (
  tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id          TEXT NOT NULL,
  type        TEXT NOT NULL CHECK (type IN ('saml', 'oidc')),
  name        TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('draft', 'active', 'inactive')),
  config      TEXT NOT NULL,
  secrets     BLOB,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE UNIQUE INDEX connections_id ON connections (id);

CREATE TABLE directories (
  tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id          TEXT NOT NULL,
  name        TEXT NOT NULL,
  token_hash  BLOB NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE UNIQUE INDEX directories_id ON directories (id);

CREATE TABLE users (
  tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id              TEXT NOT NULL,
  directory_id    TEXT,
  external_id     TEXT NOT NULL DEFAULT '',
  user_name       TEXT NOT NULL DEFAULT '',
  email           TEXT NOT NULL DEFAULT '',
  email_verified  INTEGER NOT NULL DEFAULT 0,
  given_name      TEXT NOT NULL DEFAULT '',
  family_name     TEXT NOT NULL DEFAULT '',
  display_name    TEXT NOT NULL DEFAULT '',
  active          INTEGER NOT NULL DEFAULT 1,
  attributes      TEXT NOT NULL DEFAULT '{}',
  version         INTEGER NOT NULL DEFAULT 1,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, directory_id) REFERENCES directories (tenant_id, id) ON DELETE SET NULL
) STRICT;
CREATE INDEX users_email ON users (tenant_id, lower(email));
-- SCIM userName is unique within a directory (409 uniqueness).
CREATE UNIQUE INDEX users_user_name ON users (tenant_id, directory_id, lower(user_name)) WHERE directory_id IS NOT NULL AND user_name <> '';
CREATE INDEX users_external_id ON users (tenant_id, directory_id, external_id);

CREATE TABLE user_identities (
  tenant_id      TEXT NOT NULL,
  connection_id  TEXT NOT NULL,
  idp_subject    TEXT NOT NULL,
  user_id        TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, connection_id, idp_subject),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX user_identities_user ON user_identities (tenant_id, user_id);

CREATE TABLE groups (
  tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id            TEXT NOT NULL,
  directory_id  TEXT NOT NULL,
  external_id   TEXT NOT NULL DEFAULT '',
  display_name  TEXT NOT NULL,
  attributes    TEXT NOT NULL DEFAULT '{}',
  version       INTEGER NOT NULL DEFAULT 1,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, directory_id) REFERENCES directories (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX groups_display_name ON groups (tenant_id, directory_id, lower(display_name));

CREATE TABLE group_members (
  tenant_id  TEXT NOT NULL,
  group_id   TEXT NOT NULL,
  user_id    TEXT NOT NULL,
  PRIMARY KEY (tenant_id, group_id, user_id),
  FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX group_members_user ON group_members (tenant_id, user_id);

CREATE TABLE signing_keys (
  id           TEXT PRIMARY KEY,
  alg          TEXT NOT NULL CHECK (alg IN ('RS256', 'ES256')),
  status       TEXT NOT NULL CHECK (status IN ('active', 'overlap', 'retired')),
  private_key  BLOB NOT NULL,
  created_at   INTEGER NOT NULL,
  retire_at    INTEGER
) STRICT;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE status = 'active';

CREATE TABLE api_keys (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  hash          BLOB NOT NULL UNIQUE,
  prefix        TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  last_used_at  INTEGER,
  revoked_at    INTEGER
) STRICT;

CREATE TABLE portal_links (
  tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id          TEXT NOT NULL,
  intent      TEXT NOT NULL CHECK (intent IN ('sso', 'dsync', 'domain_verification', 'audit_logs')),
  token_hash  BLOB NOT NULL,
  return_url  TEXT NOT NULL DEFAULT '',
  expires_at  INTEGER NOT NULL,
  used_at     INTEGER,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE UNIQUE INDEX portal_links_token ON portal_links (token_hash);

CREATE TABLE audit_events (
  tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  id          TEXT NOT NULL,
  actor       TEXT NOT NULL,
  action      TEXT NOT NULL,
  resource    TEXT NOT NULL,
  context     TEXT NOT NULL DEFAULT '{}',
  request_id  TEXT NOT NULL DEFAULT '',
  ts          INTEGER NOT NULL,
  prev_hash   TEXT NOT NULL,
  hash        TEXT NOT NULL,
  PRIMARY KEY (tenant_id, seq),
  UNIQUE (tenant_id, id)
) STRICT;
CREATE INDEX audit_events_action ON audit_events (tenant_id, action, seq);
-- Append-only, as the PostgreSQL grants make it there.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

CREATE TABLE events (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  id          TEXT NOT NULL UNIQUE,
  tenant_id   TEXT REFERENCES tenants (id) ON DELETE CASCADE,
  type        TEXT NOT NULL,
  data        TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);
CREATE INDEX events_tenant ON events (tenant_id, seq);

CREATE TABLE webhooks (
  id          TEXT PRIMARY KEY,
  url         TEXT NOT NULL,
  events      TEXT NOT NULL,
  secret      BLOB NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;
