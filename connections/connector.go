package connections

import (
	"context"
	"net/http"
	"time"

	"github.com/idbroker/idbroker/store"
)

// Profile is the one normalised shape of a user, whatever the IdP sent.
type Profile struct {
	TenantID       string
	ConnectionID   string
	ConnectionType store.ConnectionType
	// IdPSubject identifies the user at the IdP, stably: the SAML NameID
	// (persistent format preferred), the OIDC sub — or, for Entra ID,
	// tid + oid, never the mutable email.
	IdPSubject string
	// KeyScheme, when set, says IdPSubject is an id the IdP never gives
	// anyone else, starting with KeyScheme (Entra ID: "{tid}:"): a user
	// holding another such key of the connection is another person, never
	// adopted by email or by PreviousIdPSubject.
	KeyScheme string
	// PreviousIdPSubject is what the connection keyed this user by before
	// IdPSubject (for Entra ID over SAML, the NameID): a user linked under
	// it, and nothing under IdPSubject, is moved to IdPSubject at sign-in,
	// once. Empty when the key never changed. Only with KeyScheme.
	PreviousIdPSubject string
	// PersonAttribute names the attribute of Raw that identifies the
	// person for good (Entra's object id): a user linked to the
	// connection under keys of before whose recorded attributes give it
	// another value is someone else.
	PersonAttribute string
	Email           string
	EmailVerified   bool
	GivenName       string
	FamilyName      string
	Name            string
	Groups          []string
	// GroupsOverage says the IdP left the user's groups out of its answer
	// because there were too many (Entra ID's group overage: over 150 in
	// a SAML assertion, 200 in a JWT, it sends a Graph link instead), so
	// Groups holds none of them, or only what other attributes gave: it
	// is not the user's groups. The broker does not call Graph.
	GroupsOverage bool
	// AuthTime is when the IdP says it authenticated the user (SAML
	// AuthnInstant, OIDC auth_time); zero when it does not say. An IdP
	// may answer a forced re-authentication from its own older session.
	AuthTime time.Time
	// Raw holds every attribute or claim as received, for the tenant admin
	// and for custom mappings.
	Raw map[string]any
}

// LoginRequest is what the broker asks of an upstream login.
type LoginRequest struct {
	// RequestID is the broker's pending authorization request; Finish hands
	// it back so the broker can resume. Opaque to connectors.
	RequestID string
	// LoginHint is the user's email when known (SAML Subject / OIDC
	// login_hint).
	LoginHint string
	// ForceAuthn asks the IdP to authenticate again (prompt=login, max_age).
	ForceAuthn bool
	// MaxAge is the application's max_age in seconds, nil when it sent
	// none. An OIDC IdP is passed it (0 for a ForceAuthn without one), so
	// that its id_token says when it authenticated the user (auth_time,
	// which OpenID Connect requires in answer to max_age) even when it
	// ignores prompt=login.
	MaxAge *int64
}

// Result is a finished upstream login.
type Result struct {
	// RequestID is the LoginRequest.RequestID that Begin was given; empty
	// for an IdP-initiated SAML login.
	RequestID string
	Profile   Profile
	// For an IdP-initiated login (RequestID empty), the client_id of the
	// application the connection lands such logins in ("" when it names
	// none) and the RelayState the IdP sent, as sent.
	IdPInitiatedClientID string
	RelayState           string
}

// Connector is one configured upstream IdP.
type Connector interface {
	// Begin sends the browser to the IdP: a redirect, or an auto-submitting
	// form for the SAML HTTP-POST binding.
	Begin(ctx context.Context, w http.ResponseWriter, r *http.Request, req LoginRequest) error
	// Finish validates what the IdP sent back (the ACS POST or the OIDC
	// callback) and returns the normalised profile.
	Finish(ctx context.Context, r *http.Request) (Result, error)
}

// CompleteFunc is how the broker receives a finished upstream login (err
// nil) or a failed one. It writes the response: for success, the
// redirect back to the application; for failure, the generic end-user page
// with a reference id, while the precise reason goes to the tenant admin
// (authentication.failed).
type CompleteFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request, conn store.Connection, res Result, err error)
