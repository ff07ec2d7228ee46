package store

import "context"

// ResolveDirectory finds the tenant of a directory named in an operator API
// URL (/directories/{id}); the caller's operator key is what authorises
// acting on it. It returns the id and nothing else of the row.
func (db *DB) ResolveDirectory(ctx context.Context, id string) (string, error) {
	if !HasPrefix(id, PrefixDirectory) {
		return "", ErrNotFound
	}
	query := "SELECT tenant_id FROM directories WHERE id = $1"
	if db.d.rowSecurity() {
		// Row-level security hides other tenants' rows from the app role;
		// the SECURITY DEFINER function of migration 0005 sees them all.
		query = "SELECT idb_resolve_directory($1)"
	}
	return db.resolveOne(ctx, "resolve directory", query, id)
}
