-- See the PostgreSQL migration of the same number.
CREATE INDEX deliveries_dead ON deliveries (webhook_id, seq) WHERE status = 'dead';
