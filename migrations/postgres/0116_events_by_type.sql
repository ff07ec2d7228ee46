-- The event stream read by type: the console's events page ("recent
-- events of this tenant, of this type", or of one type across tenants)
-- and GET /events?events= (with or without tenant_id). With only
-- events_tenant (tenant_id, seq) a rare type — connection.activated among
-- a tenant's millions of sign-ins — was found by walking every event of
-- the tenant newest first, and across tenants by walking the whole
-- stream; a caught-up consumer of GET /events?events=<rare type> paid that
-- walk on every poll. Each index ends with seq, so a page is a range of
-- it, in the stream's order, and reads its own rows. The partial
-- events_signins_type (0071) is ordered by time, not seq, and holds only
-- sign-ins. store.TestPostgresHotPathPlans asserts the plans.
--
-- IF NOT EXISTS: on a large events table an operator builds them
-- CONCURRENTLY beforehand (docs/reference/operations.md, "Upgrading").
CREATE INDEX IF NOT EXISTS events_tenant_type ON events (tenant_id, type, seq);
CREATE INDEX IF NOT EXISTS events_type ON events (type, seq);
