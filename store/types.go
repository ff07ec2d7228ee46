package store

import (
	"encoding/json"
	"time"
)

// TenantStatus is a tenant's lifecycle state.
type TenantStatus string

// The lifecycle runs trial → active → past_due → paused → cancelled →
// deleted; see package adminportal for the transitions allowed.
const (
	TenantTrial     TenantStatus = "trial"
	TenantActive    TenantStatus = "active"
	TenantPastDue   TenantStatus = "past_due"
	TenantPaused    TenantStatus = "paused"
	TenantCancelled TenantStatus = "cancelled"
	// TenantDeleted is out of service and restorable until erased. Only
	// DeleteTenant and RestoreTenant enter and leave it.
	TenantDeleted TenantStatus = "deleted"
)

// Valid reports whether s is a status the store accepts.
func (s TenantStatus) Valid() bool {
	switch s {
	case TenantTrial, TenantActive, TenantPastDue, TenantPaused, TenantCancelled, TenantDeleted:
		return true
	}
	return false
}

// Live reports whether logins and SCIM are served for the tenant. A tenant
// past due keeps its service while the vendor collects.
func (s TenantStatus) Live() bool {
	return s == TenantActive || s == TenantTrial || s == TenantPastDue
}

// Tenant is one customer organisation of the SaaS vendor. The tenants table
// is the registry itself, so it is global (not row-level secured); every
// table holding a tenant's data references it and is.
type Tenant struct {
	ID     string
	Name   string
	Status TenantStatus
	// Tier is the service tier sold to the tenant (TierFree, TierGrowth,
	// TierEnterprise), or "" for none. It sets the tenant's service-level
	// targets and default rate limits (packages slo and ratelimit).
	Tier      string
	CreatedAt time.Time
	UpdatedAt time.Time
	// DeletedAt is when a deleted tenant was deleted; its erasure follows.
	DeletedAt *time.Time
	// SignInPerMinute is an operator's override of the tenant's sign-in
	// rate limit; 0 means its tier's default.
	SignInPerMinute int
	// SignInPolicy is who may sign in: anyone the tenant's IdPs vouch
	// for (SignInAny, "" read as it) or only its directories' users.
	SignInPolicy SignInPolicy
}

// SignInPolicy says whom a tenant's sign-ins may be: a subject no user
// has yet makes one just in time under SignInAny; under
// SignInDirectoryUsers only a user one of the tenant's directories
// provisioned signs in, and anyone else the IdP lets through is refused.
type SignInPolicy string

// The sign-in policies.
const (
	SignInAny            SignInPolicy = "any"
	SignInDirectoryUsers SignInPolicy = "directory_users"
)

// Valid reports whether p is a policy the store accepts.
func (p SignInPolicy) Valid() bool { return p == SignInAny || p == SignInDirectoryUsers }

// SignInGate is what a sign-in reads of its tenant, in one statement, in
// the transaction that provisions its user.
type SignInGate struct {
	Status TenantStatus
	Policy SignInPolicy
}

// Service tiers. Tenants created before tiers were checked may carry
// another value, which is treated as no tier.
const (
	TierFree       = "free"
	TierGrowth     = "growth"
	TierEnterprise = "enterprise"
)

// ValidTier reports whether s is a tier the store accepts: one of the
// three, or "" for none.
func ValidTier(s string) bool {
	switch s {
	case "", TierFree, TierGrowth, TierEnterprise:
		return true
	}
	return false
}

// MaxSignInPerMinute bounds a tenant's sign-in limit override.
const MaxSignInPerMinute = 1_000_000

// TenantUpdate changes the fields that are non-nil.
type TenantUpdate struct {
	Name   *string
	Status *TenantStatus
	Tier   *string
	// SignInPerMinute sets the override; a pointer to 0 clears it.
	SignInPerMinute *int
	// SignInPolicy sets the policy. SignInDirectoryUsers needs no
	// directory yet: until one provisions users, nobody signs in.
	SignInPolicy *SignInPolicy
}

// Domain is an email domain a tenant claims. Only a verified domain routes
// logins, and a verified domain belongs to one tenant at most.
type Domain struct {
	ID       string
	TenantID string
	Domain   string // lower case, no trailing dot
	Verified bool
	// VerificationToken is the value the tenant publishes in DNS. It is not
	// a secret: anyone can read a TXT record.
	VerificationToken string
	VerifiedAt        *time.Time
	CreatedAt         time.Time
}

// Application is an OIDC client of the broker, owned by the SaaS vendor and
// shared by all tenants. ClientID equals ID.
type Application struct {
	ID         string
	Name       string
	SecretHash []byte // SHA-256 of the client secret; nil for public clients
	// PreviousSecretHash is the hash the last rotation replaced, still
	// accepted until PreviousSecretExpiresAt; nil when none is kept.
	PreviousSecretHash      []byte
	PreviousSecretExpiresAt *time.Time
	Public                  bool
	RedirectURIs            []string
	PostLogoutRedirectURIs  []string
	BackchannelLogoutURI    string
	// InitiateLoginURI is where the application starts a sign-in that
	// someone else initiated (OpenID Connect Core §4): the landing of
	// IdP-initiated SAML logins. "" when it has none.
	InitiateLoginURI  string
	IDTokenSigningAlg string // RS256 (default) or ES256
	// AccessTokenSigningAlg is RS256 or ES256 for access tokens; ""
	// signs them like the id_token.
	AccessTokenSigningAlg string
	// Lifetimes; zero means the broker default.
	AccessTokenTTL  time.Duration
	IDTokenTTL      time.Duration
	RefreshTokenTTL time.Duration
	// RefreshTokenReuseInterval is how long a refresh token, once spent,
	// still answers (with its family's current token) rather than count
	// as reuse: 0 (the default) is strict rotation, at most
	// MaxRefreshTokenReuseInterval.
	RefreshTokenReuseInterval time.Duration
	CreatedAt                 time.Time
	UpdatedAt                 time.Time
}

// MaxRefreshTokenReuseInterval bounds Application.RefreshTokenReuseInterval,
// as Okta bounds its grace period for token rotation.
const MaxRefreshTokenReuseInterval = 60 * time.Second

// ConnectionType is the upstream protocol: the name a connection type of
// package connections registers under (saml, oidc, …).
type ConnectionType string

// ConnectionStatus is draft until the configuration is complete.
type ConnectionStatus string

const (
	ConnectionDraft    ConnectionStatus = "draft"
	ConnectionActive   ConnectionStatus = "active"
	ConnectionInactive ConnectionStatus = "inactive"
)

// Connection is a tenant's upstream IdP. Config is the non-secret protocol
// configuration, owned and typed by package connections; Secrets (client
// secrets, SP private keys) are sealed at rest and opened on read.
type Connection struct {
	ID       string
	TenantID string
	Type     ConnectionType
	Name     string
	Status   ConnectionStatus
	Config   json.RawMessage
	Secrets  map[string]string
	// Version counts updates: 1 when created, bumped by every update.
	// UpdateConnection refuses a stale one (ErrVersionMismatch).
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Directory is a SCIM endpoint of a tenant. Only the hash of its bearer
// token is kept.
type Directory struct {
	ID        string
	TenantID  string
	Name      string
	TokenHash []byte
	// PreviousTokenExpiresAt: until then the token the last rotation
	// replaced still works; nil when none is kept. Read only.
	PreviousTokenExpiresAt *time.Time
	CreatedAt              time.Time
	UpdatedAt              time.Time
}

// SigningKeyStatus is where a key is in its rotation.
type SigningKeyStatus string

const (
	// KeyActive signs new tokens (one per algorithm).
	KeyActive SigningKeyStatus = "active"
	// KeyOverlap no longer signs but stays in the JWKS until RetireAt so that
	// tokens it signed still verify.
	KeyOverlap SigningKeyStatus = "overlap"
	// KeyRetired is kept for the record only.
	KeyRetired SigningKeyStatus = "retired"
)

// SigningKey is one of the broker's token-signing keys. PrivateKey is PKCS#8
// DER, sealed at rest.
type SigningKey struct {
	ID         string
	Alg        string // RS256 or ES256
	Status     SigningKeyStatus
	PrivateKey []byte
	CreatedAt  time.Time
	RetireAt   *time.Time
}

// APIKey is an operator credential: cross-tenant by design.
type APIKey struct {
	ID         string
	Name       string
	Hash       []byte // SHA-256 of the whole key
	Prefix     string // first characters, for people to tell keys apart
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// User is one person in one tenant, whether they arrived by SSO, by SCIM or
// both.
type User struct {
	ID            string
	TenantID      string
	DirectoryID   string // empty unless SCIM-provisioned
	ExternalID    string
	UserName      string
	Email         string
	EmailVerified bool
	GivenName     string
	FamilyName    string
	DisplayName   string
	Active        bool
	Attributes    json.RawMessage // the raw SCIM resource or IdP attributes
	Version       int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// StableSSOKey describes the subject of a connection that keys users by an
// id their IdP never reassigns (UpsertStableSSOUser).
type StableSSOKey struct {
	// Scheme starts every such key of the connection ("{tenant-id}:" for
	// Entra ID's tenant and object id).
	Scheme string
	// Previous is the key the connection used for this user before (the
	// SAML NameID), "" when none.
	Previous string
	// SamePerson, when set, reports whether a user linked to the
	// connection only under keys of before may be the person the key
	// names (from the attributes recorded at their last sign-in).
	SamePerson func(User) bool
}

// Group is a SCIM group of a directory.
type Group struct {
	ID          string
	TenantID    string
	DirectoryID string
	ExternalID  string
	DisplayName string
	Attributes  json.RawMessage
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// PortalLink is a one-time link into the self-serve portal.
type PortalLink struct {
	ID        string
	TenantID  string
	Intent    string
	TokenHash []byte
	ReturnURL string
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
	// SessionHash is the hash of the portal session's secret once the
	// link is opened; the session lasts until SessionExpiresAt.
	SessionHash      []byte
	SessionExpiresAt *time.Time
}

// Actor is who did an audited thing.
type Actor struct {
	Type      string `json:"type"` // operator, tenant_admin, user, scim, system
	ID        string `json:"id"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// Resource is what an audited thing was done to.
type Resource struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// AuditEvent is one append-only audit row. Hash chains each tenant's rows:
// Hash = SHA-256(PrevHash || canonical JSON of the row without hashes).
type AuditEvent struct {
	ID        string
	TenantID  string
	Actor     Actor
	Action    string
	Resource  Resource
	Context   json.RawMessage
	RequestID string
	TS        time.Time
	PrevHash  string
	Hash      string
	// MAC is the hex HMAC-SHA256 of Hash under audit key KeyVersion (see
	// AuditKeys): it vouches for this row and, through Hash, for every row
	// before it. Empty on rows a build from before migration 0110 wrote.
	MAC string
	// KeyVersion is the audit key of MAC; 0 for rows without one. (Rows
	// written under migration 0109 alone have a KeyVersion and no MAC:
	// their Hash itself is keyed, see AuditKeys.Hash.)
	KeyVersion int
}

// Event is one row of the outbox: written in the same transaction as the
// change it describes, delivered to webhooks afterwards. Events belong to the
// vendor's stream, so the table is global; TenantID says whose change it was.
type Event struct {
	ID        string
	TenantID  string
	Type      string
	Data      json.RawMessage
	CreatedAt time.Time
}

// Webhook is an endpoint of the vendor that receives events. Secret signs
// deliveries, so it is sealed (recoverable), not hashed.
type Webhook struct {
	ID     string
	URL    string
	Events []string
	Secret string
	// Disabled webhooks are sent nothing: no delivery is made for events
	// committed while disabled.
	Disabled bool
	// PreviousSecret is the secret the last rotation replaced; deliveries
	// are signed with it too until PreviousSecretExpiresAt.
	PreviousSecret          string
	PreviousSecretExpiresAt *time.Time
	CreatedAt               time.Time
	// DeletedAt is set on a deleted webhook (see DeleteWebhook).
	DeletedAt *time.Time
	// FailingSince is the first failed attempt since the webhook's last
	// successful one; nil while its attempts succeed. LastFailureAt and
	// LastFailure are the latest failed attempt and why it failed (kept
	// after a success, for operators).
	FailingSince  *time.Time
	LastFailureAt *time.Time
	LastFailure   string
	// DisabledReason says who disabled a Disabled webhook: "" an operator
	// (PATCH, the console), WebhookDisabledFailing the dispatcher, after
	// days of nothing but failures (DisableFailingWebhook); DisabledAt is
	// when, for the latter.
	DisabledReason string
	DisabledAt     *time.Time
}

// WebhookDisabledFailing is the DisabledReason of a webhook the
// dispatcher disabled because every attempt failed for days.
const WebhookDisabledFailing = "failing"

// Page asks for one page of a list ordered by id (creation order).
type Page struct {
	Limit int    // 1..100; 0 means the default, 20
	After string // the NextCursor of the previous page
}

// Normalize applies the default and cap.
func (p Page) Normalize() Page {
	switch {
	case p.Limit <= 0:
		p.Limit = 20
	case p.Limit > 100:
		p.Limit = 100
	}
	return p
}

// MigrationState is one migration and whether it has run.
type MigrationState struct {
	Version   int
	Name      string
	AppliedAt *time.Time
	// Newer is a migration the database has that this binary does not: a
	// newer version migrated the database (a rollback, or an old node
	// during a rolling upgrade). It is listed after this binary's own.
	Newer bool
}
