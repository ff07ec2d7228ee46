package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/idbroker/idbroker/admin-portal/domainverify"
	"github.com/idbroker/idbroker/admin-portal/portal"
	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/cmd/idbroker/internal/devmode"
	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/connections/saml"
	"github.com/idbroker/idbroker/connections/saml/samltest"
	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/internal/dnstest"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/safehttp"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/signing"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// portalEnv is what `serve --dev` runs plus the self-serve portal, SCIM
// and a loopback DNS server for domain checks, in process.
type portalEnv struct {
	issuer string
	dev    *devmode.Dev
	st     store.Store
	reg    *connections.Registry
	portal *portal.Portal
	dns    *dnstest.Server
}

func startPortal(t *testing.T) *portalEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st := storetest.SQLite(t)
	mem := sessions.NewMemory()
	var h http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	issuer := ts.URL

	keys, err := signing.NewManager(st, signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	reg := connections.NewRegistry(connections.Config{Types: connections.Types{saml.Name: saml.Type{NewKey: samltest.Keys()}, oidc.Name: oidc.New()}, Issuer: issuer, Store: st, Once: mem, Sessions: mem,
		HTTPClient: safehttp.NewClient(safehttp.Options{AllowPrivate: true}), AllowInsecureURLs: true, CacheTTL: -1})
	p, err := broker.New(broker.Config{Issuer: issuer, Store: st, Sessions: mem, Once: mem, Keys: keys, Connectors: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Joined before the store (cleaned up later) closes under it.
	t.Cleanup(func() { cancel(); p.Wait() })
	dirs, err := scim.New(scim.Config{Issuer: issuer, Store: st, Sessions: mem})
	if err != nil {
		t.Fatal(err)
	}
	dns := dnstest.Start(t)
	resolver, err := domainverify.NewResolver(dns.Addr)
	if err != nil {
		t.Fatal(err)
	}
	self, err := portal.New(portal.Config{Issuer: issuer, Store: st, Connections: reg, SCIMBaseURL: dirs.BaseURL,
		Resolver: resolver, Product: "Acme HR"})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := devmode.Seed(ctx, st, reg, issuer)
	if err != nil {
		t.Fatal(err)
	}
	srv := httpserver.New(httpserver.Config{})
	e := srv.Echo()
	p.Mount(e)
	reg.Mount(e, self.Complete(p.Complete))
	dirs.Mount(e)
	self.Mount(e)
	dev.Mount(e)
	h = srv.Handler()
	return &portalEnv{issuer: issuer, dev: dev, st: st, reg: reg, portal: self, dns: dns}
}

// link makes a portal link for the dev tenant.
func (pe *portalEnv) link(t *testing.T, tenantID, intent string) string {
	t.Helper()
	u, _, err := pe.portal.CreateLink(store.WithTenant(context.Background(), tenantID), intent, pe.issuer+"/dev/app")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// failures is where a failing browser test leaves its screenshot
// (git-ignored).
const failures = "browser-failures"

// shot saves a screenshot for the README when IDBROKER_DOC_SCREENSHOTS
// names a directory (docs/images, from the repository root): they are
// taken on purpose, not on every run.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("IDBROKER_DOC_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	browsertest.Screenshot(t, ctx, dir, name)
}

// fail saves a screenshot of the tab in the git-ignored failures folder
// and stops the test.
func fail(t *testing.T, ctx context.Context, format string, args ...any) {
	t.Helper()
	os.MkdirAll(failures, 0o755)
	path := browsertest.Screenshot(t, ctx, failures, filepath.Base(t.Name())+".png")
	args = append(args, path)
	t.Fatalf(format+" (screenshot %s)", args...)
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	// A step that hangs fails on its own, leaving time for the screenshot.
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := browsertest.Do(sctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		fail(t, ctx, "%s at %s: %v", what, loc, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		fail(t, ctx, "read %s: %v", sel, err)
	}
	return s
}

func value(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		fail(t, ctx, "read %s: %v", sel, err)
	}
	return s
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, _ := chromedp.Run(ctx, chromedp.Location())
	return s
}

func attr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a, err := chromedp.Run(sctx, chromedp.Attributes(chromedp.CSS(sel)))
	if err != nil {
		fail(t, ctx, "attributes of %s: %v", sel, err)
	}
	return a[name]
}

// selfSignedPEM is a certificate of a fresh key, valid from notBefore to
// notAfter.
func selfSignedPEM(t *testing.T, cn string, notBefore, notAfter time.Time) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// testOP is a minimal OpenID Provider for the OIDC wizard: discovery,
// JWKS, an authorize endpoint that signs Carol in at once, and a token
// endpoint that checks the client and PKCE.
type testOP struct {
	srv    *httptest.Server
	issuer string
	signer jose.Signer
	mu     sync.Mutex
	codes  map[string][2]string // code → nonce, challenge
}

func startOP(t *testing.T, clientID, secret, email string) *testOP {
	t.Helper()
	return startOPWith(t, "", clientID, secret, map[string]any{"email": email, "email_verified": true, "given_name": "Carol", "family_name": "Clark", "groups": []string{"Finance"}})
}

// startOPWith is startOP with its issuer at path under the server (an
// Okta custom authorization server's /oauth2/default) and the id_token
// carrying claims beside the protocol's own.
func startOPWith(t *testing.T, path, clientID, secret string, claims map[string]any) *testOP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	op := &testOP{codes: map[string][2]string{}}
	op.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	mux := http.NewServeMux()
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	iss := op.srv.URL + path
	op.issuer = iss
	mux.HandleFunc(path+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token", "jwks_uri": iss + "/jwks",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc(path+"/jwks", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(jwks) })
	mux.HandleFunc(path+"/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		code := secrets.NewToken("")
		op.mu.Lock()
		op.codes[code] = [2]string{q.Get("nonce"), q.Get("code_challenge")}
		op.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc(path+"/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, sec, ok := r.BasicAuth()
		if !ok {
			id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		op.mu.Lock()
		c, found := op.codes[r.PostForm.Get("code")]
		delete(op.codes, r.PostForm.Get("code"))
		op.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		w.Header().Set("Content-Type", "application/json")
		if !found || id != clientID || sec != secret || base64.RawURLEncoding.EncodeToString(sum[:]) != c[1] {
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		now := time.Now()
		all := map[string]any{"iss": iss, "sub": "carol-1", "aud": clientID, "exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "nonce": c[0]}
		for k, v := range claims {
			all[k] = v
		}
		idt, _ := jwt.Signed(op.signer).Claims(all).Serialize()
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": idt})
	})
	return op
}
