-- A directory's page in the portal lists its own recent SCIM changes (its
-- dsync.* events). Picked out of the tenant's newest events, a busy
-- sibling directory could hide a quiet one's entirely; this partial index
-- reads one directory's events newest first, however busy the others.
-- Queries repeat the predicate and the expression word for word.
-- store.TestPostgresHotPathPlans asserts the plan. IF NOT EXISTS: an
-- operator may build it CONCURRENTLY beforehand (docs/reference/
-- operations.md, "Upgrading").
CREATE INDEX IF NOT EXISTS events_dsync_directory ON events (tenant_id, (data->>'directory_id'), seq)
  WHERE type LIKE 'dsync.%';
