-- When an operator's last failed sign-in was: failures older than a day
-- are forgotten, as those of an email that is no operator's are, so the
-- two cannot be told apart by waiting.
ALTER TABLE operators ADD COLUMN last_failure_at timestamptz;
