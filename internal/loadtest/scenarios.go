package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scenario is a named end-to-end operation against a broker, with the
// setup it needs (tenants, applications, directories, an upstream IdP)
// done through the operator API before the run.
type Scenario struct {
	Name string
	// Setup prepares the run for workers workers.
	Setup func(ctx context.Context, workers int) error
	Op    OpFunc
	// Close releases what Setup started (an IdP); it may be nil.
	Close func()
}

// Options tune the scenarios.
type Options struct {
	// IDTokenAlg is the applications' id_token algorithm, RS256 (default)
	// or ES256.
	IDTokenAlg string
	// DevUser is the dev IdP user login-saml signs in as (default alice,
	// alice@example.com, whom `serve --dev` routes to the dev IdP).
	DevUser, DevEmail string
	// Users is the directory size scim-patch works on (default 100).
	Users int
	// Poll is deprovision-propagation's introspection interval (default 2 ms).
	Poll time.Duration
	// Peer is the registered client of a peer OpenID Provider, for the
	// peer-* scenarios (which set nothing up: the peer's configuration
	// holds the client and a connector that signs in at once).
	Peer PeerConfig
}

// PeerConfig describes a peer OpenID Provider driven for comparison, e.g.
// Dex with its mock connector (bench/peers/dex.yaml).
type PeerConfig struct {
	AuthorizePath, TokenPath, IntrospectPath string
	Client                                   App
	// Params are added to every authorization request (connector_id=mock).
	Params url.Values
}

// Scenarios lists the scenario names.
func Scenarios() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var scenarios = map[string]func(b *Broker, o Options) *Scenario{
	"login-saml":              loginSAML,
	"login-oidc":              loginOIDC,
	"refresh":                 refresh,
	"scim-create":             scimCreate,
	"scim-patch":              scimPatch,
	"scim-sync":               scimSync,
	"deprovision-propagation": deprovision,
	"peer-login":              peerLogin,
	"introspect":              introspect,
	"peer-introspect":         peerIntrospect,
	"peer-refresh":            peerRefresh,
}

// NewScenario returns the named scenario against b.
func NewScenario(name string, b *Broker, o Options) (*Scenario, error) {
	mk, ok := scenarios[name]
	if !ok {
		return nil, fmt.Errorf("loadtest: unknown scenario %q (have %v)", name, Scenarios())
	}
	if o.IDTokenAlg == "" {
		o.IDTokenAlg = "RS256"
	}
	if o.DevUser == "" {
		o.DevUser, o.DevEmail = "alice", "alice@example.com"
	}
	if o.Users <= 0 {
		o.Users = 100
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Millisecond
	}
	if strings.HasPrefix(name, "peer-") {
		if o.Peer.Client.ClientID == "" {
			return nil, errors.New("loadtest: the peer scenarios need the peer's client")
		}
		if o.Peer.IntrospectPath == "" {
			o.Peer.IntrospectPath = "/token/introspect" // Dex's
		}
		b.AuthorizePath, b.TokenPath, b.IntrospectPath = o.Peer.AuthorizePath, o.Peer.TokenPath, o.Peer.IntrospectPath
	} else if b.APIKey == "" {
		return nil, errors.New("loadtest: an operator API key is needed to set up the scenario")
	}
	return mk(b, o), nil
}

// peerLogin: the complete code-flow login at a peer OpenID Provider.
func peerLogin(b *Broker, o Options) *Scenario {
	return &Scenario{Name: "peer-login", Setup: func(context.Context, int) error { return nil },
		Op: func(ctx context.Context, _ int) (time.Duration, error) {
			_, err := b.login(ctx, o.Peer.Client, o.Peer.Params, nil)
			return 0, err
		}}
}

// peerRefresh: refresh-token rotation at a peer, one chain per worker.
func peerRefresh(b *Broker, o Options) *Scenario {
	var tokens []string
	return &Scenario{Name: "peer-refresh",
		Setup: func(ctx context.Context, workers int) error {
			tokens = make([]string, workers)
			for w := range tokens {
				tk, err := b.login(ctx, o.Peer.Client, o.Peer.Params, nil)
				if err != nil {
					return err
				}
				if tk.RefreshToken == "" {
					return errors.New("loadtest: the peer gave no refresh token")
				}
				tokens[w] = tk.RefreshToken
			}
			return nil
		},
		Op: func(ctx context.Context, w int) (time.Duration, error) {
			tk, err := b.token(ctx, o.Peer.Client, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens[w]}})
			if err == nil {
				tokens[w] = tk.RefreshToken
			}
			return 0, err
		}}
}

func (o Options) appExtra() map[string]any {
	return map[string]any{"id_token_signed_response_alg": o.IDTokenAlg}
}

// loginSAML: the complete SP-initiated login through the dev IdP of
// `serve --dev`, which remembers the chosen user in a cookie as a real
// IdP session would; every login starts without a broker session.
func loginSAML(b *Broker, o Options) *Scenario {
	var app App
	s := &Scenario{Name: "login-saml"}
	s.Setup = func(ctx context.Context, _ int) (err error) {
		app, err = b.createApp(ctx, "load login-saml", o.appExtra())
		return err
	}
	cookies := map[string][]*http.Cookie{b.URL + "/dev/idp/": {{Name: "idb_dev_idp_user", Value: o.DevUser, Path: "/dev/idp"}}}
	s.Op = func(ctx context.Context, _ int) (time.Duration, error) {
		_, err := b.login(ctx, app, url.Values{"login_hint": {o.DevEmail}}, cookies)
		return 0, err
	}
	return s
}

// oidcTenant is a tenant with a verified domain and an OIDC connection to
// an IdP the tool runs, and an application.
type oidcTenant struct {
	idp    *OIDCIdP
	tenant tenantSetup
	conn   string
	app    App
	users  atomic.Int64
}

func (t *oidcTenant) setup(ctx context.Context, b *Broker, o Options, name string) (err error) {
	if t.idp, err = StartOIDCIdP(); err != nil {
		return err
	}
	if t.tenant, err = b.createTenant(ctx, name); err != nil {
		return err
	}
	if t.conn, err = b.createOIDCConnection(ctx, t.tenant.TenantID, t.idp); err != nil {
		return err
	}
	t.app, err = b.createApp(ctx, name, o.appExtra())
	return err
}

func (t *oidcTenant) close() {
	if t.idp != nil {
		t.idp.Close()
	}
}

// login signs in as email (a new user of the tenant's domain when "").
func (t *oidcTenant) login(ctx context.Context, b *Broker, email string) (Tokens, error) {
	if email == "" {
		email = fmt.Sprintf("user%d@%s", t.users.Add(1)%1000, t.tenant.Domain)
	}
	return b.login(ctx, t.app, url.Values{"connection": {t.conn}, "login_hint": {email}}, nil)
}

// loginOIDC: the complete login through an OIDC IdP the tool starts
// itself (it approves at once and signs with ES256), over a pool of 1,000
// users of the tenant.
func loginOIDC(b *Broker, o Options) *Scenario {
	t := &oidcTenant{}
	return &Scenario{Name: "login-oidc",
		Setup: func(ctx context.Context, _ int) error { return t.setup(ctx, b, o, "load login-oidc") },
		Op: func(ctx context.Context, _ int) (time.Duration, error) {
			_, err := t.login(ctx, b, "")
			return 0, err
		},
		Close: t.close,
	}
}

// refresh: each worker signs in once, then redeems and rotates its
// refresh token again and again.
func refresh(b *Broker, o Options) *Scenario {
	t := &oidcTenant{}
	var tokens []string
	return &Scenario{Name: "refresh",
		Setup: func(ctx context.Context, workers int) error {
			if err := t.setup(ctx, b, o, "load refresh"); err != nil {
				return err
			}
			tokens = make([]string, workers)
			for w := range tokens {
				tk, err := t.login(ctx, b, fmt.Sprintf("refresh%d@%s", w, t.tenant.Domain))
				if err != nil {
					return fmt.Errorf("sign in worker %d: %w", w, err)
				}
				if tk.RefreshToken == "" {
					return errors.New("loadtest: the login gave no refresh token")
				}
				tokens[w] = tk.RefreshToken
			}
			return nil
		},
		Op: func(ctx context.Context, w int) (time.Duration, error) {
			tk, err := b.token(ctx, t.app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens[w]}})
			if err == nil {
				tokens[w] = tk.RefreshToken
			}
			return 0, err
		},
		Close: t.close,
	}
}

func scimUser(userName string) map[string]any {
	return map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName, "active": true,
		"name":   map[string]any{"givenName": "Load", "familyName": "Test"},
		"emails": []any{map[string]any{"value": userName, "type": "work", "primary": true}},
	}
}

// scimCreate: POST /Users of new users, as an IdP's initial sync does.
func scimCreate(b *Broker, o Options) *Scenario {
	var d directory
	var tenant tenantSetup
	var n atomic.Int64
	return &Scenario{Name: "scim-create",
		Setup: func(ctx context.Context, _ int) (err error) {
			if tenant, err = b.createTenant(ctx, "load scim-create"); err != nil {
				return err
			}
			d, err = b.createDirectory(ctx, tenant.TenantID)
			return err
		},
		Op: func(ctx context.Context, _ int) (time.Duration, error) {
			return 0, b.scim(ctx, d, "POST", "/Users", scimUser(fmt.Sprintf("u%d@%s", n.Add(1), tenant.Domain)), nil, http.StatusCreated)
		},
	}
}

// scimPatch: Entra-style PATCH replace of displayName on existing users.
func scimPatch(b *Broker, o Options) *Scenario {
	var d directory
	var ids []string
	var n atomic.Int64
	return &Scenario{Name: "scim-patch",
		Setup: func(ctx context.Context, _ int) error {
			tenant, err := b.createTenant(ctx, "load scim-patch")
			if err != nil {
				return err
			}
			if d, err = b.createDirectory(ctx, tenant.TenantID); err != nil {
				return err
			}
			for i := range o.Users {
				var u struct {
					ID string `json:"id"`
				}
				if err := b.scim(ctx, d, "POST", "/Users", scimUser(fmt.Sprintf("p%d@%s", i, tenant.Domain)), &u, http.StatusCreated); err != nil {
					return err
				}
				ids = append(ids, u.ID)
			}
			return nil
		},
		Op: func(ctx context.Context, _ int) (time.Duration, error) {
			i := n.Add(1)
			body := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "Replace", "path": "displayName", "value": fmt.Sprint("Load ", i)}}}
			return 0, b.scim(ctx, d, "PATCH", "/Users/"+ids[rand.IntN(len(ids))], body, nil, http.StatusOK)
		},
	}
}

// deprovision: a SCIM user signs in (untimed); then the directory sets
// them inactive on the first node, and the operation's time is how long
// until introspection of their access token on the second node answers
// inactive.
func deprovision(b *Broker, o Options) *Scenario {
	t := &oidcTenant{}
	var d directory
	var mu sync.Mutex
	return &Scenario{Name: "deprovision-propagation",
		Setup: func(ctx context.Context, _ int) (err error) {
			if err := t.setup(ctx, b, o, "load deprovision"); err != nil {
				return err
			}
			d, err = b.createDirectory(ctx, t.tenant.TenantID)
			return err
		},
		Op: func(ctx context.Context, _ int) (time.Duration, error) {
			email := fmt.Sprintf("d%d@%s", t.users.Add(1), t.tenant.Domain)
			var u struct {
				ID string `json:"id"`
			}
			if err := b.scim(ctx, d, "POST", "/Users", scimUser(email), &u, http.StatusCreated); err != nil {
				return 0, err
			}
			tk, err := t.login(ctx, b, email)
			if err != nil {
				return 0, err
			}
			if active, err := b.introspect(ctx, b.URL2, t.app, tk.AccessToken); err != nil || !active {
				return 0, &OpError{Kind: "precondition", Err: fmt.Errorf("fresh token not active on the second node (%v)", err)}
			}
			mu.Lock() // one deprovision in flight: the delay is the fan-out's, not a queue's
			defer mu.Unlock()
			start := time.Now()
			body := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}
			if err := b.scim(ctx, d, "PATCH", "/Users/"+u.ID, body, nil, http.StatusOK); err != nil {
				return 0, err
			}
			for {
				active, err := b.introspect(ctx, b.URL2, t.app, tk.AccessToken)
				if err != nil {
					return 0, err
				}
				if !active {
					return time.Since(start), nil
				}
				select {
				case <-ctx.Done():
					return 0, ctx.Err()
				case <-time.After(o.Poll):
				}
			}
		},
		Close: t.close,
	}
}
