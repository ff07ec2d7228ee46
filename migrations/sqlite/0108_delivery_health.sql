-- See the PostgreSQL migration of the same number.
ALTER TABLE deliveries ADD COLUMN retry_from INTEGER;
ALTER TABLE deliveries ADD COLUMN retry_base INTEGER NOT NULL DEFAULT 0;
ALTER TABLE logouts ADD COLUMN retry_from INTEGER;
ALTER TABLE logouts ADD COLUMN retry_base INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN failing_since INTEGER;
ALTER TABLE webhooks ADD COLUMN last_failure_at INTEGER;
ALTER TABLE webhooks ADD COLUMN last_failure TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN disabled_at INTEGER;
