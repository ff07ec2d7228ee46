-- When an operator's last failed sign-in was; see the PostgreSQL migration.
ALTER TABLE operators ADD COLUMN last_failure_at INTEGER;
