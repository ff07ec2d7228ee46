package store

import (
	"context"
	"errors"
)

// DB implements Store on PostgreSQL or SQLite.
type DB struct {
	Store // TODO(store): replaced by the real implementation
}

// Open connects to url, "postgres://…" (or "postgresql://…") or
// "sqlite:///path/to/file.db", sealing secrets with c. It does not migrate;
// call Migrate.
func Open(ctx context.Context, url string, c Cipher) (*DB, error) {
	return nil, errors.New("store: not implemented yet")
}
