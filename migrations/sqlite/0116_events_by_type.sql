-- The event stream read by type: see the PostgreSQL migration of the same
-- number. store.TestSQLiteHotPathPlans asserts the plans.
CREATE INDEX events_tenant_type ON events (tenant_id, type, seq);
CREATE INDEX events_type ON events (type, seq);
