-- Per-tenant service levels (issue 12); see the PostgreSQL migration of the
-- same number.
ALTER TABLE tenants ADD COLUMN sign_in_per_minute INTEGER CHECK (sign_in_per_minute > 0);
