-- A connection is changed by two writers: an admin (operator API, portal)
-- and the maintenance loop (a SAML certificate rollover read from the
-- IdP's metadata). Each update names the version it read and bumps it, so
-- that a writer working from a stale copy re-reads instead of writing its
-- copy over the other's change.
ALTER TABLE connections ADD COLUMN version bigint NOT NULL DEFAULT 1;
