-- The same lookup indexes as on SQLite (see its migration 0060): each
-- lookup's equality columns followed by id, which answers "… ORDER BY id
-- LIMIT n" without a sort. PostgreSQL with statistics already chose the
-- lookup indexes and sorted the few matches; what it lacked was an index
-- for a group's externalId (Okta looks groups up by it), which was a
-- sequential scan of every group. store.TestPostgresHotPathPlans asserts
-- the plans.

-- Email: SSO adoption by a directory (directory_id IS NULL is an equality
-- for the index), SCIM emails filters, and the login's match by email.
DROP INDEX IF EXISTS users_email;
CREATE INDEX users_email ON users (tenant_id, email_lc, directory_id, id);

DROP INDEX IF EXISTS users_directory_user_name;
CREATE INDEX users_directory_user_name ON users (tenant_id, directory_id, user_name_lc, id);

DROP INDEX IF EXISTS users_external_id;
CREATE INDEX users_external_id ON users (tenant_id, directory_id, external_id, id);

DROP INDEX IF EXISTS groups_display_name;
CREATE INDEX groups_display_name ON groups (tenant_id, directory_id, display_name_lc, id);
CREATE INDEX groups_external_id ON groups (tenant_id, directory_id, external_id, id);

-- A user's groups at login: covering, so the lookup never reads the table.
DROP INDEX IF EXISTS group_members_user;
CREATE INDEX group_members_user ON group_members (tenant_id, user_id, group_id);
