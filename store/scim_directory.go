package store

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"
)

// ErrWrongDirectoryToken is the ErrNotFound of AuthenticateDirectory for a
// directory that exists, with a token that is not its own. SCIM counts
// such refusals per directory and all others (unknown ids) together, so
// that made-up ids cannot each open a budget of their own; the answer to
// the caller does not tell the two apart.
var ErrWrongDirectoryToken = fmt.Errorf("%w (wrong directory token)", ErrNotFound)

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

// AuthenticateDirectory is ResolveDirectoryToken and the tenant's status in
// one round trip: SCIM authenticates every request, and a paused tenant's
// directory must stop at once, so neither is cached as such (a node may
// remember the answer as a guess that a write then checks in its own
// first round trip: WithDirectoryCredential). The token hash is
// compared in constant time after the indexed lookup; a wrong token, an
// unknown or malformed directory id are all ErrNotFound, a wrong token
// of an existing directory ErrWrongDirectoryToken in particular.
func (db *DB) AuthenticateDirectory(ctx context.Context, dirID string, tokenHash []byte) (string, TenantStatus, error) {
	if !HasPrefix(dirID, PrefixDirectory) || len(tokenHash) == 0 {
		return "", "", ErrNotFound
	}
	query := `SELECT d.tenant_id, d.token_hash, t.status, d.previous_token_hash, d.previous_token_expires_at
		FROM directories d JOIN tenants t ON t.id = d.tenant_id WHERE d.id = $1`
	if db.d.rowSecurity() {
		// Row security hides other tenants' directories from the app role;
		// the SECURITY DEFINER function of migration 0083 reads the row and
		// its tenant's status, PL/pgSQL so that its plan is kept for the
		// session rather than made again per request. An unknown id is a
		// row of NULLs.
		// idb_directory_auth2 (0105) adds the previous token of a rotation.
		query = `SELECT tenant_id, token_hash, status, previous_token_hash, previous_token_expires_at
			FROM idb_directory_auth2($1) WHERE tenant_id IS NOT NULL`
	}
	var (
		tenantID string
		stored   []byte
		status   string
		prev     []byte
		prevExp  *time.Time
	)
	err := db.global(ctx, false, func(q querier) error {
		return q.queryRow(ctx, query, dirID).Scan(&tenantID, &stored, &status, &prev, nullTimeDest{&prevExp})
	})
	if err != nil {
		return "", "", db.wrap("authenticate directory", err)
	}
	if TenantStatus(status) == TenantDeleted {
		return "", "", ErrNotFound
	}
	current := subtle.ConstantTimeCompare(stored, tokenHash) == 1
	previous := len(prev) > 0 && subtle.ConstantTimeCompare(prev, tokenHash) == 1 &&
		prevExp != nil && db.now().Before(*prevExp)
	if !current && !previous {
		return "", "", ErrWrongDirectoryToken
	}
	return tenantID, TenantStatus(status), nil
}
