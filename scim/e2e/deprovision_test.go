// Package e2e drives SCIM deprovisioning end to end: two broker nodes on
// one PostgreSQL and one Redis, a user signed in through the broker, then
// deactivated by their directory.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// idp is the tenant's upstream IdP, in process: Begin sends the browser to
// /test-idp on the same node, which completes the login with profile.
type idp struct{ profile connections.Profile }

func (i *idp) Connector(context.Context, store.Connection) (connections.Connector, error) {
	return connector{}, nil
}

type connector struct{}

func (connector) Begin(_ context.Context, w http.ResponseWriter, r *http.Request, req connections.LoginRequest) error {
	http.Redirect(w, r, "/test-idp?rid="+url.QueryEscape(req.RequestID), http.StatusFound)
	return nil
}

func (connector) Finish(context.Context, *http.Request) (connections.Result, error) {
	return connections.Result{}, nil
}

// node is one broker instance, with the SCIM server mounted beside it as
// cmd/idbroker does.
type node struct {
	URL  string
	SCIM *scim.Server
}

func newNode(t *testing.T, st store.Store, base sessions.Store, issuer string, up *idp, conn func() store.Connection) *node {
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
	// A TTL far beyond the waits for revocations below: only the
	// revocation message can end a cached answer in time.
	cached, err := sessions.NewCached(ctx, base, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	if issuer == "" {
		issuer = hs.URL
	}
	p, err := broker.New(broker.Config{Issuer: issuer, Store: st, Sessions: cached, Once: base.(sessions.OnceCache),
		Keys: keys, Connectors: up, HTTPClient: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	sc, err := scim.New(scim.Config{Issuer: issuer, Store: st, Sessions: cached})
	if err != nil {
		t.Fatal(err)
	}
	srv := httpserver.New(httpserver.Config{})
	e := srv.Echo()
	p.Mount(e)
	sc.Mount(e)
	e.GET("/test-idp", func(c echo.Context) error {
		cn := conn()
		ctx := store.WithTenant(c.Request().Context(), cn.TenantID)
		prof := up.profile
		prof.TenantID, prof.ConnectionID, prof.ConnectionType = cn.TenantID, cn.ID, cn.Type
		p.Complete(ctx, c.Response(), c.Request(), cn, connections.Result{RequestID: c.QueryParam("rid"), Profile: prof}, nil)
		return nil
	})
	h = srv.Handler()
	return &node{URL: hs.URL, SCIM: sc}
}

// TestDeprovisionOnEveryNode: a user provisioned by SCIM signs in through
// node 1; their directory deactivates them through node 1's SCIM server;
// node 2's introspection says active:false promptly (by message), the refresh token
// is dead, and a new login is refused until the directory reactivates them.
func TestDeprovisionOnEveryNode(t *testing.T) {
	pgURL := storetest.PostgresURL(t)
	cipher := storetest.NewCipher(t)
	st1 := storetest.Open(t, pgURL, cipher)
	if err := st1.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	st2 := storetest.Open(t, pgURL, cipher)
	rdb := sessionstest.Redis(t)
	prefix := sessionstest.Prefix(t, rdb)

	// The tenant: a verified domain, an active connection, a directory.
	bg := context.Background()
	tn, err := st1.CreateTenant(bg, store.Tenant{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := store.WithTenant(bg, tn.ID)
	if _, err := st1.AddDomain(ctx, store.Domain{Domain: "acme.test", Verified: true, VerificationToken: "v"}); err != nil {
		t.Fatal(err)
	}
	conn, err := st1.CreateConnection(ctx, store.Connection{Type: "oidc", Name: "idp", Status: store.ConnectionActive, Config: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	token := secrets.NewToken("scim")
	dir, err := st1.CreateDirectory(ctx, store.Directory{Name: "okta", TokenHash: secrets.HashToken(token)})
	if err != nil {
		t.Fatal(err)
	}
	up := &idp{profile: connections.Profile{IdPSubject: "00u-alice", Email: "alice@acme.test", EmailVerified: true, GivenName: "Alice"}}
	getConn := func() store.Connection { return conn }

	n1 := newNode(t, st1, sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: prefix}), "", up, getConn)
	n2 := newNode(t, st2, sessions.NewRedis(rdb, sessions.RedisOptions{Prefix: prefix}), n1.URL, up, getConn)

	scimDo := func(method, path string, body any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, n1.SCIM.BaseURL(dir.ID)+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", scim.MediaType)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode/100 != 2 {
			t.Fatalf("SCIM %s %s: %d %s", method, path, res.StatusCode, raw)
		}
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	// Provisioned before the first login, in a group.
	uid := scimDo("POST", "/Users", map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "alice@acme.test", "externalId": "00u-alice",
		"emails": []any{map[string]any{"value": "alice@acme.test", "primary": true}}, "active": true})["id"].(string)
	scimDo("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Engineering",
		"members": []any{map[string]any{"value": uid}}})

	secret := secrets.NewToken("idbs")
	app, err := st1.CreateApplication(bg, store.Application{Name: "app", SecretHash: secrets.HashToken(secret), RedirectURIs: []string{"https://app.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	prov, err := oidc.NewProvider(bg, n1.URL)
	if err != nil {
		t.Fatal(err)
	}
	oc := oauth2.Config{ClientID: app.ID, ClientSecret: secret, Endpoint: prov.Endpoint(), RedirectURL: "https://app.example/cb",
		Scopes: []string{oidc.ScopeOpenID, "email", "groups", oidc.ScopeOfflineAccess}}

	// login runs the authorization code flow in a fresh browser and returns
	// the code, or "" when the broker refused.
	login := func() string {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		b := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if r.URL.Host == "app.example" {
				return http.ErrUseLastResponse
			}
			return nil
		}}
		res, err := b.Get(oc.AuthCodeURL("st8", oidc.Nonce("n0nce"), oauth2.SetAuthURLParam("login_hint", "alice@acme.test")))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, err := res.Location()
		if err != nil {
			return "" // a page, not a redirect to the app
		}
		return loc.Query().Get("code")
	}
	introspect := func(n *node, tok string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", n.URL+broker.PathIntrospect, strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(app.ID, secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	code := login()
	if code == "" {
		t.Fatal("the provisioned user could not sign in")
	}
	tok, err := oc.Exchange(bg, code)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: app.ID}).Verify(bg, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Groups []string `json:"groups"`
	}
	_ = idt.Claims(&claims)
	// One person, one user: the SSO login is the SCIM user, with its groups.
	if idt.Subject != uid || len(claims.Groups) != 1 || claims.Groups[0] != "Engineering" {
		t.Fatalf("sub %s groups %v, want %s [Engineering]", idt.Subject, claims.Groups, uid)
	}
	if introspect(n2, tok.AccessToken)["active"] != true {
		t.Fatal("node 2 does not see the session")
	}

	// Entra's deactivation; the revocation is part of the request.
	scimDo("PATCH", "/Users/"+uid, map[string]any{"schemas": []string{scim.SchemaPatchOp},
		"Operations": []any{map[string]any{"op": "Replace", "path": "active", "value": "False"}}})
	deadline := time.Now().Add(20 * time.Second)
	for introspect(n2, tok.AccessToken)["active"] != false {
		if time.Now().After(deadline) {
			t.Fatal("node 2 still says active 20 s after the deprovisioning answered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := (&oauth2.Config{ClientID: app.ID, ClientSecret: secret, Endpoint: oauth2.Endpoint{TokenURL: n2.URL + broker.PathToken}}).
		TokenSource(bg, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("node 2 refreshed a deprovisioned user's token")
	}
	if login() != "" {
		t.Fatal("a deactivated user signed in again")
	}

	// Reactivated by the directory, the user signs in again, as the same user.
	scimDo("PATCH", "/Users/"+uid, map[string]any{"schemas": []string{scim.SchemaPatchOp},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": true}}}})
	code = login()
	if code == "" {
		t.Fatal("the reactivated user could not sign in")
	}
	tok, err = oc.Exchange(bg, code)
	if err != nil {
		t.Fatal(err)
	}
	if idt, err = prov.Verifier(&oidc.Config{ClientID: app.ID}).Verify(bg, tok.Extra("id_token").(string)); err != nil || idt.Subject != uid {
		t.Fatalf("after reactivation: sub %v, %v", idt, err)
	}

	// DELETE ends the new session too.
	req, _ := http.NewRequest("DELETE", n1.SCIM.BaseURL(dir.ID)+"/Users/"+uid, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", res, err)
	}
	res.Body.Close()
	deadline = time.Now().Add(20 * time.Second)
	for introspect(n2, tok.AccessToken)["active"] != false {
		if time.Now().After(deadline) {
			t.Fatal("node 2 still says active 20 s after the user was deleted")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Re-created under the same userName, the person is a user again; the
	// deleted user's tokens stay dead on both nodes, and so does its
	// refresh token.
	old := tok
	uid2 := scimDo("POST", "/Users", map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "alice@acme.test", "externalId": "00u-alice",
		"emails": []any{map[string]any{"value": "alice@acme.test", "primary": true}}, "active": true})["id"].(string)
	for _, n := range []*node{n1, n2} {
		if introspect(n, old.AccessToken)["active"] != false {
			t.Fatalf("%s: the deleted user's access token is active again once the user is re-created", n.URL)
		}
		if got := introspect(n, old.RefreshToken)["active"]; got != false {
			t.Fatalf("%s: the deleted user's refresh token introspects %v once the user is re-created", n.URL, got)
		}
	}
	if _, err := (&oauth2.Config{ClientID: app.ID, ClientSecret: secret, Endpoint: oauth2.Endpoint{TokenURL: n2.URL + broker.PathToken}}).
		TokenSource(bg, &oauth2.Token{RefreshToken: old.RefreshToken}).Token(); err == nil {
		t.Fatal("the deleted user's refresh token works once the user is re-created")
	}
	code = login()
	if code == "" {
		t.Fatal("the re-created user could not sign in")
	}
	tok, err = oc.Exchange(bg, code)
	if err != nil {
		t.Fatal(err)
	}
	if idt, err = prov.Verifier(&oidc.Config{ClientID: app.ID}).Verify(bg, tok.Extra("id_token").(string)); err != nil || idt.Subject != uid2 {
		t.Fatalf("after re-creation: sub %v (want the new user %s), %v", idt.Subject, uid2, err)
	}
	t.Logf("re-created user %s (deleted %s)", uid2, uid)
}
