-- Tenant lifecycle (issue 12): trial → active → past_due → paused →
-- cancelled → deleted. A deleted tenant is out of service but restorable
-- until its erasure; status_before_delete is what a restore returns to.
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
  CHECK (status IN ('trial', 'active', 'past_due', 'paused', 'cancelled', 'deleted'));
ALTER TABLE tenants ADD COLUMN deleted_at timestamptz;
ALTER TABLE tenants ADD COLUMN status_before_delete text NOT NULL DEFAULT '';
-- The erase job looks for tenants deleted long enough ago.
CREATE INDEX tenants_deleted_at ON tenants (deleted_at) WHERE status = 'deleted';

-- What is kept of an erased tenant: its erase report, the last row of its
-- audit chain (prev_hash continues the erased chain, hash seals the report),
-- outside every erased table. It names the tenant's id and nothing else of
-- it. Global, like events: the vendor's own record.
CREATE TABLE tenant_erasures (
  erased_tenant  text PRIMARY KEY,
  audit_id       text NOT NULL UNIQUE,
  seq            bigint NOT NULL,
  actor          jsonb NOT NULL,
  action         text NOT NULL,
  resource       jsonb NOT NULL,
  context        jsonb NOT NULL,
  request_id     text NOT NULL DEFAULT '',
  ts             timestamptz NOT NULL,
  prev_hash      text NOT NULL,
  hash           text NOT NULL
);
GRANT SELECT, INSERT ON tenant_erasures TO idbroker_app;
