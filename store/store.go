package store

import (
	"context"
	"time"
)

// Cipher seals the secrets the store must be able to read back. Package
// secrets provides the implementation (AES-256-GCM envelope encryption under
// the master key); the store binds each ciphertext to its row through
// additionalData, so a sealed value copied into another row does not open.
type Cipher interface {
	Seal(plaintext, additionalData []byte) ([]byte, error)
	Open(ciphertext, additionalData []byte) ([]byte, error)
}

// Store is everything the rest of idbroker may ask of persistence.
//
// Methods documented as tenant-scoped read the tenant from ctx (WithTenant)
// and fail with ErrNoTenant without one. Global methods act on the vendor's
// own records (tenants registry, applications, operator keys, signing keys,
// events, webhooks). Resolve* methods are the narrow cross-tenant lookups
// that turn a credential into a tenant.
type Store interface {
	// InTx runs fn in one transaction; every store call made with the ctx
	// fn receives joins it. A returned error rolls everything back. Calls
	// inside may switch tenants (an operator creating a tenant and then its
	// domains); each statement runs under the tenant of its own ctx.
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	// ReadTogether runs fn's reads outside a transaction on one reader
	// connection where that saves work (SQLite).
	ReadTogether(ctx context.Context, fn func(ctx context.Context) error) error

	// Tenants. CreateTenant and ListTenants are global; the rest act on the
	// tenant in ctx.
	CreateTenant(ctx context.Context, t Tenant) (Tenant, error)
	ListTenants(ctx context.Context, p Page) ([]Tenant, string, error)
	Tenant(ctx context.Context) (Tenant, error)
	// TenantStatus is the tenant's status alone, read without a row lock
	// even inside InTx.
	TenantStatus(ctx context.Context) (TenantStatus, error)
	// SignInGate is the tenant's status and sign-in policy, read in one
	// statement without a row lock even inside InTx.
	SignInGate(ctx context.Context) (SignInGate, error)
	// Standing reads, in one statement, the tenant's status, one of its
	// connections' status and whether one of its users is active: what a
	// sign-in checks again once its session exists.
	Standing(ctx context.Context, connectionID, userID string) (Standing, error)
	UpdateTenant(ctx context.Context, u TenantUpdate) (Tenant, error)
	// DeleteTenant erases the tenant and every row that belongs to it.
	DeleteTenant(ctx context.Context) error

	// Domains (tenant-scoped). ref is a dom_ id or the domain name.
	AddDomain(ctx context.Context, d Domain) (Domain, error)
	Domains(ctx context.Context) ([]Domain, error)
	Domain(ctx context.Context, ref string) (Domain, error)
	// MarkDomainVerified fails with ErrConflict when another tenant holds
	// the domain verified.
	MarkDomainVerified(ctx context.Context, ref string) (Domain, error)
	DeleteDomain(ctx context.Context, ref string) error
	// ResolveDomain finds the tenant that holds domain verified.
	ResolveDomain(ctx context.Context, domain string) (tenantID string, err error)

	// Applications (global).
	CreateApplication(ctx context.Context, a Application) (Application, error)
	Application(ctx context.Context, id string) (Application, error)
	ListApplications(ctx context.Context, p Page) ([]Application, string, error)
	// UpdateApplication changes the fields u names; see oauth_applications.go.
	UpdateApplication(ctx context.Context, id string, u ApplicationUpdate) (Application, error)
	// RotateApplicationSecret replaces a confidential application's secret
	// hash, keeping the old one for an overlap; see applications.go.
	RotateApplicationSecret(ctx context.Context, id string, hash []byte, overlap time.Duration) (Application, error)
	// EndApplicationSecretOverlap stops the secret a rotation kept.
	EndApplicationSecretOverlap(ctx context.Context, id string) (Application, bool, error)
	DeleteApplication(ctx context.Context, id string) error

	// Connections (tenant-scoped).
	CreateConnection(ctx context.Context, c Connection) (Connection, error)
	Connection(ctx context.Context, id string) (Connection, error)
	Connections(ctx context.Context) ([]Connection, error)
	// TenantConnections is Tenant and Connections in one round trip
	// where the backend can (routing a sign-in).
	TenantConnections(ctx context.Context) (Tenant, []Connection, error)
	// UpdateConnection replaces name, status, config and secrets; a
	// non-zero c.Version must be the stored one (ErrVersionMismatch).
	UpdateConnection(ctx context.Context, c Connection) (Connection, error)
	// DeleteConnection returns the row it deleted; a non-zero ifVersion
	// must be the stored one (ErrVersionMismatch).
	DeleteConnection(ctx context.Context, id string, ifVersion int64) (Connection, error)
	// ResolveConnection finds the tenant of a connection named in a URL
	// (ACS, OIDC callback); the upstream's signature then proves the rest.
	ResolveConnection(ctx context.Context, id string) (tenantID string, err error)

	// Directories (tenant-scoped).
	CreateDirectory(ctx context.Context, d Directory) (Directory, error)
	Directory(ctx context.Context, id string) (Directory, error)
	Directories(ctx context.Context) ([]Directory, error)
	SetDirectoryToken(ctx context.Context, id string, tokenHash []byte) error
	// RotateDirectoryToken replaces the token, keeping the old one for an
	// overlap; see directories.go.
	RotateDirectoryToken(ctx context.Context, id string, tokenHash []byte, overlap time.Duration) (*time.Time, error)
	// EndDirectoryTokenOverlap stops the token a rotation kept.
	EndDirectoryTokenOverlap(ctx context.Context, id string) (bool, error)
	// DeleteDirectory deletes a directory with its groups; its users stay
	// the tenant's, in no directory (see the method).
	DeleteDirectory(ctx context.Context, id string) (Directory, int, error)
	// ResolveDirectory finds the tenant of a directory named in an operator
	// API URL.
	ResolveDirectory(ctx context.Context, id string) (tenantID string, err error)
	// AuthenticateDirectory finds the tenant (and its status) of directory
	// dirID when tokenHash is the hash of its bearer token, compared in
	// constant time, in one round trip (every SCIM request makes it).
	AuthenticateDirectory(ctx context.Context, dirID string, tokenHash []byte) (tenantID string, status TenantStatus, err error)

	// Users (tenant-scoped). One person in one tenant is one usr_ id,
	// whether SCIM provisioned them, SSO created them, or both.
	//
	// CreateUser with a DirectoryID adopts an SSO-created user of the same
	// email (no directory yet) instead of creating a second one.
	CreateUser(ctx context.Context, u User) (User, error)
	// CreateDirectoryUser is CreateUser for a SCIM push: the email is
	// verified exactly when its domain is one the tenant has verified,
	// decided by the INSERT itself (one round trip less than asking
	// Domain first).
	CreateDirectoryUser(ctx context.Context, u User) (User, error)
	// User reads a user; inside InTx it also locks the row until the
	// transaction ends (read-modify-write without a version).
	User(ctx context.Context, id string) (User, error)
	// UpdateUser replaces the user's fields; with ifVersion != 0 it fails
	// with ErrVersionMismatch unless that is the stored version. Version
	// increases by one.
	UpdateUser(ctx context.Context, u User, ifVersion int64) (User, error)
	DeleteUser(ctx context.Context, id string) error
	// FindUsers lists users matching q and counts all matches.
	FindUsers(ctx context.Context, q UserQuery) ([]User, int, error)
	// UpsertSSOUser is the just-in-time step of a login: the user linked to
	// (connectionID, subject); else, when u.EmailVerified, the tenant's
	// user with that email (preferring a SCIM-provisioned one), now
	// linked; else a new user.
	// Profile fields refresh only users that no directory manages. An
	// inactive user is returned as is: the caller refuses the login.
	UpsertSSOUser(ctx context.Context, connectionID, subject string, u User) (User, error)
	// UpsertStableSSOUser is UpsertSSOUser for a connection that keys
	// users by an id their IdP never gives anyone else (Entra ID's tenant
	// and object id; subject starts with key.Scheme). When nothing is
	// linked under subject, the user linked under key.Previous (the key
	// the connection used before) is moved to subject, keeping the user,
	// and that key links no one afterwards. Neither that user nor one found
	// by verified email is taken when they already have a key of
	// key.Scheme on the connection (another person), or key.SamePerson
	// refuses them; a new user is made instead.
	UpsertStableSSOUser(ctx context.Context, connectionID, subject string, key StableSSOKey, u User) (User, error)
	// UserGroupNames lists the display names of the user's groups.
	UserGroupNames(ctx context.Context, userID string) ([]string, error)
	// ResolveUser finds the tenant of a user named by id alone (the
	// operator API's user-scoped calls).
	ResolveUser(ctx context.Context, id string) (tenantID string, err error)

	// Groups (tenant-scoped).
	CreateGroup(ctx context.Context, g Group) (Group, error)
	Group(ctx context.Context, id string) (Group, error)
	UpdateGroup(ctx context.Context, g Group, ifVersion int64) (Group, error)
	DeleteGroup(ctx context.Context, id string) error
	FindGroups(ctx context.Context, q GroupQuery) ([]Group, int, error)
	GroupMembers(ctx context.Context, groupID string, p Page) ([]string, string, error)
	// AddDirectoryMembers and RemoveDirectoryMembers change membership:
	// members must be users of the group's directory, only the named rows
	// are touched (a group's other members are never loaded), each call
	// bumps the group's version, and the ids that actually changed are
	// returned (see scim_members.go).
	AddDirectoryMembers(ctx context.Context, groupID string, userIDs []string) (added []string, err error)
	RemoveDirectoryMembers(ctx context.Context, groupID string, userIDs []string) (removed []string, err error)

	// Signing keys (global).
	CreateSigningKey(ctx context.Context, k SigningKey) (SigningKey, error)
	// SigningKeys lists keys that are active or still overlapping.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	SetSigningKeyStatus(ctx context.Context, id string, status SigningKeyStatus, retireAt *time.Time) error

	// Operator API keys (global).
	CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error)
	// AuthenticateAPIKey returns the unrevoked key whose hash is hash.
	AuthenticateAPIKey(ctx context.Context, hash []byte) (APIKey, error)
	// TouchAPIKey records a key's use, at most once a minute.
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, id string) error

	// Audit (tenant-scoped): append-only, hash-chained per tenant.
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)
	AuditEvents(ctx context.Context, action string, p Page) ([]AuditEvent, string, error)
	// WalkAudit calls fn on every audit row of the tenant in ctx, oldest
	// first, in chain order; `idbroker audit verify` re-hashes them.
	WalkAudit(ctx context.Context, fn func(AuditEvent) error) error

	// Events outbox (global stream). AppendEvent belongs inside the InTx of
	// the change it describes.
	AppendEvent(ctx context.Context, e Event) (Event, error)
	// AppendEvents appends several, in order, in few statements.
	AppendEvents(ctx context.Context, es []Event) ([]Event, error)
	ListEvents(ctx context.Context, p Page) ([]Event, string, error)
	ListEventsMatching(ctx context.Context, f EventFilter, p Page) ([]Event, string, error)

	// Webhooks (global).
	CreateWebhook(ctx context.Context, w Webhook) (Webhook, error)
	Webhooks(ctx context.Context) ([]Webhook, error)
	Webhook(ctx context.Context, id string) (Webhook, error)
	UpdateWebhook(ctx context.Context, id string, u WebhookUpdate) (Webhook, int, error)
	DeleteWebhook(ctx context.Context, id string) (int, error)
	RotateWebhookSecret(ctx context.Context, id, secret string, overlap time.Duration) (Webhook, error)
	DisableFailingWebhook(ctx context.Context, id string, cutoff time.Time) (Webhook, int, error)
	Event(ctx context.Context, id string) (Event, error)
	// Webhook deliveries (global): rows appear with their event; see
	// webhook_deliveries.go.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int, skip ...string) ([]Delivery, error)
	RecordDelivery(ctx context.Context, id string, r DeliveryResult) error
	ReleaseDeliveries(ctx context.Context, now time.Time, ids ...string) error
	ListDeliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, string, error)
	Delivery(ctx context.Context, id string) (Delivery, error)
	RecoverDeliveries(ctx context.Context, webhookID string, since time.Time, batch int) (int, error)
	// Retention: events past it go with their deliveries, then the rows
	// of deleted webhooks nothing names; see retention.go.
	PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error)
	PurgeDeletedWebhooks(ctx context.Context, before time.Time, limit int) (int, error)

	// The self-serve portal's links, sessions, test logins and domain
	// checks; see portal.go.
	PortalStore

	// Usage records; see usage.go.
	UsageStore
	// Service-level measurements; see slo.go.
	SLOStore
	// Deleting, restoring and erasing tenants; see tenant_lifecycle.go.
	LifecycleStore

	// The operator console (operators.go, console_reads.go).
	ConsoleStore

	// The revocation and back-channel logout queues; see revocations.go
	// and logouts.go.
	RevocationStore
	// What outlives the session store's memory; see revocations_kept.go.
	RevocationKeeper

	// The last SCIM errors of each directory; see scim_errors.go.
	SCIMErrorStore
	// The portal's sign-in and audit logs; see logs.go.
	LogStore

	// Operations.
	Ping(ctx context.Context) error
	// QueueStats is what waits in the outbound queues; see queues.go.
	QueueStats(ctx context.Context) (QueueStats, error)
	Migrate(ctx context.Context) error
	MigrationStatus(ctx context.Context) ([]MigrationState, error)
	Close()
}
