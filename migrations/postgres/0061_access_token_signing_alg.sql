-- An application may sign its access tokens with ES256 while its id_tokens
-- stay RS256 (what most relying parties verify): an RSA-2048 signature
-- costs ~25 times an ES256 one, and access tokens are minted at every
-- login and refresh. '' means the id_token's algorithm, as before.
ALTER TABLE applications ADD COLUMN access_token_signing_alg text NOT NULL DEFAULT ''
  CHECK (access_token_signing_alg IN ('', 'RS256', 'ES256'));
