package store

import "context"

// ResolveUser returns the tenant of user id. It serves the operator API,
// whose user-scoped calls name a user but no tenant; the caller then acts
// under that tenant with WithTenant like any other surface. Unknown and
// malformed ids are ErrNotFound.
func (db *DB) ResolveUser(ctx context.Context, id string) (string, error) {
	if !HasPrefix(id, PrefixUser) {
		return "", ErrNotFound
	}
	query := "SELECT tenant_id FROM users WHERE id = $1"
	if db.d.name() == "postgres" {
		// Row-level security hides every tenant's users from a query made
		// without a tenant; the SECURITY DEFINER function of migration 0003
		// reads the one column needed.
		query = "SELECT idb_resolve_user($1)"
	}
	return db.resolveOne(ctx, "resolve user", query, id)
}
