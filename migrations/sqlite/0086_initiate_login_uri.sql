-- See the PostgreSQL migration of the same number.
ALTER TABLE applications ADD COLUMN initiate_login_uri TEXT NOT NULL DEFAULT '';
