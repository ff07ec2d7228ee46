-- See the PostgreSQL migration of the same number.
ALTER TABLE session_store_epoch ADD COLUMN tombstones_checked INTEGER NOT NULL DEFAULT 0;
