package portal

import (
	"context"
	"time"

	"github.com/idbroker/idbroker/store"
)

// Store is what the portal needs of the store: its own links, sessions,
// test logins and domain checks, and reads (plus a few writes) of the
// tenant's domains, directories, users, groups, events and audit rows.
// Connection changes go through connections.Registry.
type Store interface {
	store.PortalStore
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	Tenant(ctx context.Context) (store.Tenant, error)
	// UpdateTenant sets the tenant's sign-in policy (directories.go).
	UpdateTenant(ctx context.Context, u store.TenantUpdate) (store.Tenant, error)

	Connection(ctx context.Context, id string) (store.Connection, error)
	Connections(ctx context.Context) ([]store.Connection, error)

	AddDomain(ctx context.Context, d store.Domain) (store.Domain, error)
	Domains(ctx context.Context) ([]store.Domain, error)
	Domain(ctx context.Context, ref string) (store.Domain, error)
	MarkDomainVerified(ctx context.Context, ref string) (store.Domain, error)
	DeleteDomain(ctx context.Context, ref string) error

	CreateDirectory(ctx context.Context, d store.Directory) (store.Directory, error)
	Directory(ctx context.Context, id string) (store.Directory, error)
	Directories(ctx context.Context) ([]store.Directory, error)
	RotateDirectoryToken(ctx context.Context, id string, tokenHash []byte, overlap time.Duration) (*time.Time, error)
	FindUsers(ctx context.Context, q store.UserQuery) ([]store.User, int, error)
	FindGroups(ctx context.Context, q store.GroupQuery) ([]store.Group, int, error)
	SCIMErrors(ctx context.Context, directoryID string) ([]store.SCIMError, error)

	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
	AuditEvents(ctx context.Context, action string, p store.Page) ([]store.AuditEvent, string, error)
	SignInLog(ctx context.Context, q store.LogQuery) (store.LogPage[store.Event], error)
	AuditLog(ctx context.Context, q store.LogQuery) (store.LogPage[store.AuditEvent], error)
}
