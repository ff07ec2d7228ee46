package adminportal

import (
	"context"
	"time"

	"github.com/idbroker/idbroker/store"
)

// Store is what the operator API needs of the store. It manages most
// records, so the list is long; what it leaves out (SSO sign-ins, SCIM
// writes, signing keys, webhook delivery) belongs to other surfaces.
type Store interface {
	APIKeys
	InTx(ctx context.Context, fn func(ctx context.Context) error) error

	// Tenants and their domains (tenants.go, domains.go).
	CreateTenant(ctx context.Context, t store.Tenant) (store.Tenant, error)
	ListTenants(ctx context.Context, p store.Page) ([]store.Tenant, string, error)
	Tenant(ctx context.Context) (store.Tenant, error)
	ResolveDomain(ctx context.Context, domain string) (string, error)
	UpdateTenant(ctx context.Context, u store.TenantUpdate) (store.Tenant, error)
	DeleteTenant(ctx context.Context) error
	// RecordRevocation queues, in the transaction of a change that must
	// end sessions (tenant pause and delete, revoke_sessions), the order
	// to end them (see Revoker).
	RecordRevocation(ctx context.Context, r store.Revocation) (store.Revocation, error)
	SoftDeleteTenant(ctx context.Context) (store.Tenant, error)
	RestoreTenant(ctx context.Context) (store.Tenant, error)
	ListTenantsByStatus(ctx context.Context, status store.TenantStatus, p store.Page) ([]store.Tenant, string, error)
	AddDomain(ctx context.Context, d store.Domain) (store.Domain, error)
	Domains(ctx context.Context) ([]store.Domain, error)
	Domain(ctx context.Context, ref string) (store.Domain, error)
	MarkDomainVerified(ctx context.Context, ref string) (store.Domain, error)
	DeleteDomain(ctx context.Context, ref string) error

	// Applications (applications*.go).
	CreateApplication(ctx context.Context, a store.Application) (store.Application, error)
	Application(ctx context.Context, id string) (store.Application, error)
	ListApplications(ctx context.Context, p store.Page) ([]store.Application, string, error)
	UpdateApplication(ctx context.Context, id string, u store.ApplicationUpdate) (store.Application, error)
	RotateApplicationSecret(ctx context.Context, id string, hash []byte, overlap time.Duration) (store.Application, error)
	EndApplicationSecretOverlap(ctx context.Context, id string) (store.Application, bool, error)
	DeleteApplication(ctx context.Context, id string) error

	// Connections (connections.go): the tenant of one named in a URL and
	// reads; changes go through connections.Registry.
	ResolveConnection(ctx context.Context, id string) (tenantID string, err error)
	Connection(ctx context.Context, id string) (store.Connection, error)
	Connections(ctx context.Context) ([]store.Connection, error)

	// Directories and what they provisioned (directories.go, users.go).
	CreateDirectory(ctx context.Context, d store.Directory) (store.Directory, error)
	Directory(ctx context.Context, id string) (store.Directory, error)
	Directories(ctx context.Context) ([]store.Directory, error)
	RotateDirectoryToken(ctx context.Context, id string, tokenHash []byte, overlap time.Duration) (*time.Time, error)
	EndDirectoryTokenOverlap(ctx context.Context, id string) (bool, error)
	DeleteDirectory(ctx context.Context, id string) (store.Directory, int, error)
	ResolveDirectory(ctx context.Context, id string) (tenantID string, err error)
	User(ctx context.Context, id string) (store.User, error)
	FindUsers(ctx context.Context, q store.UserQuery) ([]store.User, int, error)
	UserGroupNames(ctx context.Context, userID string) ([]string, error)
	Group(ctx context.Context, id string) (store.Group, error)
	GroupMembers(ctx context.Context, groupID string, p store.Page) ([]string, string, error)
	ResolveUser(ctx context.Context, id string) (tenantID string, err error)
	DeleteUser(ctx context.Context, id string) error
	FindGroups(ctx context.Context, q store.GroupQuery) ([]store.Group, int, error)

	// Events, webhooks and audit (events.go, webhooks.go, audit*.go).
	AppendEvent(ctx context.Context, e store.Event) (store.Event, error)
	ListEventsMatching(ctx context.Context, f store.EventFilter, p store.Page) ([]store.Event, string, error)
	Event(ctx context.Context, id string) (store.Event, error)
	CreateWebhook(ctx context.Context, w store.Webhook) (store.Webhook, error)
	Webhooks(ctx context.Context) ([]store.Webhook, error)
	Webhook(ctx context.Context, id string) (store.Webhook, error)
	UpdateWebhook(ctx context.Context, id string, u store.WebhookUpdate) (store.Webhook, int, error)
	DeleteWebhook(ctx context.Context, id string) (int, error)
	RotateWebhookSecret(ctx context.Context, id, secret string, overlap time.Duration) (store.Webhook, error)
	ListDeliveries(ctx context.Context, q store.DeliveryQuery) ([]store.Delivery, string, error)
	Delivery(ctx context.Context, id string) (store.Delivery, error)
	RedeliverDelivery(ctx context.Context, id string) (store.Delivery, error)
	RecoverDeliveries(ctx context.Context, webhookID string, since time.Time, batch int) (int, error)
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
	AppendOperatorAudit(ctx context.Context, e store.OperatorAuditEvent) (store.OperatorAuditEvent, error)
	AuditLog(ctx context.Context, q store.LogQuery) (store.LogPage[store.AuditEvent], error)
	OperatorAuditLog(ctx context.Context, q store.LogQuery) (store.LogPage[store.OperatorAuditEvent], error)
}

// APIKeys is what CreateAPIKey needs of the store.
type APIKeys interface {
	CreateAPIKey(ctx context.Context, k store.APIKey) (store.APIKey, error)
	AuthenticateAPIKey(ctx context.Context, hash []byte) (store.APIKey, error)
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
}

// BootstrapStore is what EnsureBootstrapKey needs: the key and its row in
// the operators' trail are written in one transaction.
type BootstrapStore interface {
	APIKeys
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	AppendOperatorAudit(ctx context.Context, e store.OperatorAuditEvent) (store.OperatorAuditEvent, error)
}
