package store

import "errors"

// Sentinel errors; each surface maps them to its own status codes once.
var (
	// ErrNoTenant means a tenant-scoped call ran without WithTenant. It is a
	// programming error, never a user error, and it fails before any SQL runs.
	ErrNoTenant = errors.New("store: no tenant in context")
	// ErrNotFound is returned for a missing record, including one that exists
	// under another tenant: the two are indistinguishable by design.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict is a uniqueness violation (a verified domain claimed by
	// another tenant, a duplicate name).
	ErrConflict = errors.New("store: conflict")
	// ErrInvalid is a value the store refuses to write (unknown status, empty
	// required field).
	ErrInvalid = errors.New("store: invalid value")
	// ErrVersionMismatch is an update whose expected version (a SCIM
	// If-Match ETag) is no longer the stored one.
	ErrVersionMismatch = errors.New("store: version mismatch")
	// ErrUnavailable is a database that cannot be reached or dropped the
	// connection (refused, reset, shutting down, too many connections): a
	// dependency outage, which surfaces answer 503 with Retry-After rather
	// than 500.
	ErrUnavailable = errors.New("store: database unavailable")
)
