package broker

import (
	"context"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Store is what the OpenID Provider needs of the store. Applications are
// read through a short-lived cache (apps.go) so that the token and
// introspection endpoints touch no SQL.
type Store interface {
	// Routing a sign-in to its tenant and connection (routing.go), its
	// reads together.
	ReadTogether(ctx context.Context, fn func(ctx context.Context) error) error
	ResolveDomain(ctx context.Context, domain string) (tenantID string, err error)
	ResolveConnection(ctx context.Context, id string) (tenantID string, err error)
	Tenant(ctx context.Context) (store.Tenant, error)
	Connection(ctx context.Context, id string) (store.Connection, error)
	Connections(ctx context.Context) ([]store.Connection, error)
	// TenantConnections is Tenant and Connections together, one round
	// trip on PostgreSQL.
	TenantConnections(ctx context.Context) (store.Tenant, []store.Connection, error)

	// Completing it (complete.go), in one transaction: the tenant's status
	// and sign-in policy (no row lock), the user, just in time, the sign-in's usage records,
	// the user's directory groups and the event.
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	SignInGate(ctx context.Context) (store.SignInGate, error)
	// A completed sign-in's session is checked against changes that
	// raced it (complete.go stillAllowed).
	Standing(ctx context.Context, connectionID, userID string) (store.Standing, error)
	UpsertSSOUser(ctx context.Context, connectionID, subject string, u store.User) (store.User, error)
	UpsertStableSSOUser(ctx context.Context, connectionID, subject string, key store.StableSSOKey, u store.User) (store.User, error)
	UserGroupNames(ctx context.Context, userID string) ([]string, error)
	AppendEvent(ctx context.Context, e store.Event) (store.Event, error)
	// A failed sign-in is also a row of the tenant's audit log.
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)

	// Clients (apps.go).
	Application(ctx context.Context, id string) (store.Application, error)
	ListApplications(ctx context.Context, p store.Page) ([]store.Application, string, error)

	// Token issuance checks the user is still active (active.go).
	User(ctx context.Context, id string) (store.User, error)
	// Ended sessions' back-channel logouts are queued durably (logout.go).
	EnqueueLogouts(ctx context.Context, ls []store.Logout) error
	// A reused code's session is revoked through the revocation queue
	// (tokens.go), when Config.Revoker is set.
	RecordRevocation(ctx context.Context, r store.Revocation) (store.Revocation, error)
	// A sign-out or token revocation that ends its session at once keeps
	// the order all the same (logout.go), for a Redis that rewinds.
	KeepRevocation(ctx context.Context, r store.Revocation) error
}

// Revoker applies revocations recorded with store.RecordRevocation (an
// *events.Revoker). An error means the session store did not acknowledge
// and the revocation stays queued, to be applied as soon as it answers.
type Revoker interface {
	Apply(ctx context.Context, revs ...store.Revocation) ([]sessions.Session, error)
}
