-- Client secret rotation with an overlap: the hash of the secret a rotation
-- replaced stays valid at the token, introspection and revocation
-- endpoints until previous_secret_expires_at, so that the application can
-- deploy the new secret without a window in which neither works.
ALTER TABLE applications ADD COLUMN previous_secret_hash bytea;
ALTER TABLE applications ADD COLUMN previous_secret_expires_at timestamptz;
