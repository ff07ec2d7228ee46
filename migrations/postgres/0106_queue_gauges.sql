-- The queue gauges of /metrics (idbroker_revocations_pending and the
-- others, store.QueueStats) read, at every scrape, how many orders wait in
-- each outbound queue and when the oldest was recorded. These indexes make
-- that a bounded index read however long the queue has grown while Redis or
-- a receiver was down. The partial ones hold only the rows still waiting,
-- so the delivered history does not grow them. IF NOT EXISTS: an operator
-- may build them CONCURRENTLY beforehand (docs/reference/operations.md).
CREATE INDEX IF NOT EXISTS revocations_created ON revocations (created_at);
-- The revoker's poll ("is anything pending?", every 250 ms on every node)
-- reads the first order by seq: without this index that is a scan of the
-- whole queue.
CREATE INDEX IF NOT EXISTS revocations_seq ON revocations (seq);
CREATE INDEX IF NOT EXISTS logouts_waiting ON logouts (created_at) WHERE status IN ('pending', 'failed');
CREATE INDEX IF NOT EXISTS deliveries_waiting ON deliveries (created_at) WHERE status IN ('pending', 'failed');
