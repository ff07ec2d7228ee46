-- Who may sign in to the tenant: 'any' (an unknown subject becomes a new
-- user just in time, as before) or 'directory_users' (only users one of
-- the tenant's directories provisioned). Read by the sign-in's own
-- tenant gate (broker.provision), in the same statement as the status.
ALTER TABLE tenants ADD COLUMN sign_in_policy TEXT NOT NULL DEFAULT 'any'
    CHECK (sign_in_policy IN ('any', 'directory_users'));
