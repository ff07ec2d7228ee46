-- Stored lower-case lookup columns, as on PostgreSQL (see its 0006 for why
-- there); SQLite can only add generated columns as VIRTUAL, which its
-- indexes handle just as well.
ALTER TABLE users ADD COLUMN user_name_lc TEXT GENERATED ALWAYS AS (lower(user_name)) VIRTUAL;
ALTER TABLE users ADD COLUMN email_lc TEXT GENERATED ALWAYS AS (lower(email)) VIRTUAL;
ALTER TABLE groups ADD COLUMN display_name_lc TEXT GENERATED ALWAYS AS (lower(display_name)) VIRTUAL;

DROP INDEX IF EXISTS users_email;
DROP INDEX IF EXISTS users_directory_user_name;
DROP INDEX IF EXISTS groups_display_name;
CREATE INDEX users_email ON users (tenant_id, email_lc);
CREATE INDEX users_directory_user_name ON users (tenant_id, directory_id, user_name_lc);
CREATE INDEX groups_display_name ON groups (tenant_id, directory_id, display_name_lc);
