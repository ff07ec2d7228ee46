-- Per-tenant service levels (issue 12): an operator's override of the
-- tenant's sign-in rate limit, in sign-ins per minute. NULL means the
-- default of the tenant's tier (the existing tier column, which the store
-- now limits to the tiers it knows for new values; older free-text tiers
-- are kept and treated as no tier).
ALTER TABLE tenants ADD COLUMN sign_in_per_minute integer CHECK (sign_in_per_minute > 0);
