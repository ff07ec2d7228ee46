-- An application may let the refresh token it just spent answer again for
-- a short window (0 to 60 s; 0, the default, is strict rotation: any spent
-- token presented again ends its family), so that two tabs refreshing at
-- once do not end the user's session. The broker reads it with the
-- application (cached), never on the refresh itself.
ALTER TABLE applications ADD COLUMN refresh_token_reuse_interval_ms BIGINT NOT NULL DEFAULT 0
  CHECK (refresh_token_reuse_interval_ms BETWEEN 0 AND 60000);
