package scim

import (
	"context"

	"github.com/idbroker/idbroker/store"
)

// Store is what the SCIM server needs of the store: a directory's bearer
// token, its users and groups, and the events outbox, in one transaction
// per request.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	AuthenticateDirectory(ctx context.Context, dirID string, tokenHash []byte) (tenantID string, status store.TenantStatus, err error)
	Domain(ctx context.Context, ref string) (store.Domain, error)

	// CreateDirectoryUser also decides EmailVerified: true when the
	// email's domain is one the tenant has verified.
	CreateDirectoryUser(ctx context.Context, u store.User) (store.User, error)
	User(ctx context.Context, id string) (store.User, error)
	UpdateUser(ctx context.Context, u store.User, ifVersion int64) (store.User, error)
	DeleteUser(ctx context.Context, id string) error
	FindUsers(ctx context.Context, q store.UserQuery) ([]store.User, int, error)
	UserGroupNames(ctx context.Context, userID string) ([]string, error)

	CreateGroup(ctx context.Context, g store.Group) (store.Group, error)
	Group(ctx context.Context, id string) (store.Group, error)
	UpdateGroup(ctx context.Context, g store.Group, ifVersion int64) (store.Group, error)
	DeleteGroup(ctx context.Context, id string) error
	FindGroups(ctx context.Context, q store.GroupQuery) ([]store.Group, int, error)
	GroupMembers(ctx context.Context, groupID string, p store.Page) ([]string, string, error)
	AddDirectoryMembers(ctx context.Context, groupID string, userIDs []string) (added []string, err error)
	RemoveDirectoryMembers(ctx context.Context, groupID string, userIDs []string) (removed []string, err error)

	AppendEvent(ctx context.Context, e store.Event) (store.Event, error)
	AppendEvents(ctx context.Context, es []store.Event) ([]store.Event, error)
	// RecordRevocation queues, in the deprovisioning's transaction, the
	// order to end the user's sessions (see Revoker).
	RecordRevocation(ctx context.Context, r store.Revocation) (store.Revocation, error)
	// RecordSCIMError keeps a failed request's answer for the portal.
	RecordSCIMError(ctx context.Context, e store.SCIMError) error
}
