-- See the PostgreSQL migration of the same number.
ALTER TABLE applications ADD COLUMN previous_secret_hash BLOB;
ALTER TABLE applications ADD COLUMN previous_secret_expires_at INTEGER;
