-- An erase report is the last link of an erased tenant's audit chain and
-- the proof that the tenant is gone. The application role may only read
-- and insert it (0046's grants); SQLite's 0076 adds the triggers that
-- make it append-only there too. Say so where a DBA looks.
COMMENT ON TABLE tenant_erasures IS 'Erase reports: append-only (idbroker_app has SELECT and INSERT only). Each is the last row of an erased tenant''s audit chain; "idbroker audit verify" checks its hash.';
