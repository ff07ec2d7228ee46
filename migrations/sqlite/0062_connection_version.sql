-- See the PostgreSQL migration of the same number.
ALTER TABLE connections ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
