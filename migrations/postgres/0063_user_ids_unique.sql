-- A user id names one user across every tenant: the operator API's
-- POST /users/{id}/revoke_sessions finds the tenant from the id alone
-- (idb_resolve_user), so two tenants holding the same id would make that
-- lookup ambiguous. The store mints ids, but it also accepts one from its
-- caller; the index turns a reused id into a conflict instead.
DROP INDEX users_id;
CREATE UNIQUE INDEX users_id ON users (id);
