-- The session store counts every revocation it applies (in the Lua script
-- that applies it); applied is the highest count any node has read from
-- it. A session store whose count is lower has lost revocations it had
-- acknowledged, even when it answers from the same server with the same
-- epoch (a managed Redis restored from a snapshot, a RESTOREd key set) or
-- refuses INFO: the nodes replay every kept revocation into it, as they do
-- when its run_id or epoch changes.
ALTER TABLE session_store_epoch ADD COLUMN applied bigint NOT NULL DEFAULT 0;
