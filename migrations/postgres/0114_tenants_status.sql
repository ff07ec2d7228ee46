-- The operator API's GET /tenants?status= and the console's tenant list of
-- one status page in id order. Without this index a page of the few paused
-- or cancelled tenants among thousands read every tenant (PostgreSQL
-- sorted all the matches; SQLite walked the primary key past every other
-- tenant); with it a page reads its own rows.
CREATE INDEX tenants_status ON tenants (status, id);
