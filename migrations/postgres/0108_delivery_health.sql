-- Redelivery with a retry window of its own, and webhooks disabled after
-- days of nothing but failures.
--
-- retry_from and retry_base: a redelivery (console or API) starts a new
-- retry window at retry_from, with the backoff counted from the attempts
-- made before it (retry_base), so that a dead letter redelivered once the
-- receiver is fixed is retried as a new delivery would be, not given a
-- single attempt. NULL and 0 on rows never redelivered: the window starts
-- with the event (the logout).
ALTER TABLE deliveries ADD COLUMN retry_from timestamptz;
ALTER TABLE deliveries ADD COLUMN retry_base integer NOT NULL DEFAULT 0;
ALTER TABLE logouts ADD COLUMN retry_from timestamptz;
ALTER TABLE logouts ADD COLUMN retry_base integer NOT NULL DEFAULT 0;
-- failing_since is the first failed attempt since the webhook's last
-- success (NULL while it succeeds), last_failure_at and last_failure the
-- latest one; a webhook failing for longer than the dispatcher's limit is
-- disabled with disabled_reason 'failing' at disabled_at. An operator's
-- own disabling leaves disabled_reason ''.
ALTER TABLE webhooks ADD COLUMN failing_since timestamptz;
ALTER TABLE webhooks ADD COLUMN last_failure_at timestamptz;
ALTER TABLE webhooks ADD COLUMN last_failure text NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN disabled_reason text NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN disabled_at timestamptz;
