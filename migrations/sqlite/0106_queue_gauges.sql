-- See the PostgreSQL migration of the same number. seq is the rowid here,
-- so the revoker's poll needs no index of its own.
CREATE INDEX revocations_created ON revocations (created_at);
CREATE INDEX logouts_waiting ON logouts (created_at) WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_waiting ON deliveries (created_at) WHERE status IN ('pending', 'failed');
