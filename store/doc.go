// Package store is idbroker's tenant-scoped persistence.
//
// Every tenant-owned record is reached through a context that carries the
// tenant (WithTenant); a call without one fails with ErrNoTenant before any
// SQL runs. The same repository code runs on two dialects: PostgreSQL (pgx
// pool, Row-Level Security forced on every tenant table, queries run as the
// non-owner role idbroker_app with app.tenant_id set per transaction) and
// embedded SQLite (modernc.org/sqlite, WAL, one writer) for the default
// single-node deployment. The conformance suite in store/storetest runs
// against both.
//
// A few lookups must find a tenant before one is known: a verified email
// domain while routing a login, a SCIM bearer token, a connection named in an
// ACS URL. They are the Resolve* methods; each returns only the tenant id (and
// the record id) and on PostgreSQL runs through a SECURITY DEFINER function,
// so the application role never reads another tenant's rows.
//
// Secrets are never stored in the clear: API keys, client secrets, SCIM and
// portal tokens arrive here already hashed (see package secrets), and the
// few secrets that must be recovered (signing keys, IdP client secrets,
// webhook secrets) are sealed with the Cipher given to Open, bound to the row
// they belong to.
package store
