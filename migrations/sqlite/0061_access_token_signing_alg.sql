-- See the PostgreSQL migration of the same number.
ALTER TABLE applications ADD COLUMN access_token_signing_alg TEXT NOT NULL DEFAULT ''
  CHECK (access_token_signing_alg IN ('', 'RS256', 'ES256'));
