package store

import (
	"context"
	"crypto/subtle"
	"errors"
	"sync/atomic"
)

// ErrCredentialStale means the directory credential a context carries
// (WithDirectoryCredential) no longer opens its tenant for writes: the
// token was rotated, the directory deleted, or the tenant is not live.
// Nothing of the operation that returned it was kept.
var ErrCredentialStale = errors.New("store: directory credential no longer valid")

// credentialCode is the SQLSTATE idb_directory_check (migration 0085)
// raises; classify turns it into ErrCredentialStale.
const credentialCode = "IDB01"

// pgCheckCredential fails the transaction unless directory $1's token hash
// is $2 (or its previous token's during a rotation's overlap: 0105), it
// belongs to app.tenant_id and that tenant is live.
const pgCheckCredential = "SELECT idb_directory_check2($1, $2)"

type credentialKey struct{}

// credential is a directory token a surface has not checked against the
// database for this request: it remembered the tenant the token opened
// before, and the store checks it in the request's first round trip.
type credential struct {
	dir     string
	hash    []byte
	checked atomic.Bool
}

// WithDirectoryCredential returns a context whose tenant (WithTenant) is a
// guess that directory dirID's token, hashed as tokenHash, still opens for
// writes. Until a check passes, every tenant-scoped operation under it
// checks the credential before reading or writing anything: on PostgreSQL
// inside its transaction's first round trip (see ChecksCredentialInTx),
// elsewhere by the full lookup first. A failed check is ErrCredentialStale.
func WithDirectoryCredential(ctx context.Context, dirID string, tokenHash []byte) context.Context {
	return context.WithValue(ctx, credentialKey{}, &credential{dir: dirID, hash: tokenHash})
}

// CredentialChecked reports whether ctx carries no directory credential or
// one a check has passed: what was done under it was the tenant's.
func CredentialChecked(ctx context.Context) bool {
	c := uncheckedCredential(ctx)
	return c == nil
}

// MarkCredentialChecked records that the caller checked ctx's credential
// itself (the full lookup): operations under it carry no further check.
func MarkCredentialChecked(ctx context.Context) {
	if c, _ := ctx.Value(credentialKey{}).(*credential); c != nil {
		c.checked.Store(true)
	}
}

func uncheckedCredential(ctx context.Context) *credential {
	c, _ := ctx.Value(credentialKey{}).(*credential)
	if c == nil || c.checked.Load() {
		return nil
	}
	return c
}

// ChecksCredentialInTx reports whether an unchecked credential costs no
// round trip of its own: PostgreSQL sends the check with a transaction's
// first statement. Elsewhere (SQLite, in process) the check is the full
// lookup, which costs what authenticating first would.
func (db *DB) ChecksCredentialInTx() bool {
	_, ok := db.d.(*postgres)
	return ok
}

// ensureCredential checks ctx's unchecked credential with the full lookup,
// for a path that cannot carry the check in its own round trip.
func (db *DB) ensureCredential(ctx context.Context) error {
	c := uncheckedCredential(ctx)
	if c == nil {
		return nil
	}
	tenantID, err := requireTenant(ctx)
	if err != nil {
		return err
	}
	// The lookup itself must not check the credential again.
	got, status, err := db.AuthenticateDirectory(context.WithValue(ctx, credentialKey{}, (*credential)(nil)), c.dir, c.hash)
	if errors.Is(err, ErrNotFound) {
		return ErrCredentialStale
	}
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(tenantID)) != 1 || !status.Live() {
		return ErrCredentialStale
	}
	c.checked.Store(true)
	return nil
}
