-- An erase report is the last link of an erased tenant's audit chain and
-- the proof that the tenant is gone: append-only, as the PostgreSQL grants
-- (SELECT, INSERT) make it there and as audit_events and operator_audit
-- are here.
CREATE TRIGGER tenant_erasures_no_update BEFORE UPDATE ON tenant_erasures
BEGIN SELECT RAISE(ABORT, 'tenant_erasures is append-only'); END;
CREATE TRIGGER tenant_erasures_no_delete BEFORE DELETE ON tenant_erasures
BEGIN SELECT RAISE(ABORT, 'tenant_erasures is append-only'); END;
