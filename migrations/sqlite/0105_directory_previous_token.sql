-- See the PostgreSQL migration of the same number. SQLite has no row
-- security: the store reads and compares the columns itself.
ALTER TABLE directories ADD COLUMN previous_token_hash BLOB;
ALTER TABLE directories ADD COLUMN previous_token_expires_at INTEGER;
