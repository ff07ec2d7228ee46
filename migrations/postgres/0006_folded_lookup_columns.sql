-- Case-insensitive lookups (SCIM userName, emails, group displayName) get
-- stored lower-case columns with plain indexes.
--
-- Why not indexes on lower(col): under row-level security PostgreSQL will
-- not evaluate a non-leakproof function such as lower() on a row before
-- the policy has admitted it, so a qual like lower(user_name) = $1 cannot
-- use an expression index and a 100,000-user directory is scanned whole.
-- Comparing a stored column with = is leakproof, and indexable.
ALTER TABLE users ADD COLUMN user_name_lc text GENERATED ALWAYS AS (lower(user_name)) STORED;
ALTER TABLE users ADD COLUMN email_lc text GENERATED ALWAYS AS (lower(email)) STORED;
ALTER TABLE groups ADD COLUMN display_name_lc text GENERATED ALWAYS AS (lower(display_name)) STORED;

DROP INDEX IF EXISTS users_email;
DROP INDEX IF EXISTS users_directory_user_name;
DROP INDEX IF EXISTS groups_display_name;
CREATE INDEX users_email ON users (tenant_id, email_lc);
CREATE INDEX users_directory_user_name ON users (tenant_id, directory_id, user_name_lc);
CREATE INDEX groups_display_name ON groups (tenant_id, directory_id, display_name_lc);
