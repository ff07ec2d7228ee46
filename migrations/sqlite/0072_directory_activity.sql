-- A directory's own recent SCIM changes: see the PostgreSQL migration of
-- the same number. store.TestSQLiteHotPathPlans asserts the plan.
CREATE INDEX events_dsync_directory ON events (tenant_id, json_extract(data, '$.directory_id'), seq)
  WHERE type LIKE 'dsync.%';
