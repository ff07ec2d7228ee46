package connections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Type is one kind of upstream IdP (SAML 2.0, OpenID Connect, …). It owns
// its connections' stored configuration — it alone reads and validates
// store.Connection.Config and Secrets — and builds their Connectors. The
// Registry keeps no knowledge of any type: it stores, caches, routes and
// audits connections, and asks their Type for everything else.
type Type interface {
	// Configure validates settings — the object under the type's name in
	// a create or update request, nil when the request has none — and
	// merges it into conn.Config and conn.Secrets. A connection being
	// created arrives with an empty Config and its id already chosen.
	// Refusals wrap ErrConfig and name the field.
	Configure(ctx context.Context, deps Deps, conn *store.Connection, settings json.RawMessage) error
	// Missing lists, by their API field names, what conn still needs
	// before it can be activated; none means complete.
	Missing(conn store.Connection) []string
	// Open builds the Connector of a complete connection. It may reach
	// the IdP (OIDC discovery); its errors say why the connection cannot
	// log anyone in.
	Open(ctx context.Context, deps Deps, conn store.Connection) (Connector, error)
	// Describe renders the type's part of a connection's View: the URLs
	// the IdP side needs and what the tenant admin must know. No secret.
	Describe(deps Deps, conn store.Connection, now time.Time) (any, error)
	// Routes lists the URLs the type serves under /sso/{type}/{conn}/.
	Routes() []Route
}

// Route is a URL a Type serves for each of its connections, at
// /sso/{type}/{conn}/{Path}.
type Route struct {
	Method string
	Path   string
	// Finish marks the URL the IdP sends the browser back to: the
	// connection's Connector finishes the login there, and the
	// CompleteFunc writes the answer.
	Finish bool
	// Serve answers any other URL (SP metadata), for a connection in any
	// status. cn is the connection's cached Connector when it is active,
	// nil otherwise.
	Serve func(ctx context.Context, deps Deps, conn store.Connection, cn Connector, w http.ResponseWriter, r *http.Request) error
}

// Maintainer is a Type whose connections need upkeep over time (SAML:
// re-reading metadata URLs, announcing expiring certificates). Run calls
// it for every connection of the type.
type Maintainer interface {
	// Maintain returns conn's new Config, or nil when nothing needs
	// saving, and the events the change emits. force asks for work that
	// is otherwise periodic to happen now (Deps.Refresh). An error is
	// logged; a Config returned with it is saved all the same.
	Maintain(ctx context.Context, deps Deps, conn store.Connection, force bool) (json.RawMessage, []Event, error)
}

// CertificateHolder is a Type whose connections trust certificates that
// expire (SAML's IdP signing certificates): the Registry's maintenance
// counts the connections whose trust ends soon (Config.OnCertificates).
type CertificateHolder interface {
	// TrustedUntil is when the last certificate conn trusts expires:
	// past it, no answer of its IdP verifies. ok is false when conn
	// trusts none (a draft).
	TrustedUntil(conn store.Connection) (until time.Time, ok bool)
}

// Event is a connection event a Type asks the Registry to emit, in the
// same transaction as the change that causes it.
type Event struct {
	Type string
	// Data is added to what every connection event carries (connection
	// id, tenant, type, name, status).
	Data map[string]any
}

// Types is the factory: each connection type's name, as stored and as the
// API spells it, mapped to its implementation. The wiring builds it (see
// the package comment); nothing here holds one globally.
type Types map[store.ConnectionType]Type

// Names lists the registered type names, sorted.
func (ts Types) Names() []string {
	names := make([]string, 0, len(ts))
	for n := range maps.Keys(ts) {
		names = append(names, string(n))
	}
	slices.Sort(names)
	return names
}

// lookup returns the Type of typ, or an ErrConfig that lists the known
// ones.
func (ts Types) lookup(typ store.ConnectionType) (Type, error) {
	if t, ok := ts[typ]; ok {
		return t, nil
	}
	return nil, Invalid("type", "type must be %s", quoteOr(ts.Names()))
}

// quoteOr renders ["a" "b" "c"] as `"a", "b" or "c"`.
func quoteOr(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = `"` + n + `"`
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// Deps is what a Type and its Connectors may use: a narrow view of the
// Registry's configuration, never the Registry itself.
type Deps struct {
	// Issuer is the broker's public base URL, without a trailing slash;
	// the type's URLs are Issuer + "/sso/{type}/{conn}/…".
	Issuer string
	// Once keeps started logins and seen assertion ids, shared by every
	// node.
	Once sessions.OnceCache
	// HTTPClient reaches IdPs: the SSRF-safe client unless the wiring
	// chose otherwise.
	HTTPClient *http.Client
	// AllowInsecureURLs accepts http:// IdP URLs (serve --dev, tests).
	AllowInsecureURLs bool
	// Now is the clock.
	Now func() time.Time
	// Logger receives what is not returned to a caller.
	Logger *slog.Logger
	// LoginTTL is how long a started login may take at the IdP.
	LoginTTL time.Duration
	// Profiles applies the rules every type shares to a finished login's
	// profile (see ProfileRules).
	Profiles ProfileChecker
	// Refresh asks for the connection's Maintain to run soon, out of
	// turn (forced), for example after a response signed with a key the
	// connection does not trust yet. It is rate-limited per connection
	// and returns at once; nil when nothing maintains connections.
	Refresh func(conn store.Connection)
	// Applications reads the vendor's applications, for a setting that
	// names one (the landing of IdP-initiated sign-ins, CheckLanding).
	Applications ApplicationReader
}

// ApplicationReader reads one of the vendor's applications by client_id
// (store.ErrNotFound when there is none).
type ApplicationReader interface {
	Application(ctx context.Context, id string) (store.Application, error)
}

// CheckLanding refuses, as a FieldError of field, a clientID that cannot
// receive IdP-initiated sign-ins: no such application, or one without an
// initiate_login_uri (OpenID Connect Core §4), to which the broker would
// have nowhere to send the user. "" (none) passes.
func (d Deps) CheckLanding(ctx context.Context, field, clientID string) error {
	if clientID == "" {
		return nil
	}
	if d.Applications == nil || !store.HasPrefix(clientID, store.PrefixApplication) {
		return Invalid(field, "%s: no application has client_id %q", field, clientID)
	}
	app, err := d.Applications.Application(ctx, clientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Invalid(field, "%s: no application has client_id %q", field, clientID)
	case err != nil:
		return fmt.Errorf("connections: read application %s: %w", clientID, err)
	case app.InitiateLoginURI == "":
		return Invalid(field, "%s: application %s has no initiate_login_uri; set one on the application first (PATCH /applications/%s)", field, clientID, clientID)
	}
	return nil
}

// ProfileChecker finishes a profile with the rules every type shares.
type ProfileChecker interface {
	CheckProfile(ctx context.Context, p Profile, rules ProfileRules) (Profile, error)
}

// ProfileRules are a connection's choices about the shared profile rules.
type ProfileRules struct {
	// AnyEmailDomain lifts the rule that the email must be in one of the
	// tenant's verified domains.
	AnyEmailDomain bool
	// EmailVerified is what the IdP said about the email, when it said
	// anything. Either way the email is verified only in one of the
	// tenant's own verified domains: the IdP's true does not reach
	// beyond them.
	EmailVerified *bool
}

// URL returns the connection's URL at path: {issuer}/sso/{type}/{conn}/path
// (path empty: the entity id form, with no trailing slash).
func (d Deps) URL(conn store.Connection, path string) string {
	u := d.Issuer + "/sso/" + string(conn.Type) + "/" + conn.ID
	if path != "" {
		u += "/" + path
	}
	return u
}
