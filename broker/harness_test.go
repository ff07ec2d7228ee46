package broker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// node is one broker instance behind its own httptest server.
type node struct {
	t      testing.TB
	URL    string
	P      *broker.Provider
	Store  store.Store
	Sess   sessions.Store
	Keys   *signing.Manager
	srv    *httptest.Server
	idp    *testIdP
	client *http.Client // for back-channel logouts
}

// testIdP is the upstream: its Begin redirects to /test-idp on the broker,
// which completes the login with the profile registered for the email.
type testIdP struct {
	mu       sync.Mutex
	profiles map[string]connections.Profile // by connection id
	fail     map[string]error
	begins   int
	hint     string // the LoginHint of the last Begin
}

func (i *testIdP) Connector(ctx context.Context, c store.Connection) (connections.Connector, error) {
	return testConnector{i, c}, nil
}

type testConnector struct {
	idp  *testIdP
	conn store.Connection
}

func (c testConnector) Begin(ctx context.Context, w http.ResponseWriter, r *http.Request, req connections.LoginRequest) error {
	c.idp.mu.Lock()
	c.idp.begins++
	c.idp.hint = req.LoginHint
	c.idp.mu.Unlock()
	http.Redirect(w, r, "/test-idp?conn="+c.conn.ID+"&rid="+url.QueryEscape(req.RequestID)+"&hint="+url.QueryEscape(req.LoginHint), http.StatusFound)
	return nil
}

func (c testConnector) Finish(ctx context.Context, r *http.Request) (connections.Result, error) {
	return connections.Result{}, nil
}

// LastHint is the login hint the last upstream login was begun with.
func (i *testIdP) LastHint() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hint
}

func (i *testIdP) Begins() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.begins
}

// newNode starts a broker over st and the given session backends.
func newNode(t testing.TB, st store.Store, base sessions.Store, once sessions.OnceCache) *node {
	return newNodeIssuer(t, st, base, once, "")
}

// newNodeIssuer starts a node whose issuer is issuer (another node's URL,
// as behind one load balancer) or, when empty, its own URL.
func newNodeIssuer(t testing.TB, st store.Store, base sessions.Store, once sessions.OnceCache, issuer string) *node {
	t.Helper()
	return newNodeServer(t, st, base, once, issuer, httpserver.Config{})
}

// newNodeServer is newNodeIssuer with the HTTP server's configuration (a
// real access log, for benchmarks) and, optionally, changes to the
// broker's (rate limits).
func newNodeServer(t testing.TB, st store.Store, base sessions.Store, once sessions.OnceCache, issuer string, srvCfg httpserver.Config, tweak ...func(*broker.Config)) *node {
	t.Helper()
	return startNode(t, st, base, once, issuer, srvCfg, false, tweak...)
}

// newTLSNode starts a node behind an https test server, so that its
// issuer is https; n.srv.Client() trusts its certificate.
func newTLSNode(t testing.TB, st store.Store, base sessions.Store, once sessions.OnceCache) *node {
	t.Helper()
	return startNode(t, st, base, once, "", httpserver.Config{}, true)
}

func startNode(t testing.TB, st store.Store, base sessions.Store, once sessions.OnceCache, issuer string, srvCfg httpserver.Config, tls bool, tweak ...func(*broker.Config)) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	keys, err := signing.NewManager(st.(signing.KeyStore), signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	cached, err := sessions.NewCached(ctx, base, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, Store: st, Sess: cached, Keys: keys, idp: &testIdP{profiles: map[string]connections.Profile{}, fail: map[string]error{}}}
	var h http.Handler
	n.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	if tls {
		n.srv.StartTLS()
	} else {
		n.srv.Start()
	}
	t.Cleanup(n.srv.Close)
	n.URL = n.srv.URL
	if issuer == "" {
		issuer = n.URL
	}
	cfg := broker.Config{
		Issuer: issuer, Store: st, Sessions: cached, Once: once, Keys: keys, Connectors: n.idp,
		HTTPClient: http.DefaultClient,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	n.P, err = broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.P.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Back-channel logouts go out through the durable queue, as wired in
	// cmd/idbroker: a dispatcher per node.
	if ls, ok := st.(events.LogoutStore); ok {
		d, err := events.NewLogoutDispatcher(events.LogoutConfig{Store: ls, Sender: n.P, Poll: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); d.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	srv := httpserver.New(srvCfg)
	// Errors the server answers itself, before a route, as cmd/idbroker
	// renders them.
	for _, prefix := range []string{"/oauth/", broker.PathUserinfo} {
		srv.RenderErrors(prefix, n.P.RenderOAuthError)
	}
	e := srv.Echo()
	n.P.Mount(e)
	// The IdP's answer is a sign-in completion, measured as the real ACS
	// and callback routes are when the broker has an SLO recorder.
	var measure []echo.MiddlewareFunc
	if m := n.P.MeasureSignIn(); m != nil {
		measure = append(measure, m)
	}
	e.GET("/test-idp", func(c echo.Context) error {
		r := c.Request()
		tenantID, err := st.ResolveConnection(r.Context(), c.QueryParam("conn"))
		if err != nil {
			return err
		}
		ctx := store.WithTenant(r.Context(), tenantID)
		conn, err := st.Connection(ctx, c.QueryParam("conn"))
		if err != nil {
			return err
		}
		n.idp.mu.Lock()
		prof, failErr := n.idp.profiles[conn.ID], n.idp.fail[conn.ID]
		n.idp.mu.Unlock()
		prof.TenantID, prof.ConnectionID, prof.ConnectionType = tenantID, conn.ID, conn.Type
		// Without rid the login is IdP-initiated: landing and relay are
		// what a SAML connection would hand over.
		n.P.Complete(ctx, c.Response(), r, conn, connections.Result{RequestID: c.QueryParam("rid"), Profile: prof,
			IdPInitiatedClientID: c.QueryParam("landing"), RelayState: c.QueryParam("relay")}, failErr)
		return nil
	}, measure...)
	h = srv.Handler()
	return n
}

// sqliteNode is a single broker on SQLite and in-process sessions.
func sqliteNode(t testing.TB) *node {
	mem := sessions.NewMemory()
	return newNode(t, storetest.SQLite(t), mem, mem)
}

// tenant sets up a tenant with a verified domain and an active connection
// whose IdP signs in the given user.
type tenant struct {
	ID, Domain, ConnID string
}

func (n *node) tenant(name, domain string, prof connections.Profile) tenant {
	t := n.t
	t.Helper()
	bg := context.Background()
	tn, err := n.Store.CreateTenant(bg, store.Tenant{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	ctx := store.WithTenant(bg, tn.ID)
	if _, err := n.Store.AddDomain(ctx, store.Domain{Domain: domain, Verified: true, VerificationToken: "v"}); err != nil {
		t.Fatal(err)
	}
	conn, err := n.Store.CreateConnection(ctx, store.Connection{Type: "oidc", Name: "idp", Status: store.ConnectionActive, Config: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	n.idp.mu.Lock()
	n.idp.profiles[conn.ID] = prof
	n.idp.mu.Unlock()
	return tenant{ID: tn.ID, Domain: domain, ConnID: conn.ID}
}

// app registers an application and returns its OAuth client.
type app struct {
	ID, Secret, Redirect string
	Public               bool
	Conf                 oauth2.Config
	Verifier             *oidc.IDTokenVerifier
	n                    *node
}

func (n *node) app(a store.Application) *app {
	t := n.t
	t.Helper()
	var secret string
	if !a.Public {
		secret = secrets.NewToken("idbs")
		a.SecretHash = secrets.HashToken(secret)
	}
	if a.Name == "" {
		a.Name = "app"
	}
	if len(a.RedirectURIs) == 0 {
		a.RedirectURIs = []string{"https://app.example/callback"}
	}
	a, err := n.Store.CreateApplication(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	// The server's own client: it trusts the https node's certificate.
	prov, err := oidc.NewProvider(oidc.ClientContext(context.Background(), n.srv.Client()), n.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &app{
		ID: a.ID, Secret: secret, Redirect: a.RedirectURIs[0], Public: a.Public, n: n,
		Conf: oauth2.Config{
			ClientID: a.ID, ClientSecret: secret, Endpoint: prov.Endpoint(), RedirectURL: a.RedirectURIs[0],
			Scopes: []string{oidc.ScopeOpenID, "email", "profile", "groups", oidc.ScopeOfflineAccess},
		},
		Verifier: prov.Verifier(&oidc.Config{ClientID: a.ID, SupportedSigningAlgs: []string{"RS256", "ES256"}}),
	}
}

// browser follows redirects within the broker and stops at the app.
func browser(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if r.URL.Host == "app.example" || r.URL.Host == "app2.example" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// authorize drives a browser through /authorize and returns the final
// response (a redirect to the app, or a page).
func (a *app) authorize(t *testing.T, b *http.Client, extra url.Values) *http.Response {
	t.Helper()
	q := url.Values{
		"client_id": {a.ID}, "redirect_uri": {a.Redirect}, "response_type": {"code"},
		"scope": {strings.Join(a.Conf.Scopes, " ")}, "state": {"st8"}, "nonce": {"n0nce"},
	}
	for k, v := range extra {
		q[k] = v
	}
	resp, err := b.Get(a.n.URL + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	// Read whole, so that the connection is reused and the caller can
	// still read the page (a form_post answer).
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// code returns the code of a redirect to the app, failing otherwise.
func code(t *testing.T, resp *http.Response) string {
	t.Helper()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("status %d, no redirect to the app", resp.StatusCode)
	}
	if e := loc.Query().Get("error"); e != "" {
		t.Fatalf("app got error %s: %s", e, loc.Query().Get("error_description"))
	}
	if loc.Query().Get("state") != "st8" {
		t.Fatalf("state = %q", loc.Query().Get("state"))
	}
	return loc.Query().Get("code")
}

func pkce() (verifier, challenge string) {
	verifier = oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// introspect asks the node about token with app's credentials.
func (a *app) introspect(t *testing.T, n *node, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", n.URL+broker.PathIntrospect, strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(a.ID, a.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("introspect: status %d", resp.StatusCode)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func alice(domain string) connections.Profile {
	return connections.Profile{IdPSubject: "idp-alice", Email: "alice@" + domain, EmailVerified: true,
		GivenName: "Alice", FamilyName: "Liddell", Groups: []string{"eng"}}
}
