-- The session store's count of applied revocations, as the nodes last read
-- it; see the PostgreSQL migration of the same number.
ALTER TABLE session_store_epoch ADD COLUMN applied INTEGER NOT NULL DEFAULT 0;
