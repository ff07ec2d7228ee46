package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/idbroker/idbroker/internal/testdb"
)

// tileIdP is an IdP with a dashboard: crewjam/saml's IdentityProvider in
// process, which signs user in to the service provider it is asked for,
// unsolicited, as an Okta or Entra tile does. It counts the AuthnRequests
// it receives: a sign-in answered from the broker's session sends none.
type tileIdP struct {
	idp   *saml.IdentityProvider
	srv   *httptest.Server
	user  string
	authn atomic.Int32
}

func newTileIdP(t *testing.T, user string) *tileIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tile idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	s := &tileIdP{user: user}
	mux := http.NewServeMux()
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	md, _ := url.Parse(s.srv.URL + "/metadata")
	sso, _ := url.Parse(s.srv.URL + "/sso")
	s.idp = &saml.IdentityProvider{Key: key, Signer: key, Certificate: cert, MetadataURL: *md, SSOURL: *sso,
		SessionProvider: s, ServiceProviderProvider: s}
	mux.HandleFunc("/sso", func(w http.ResponseWriter, r *http.Request) {
		s.authn.Add(1)
		s.idp.ServeSSO(w, r)
	})
	return s
}

func (s *tileIdP) GetSession(w http.ResponseWriter, r *http.Request, req *saml.IdpAuthnRequest) *saml.Session {
	local, _, _ := strings.Cut(s.user, "@")
	return &saml.Session{ID: "sess-" + local, CreateTime: time.Now(), ExpireTime: time.Now().Add(time.Hour), Index: "1",
		NameID: "00u-" + local, NameIDFormat: string(saml.PersistentNameIDFormat), UserEmail: s.user,
		UserGivenName: "Alice", UserSurname: "Example"}
}

// GetServiceProvider reads the SP metadata the broker publishes beside
// its entity id, as an IdP admin pastes it.
func (s *tileIdP) GetServiceProvider(r *http.Request, id string) (*saml.EntityDescriptor, error) {
	resp, err := http.Get(id + "/metadata")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ed saml.EntityDescriptor
	return &ed, xml.Unmarshal(b, &ed)
}

func (s *tileIdP) metadataXML(t *testing.T) string {
	t.Helper()
	b, err := xml.Marshal(s.idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tile is a click on the dashboard tile of spEntityID: the auto-posting
// form's action and fields.
func (s *tileIdP) tile(t *testing.T, spEntityID, relay string) (string, url.Values) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.idp.ServeIDPInitiated(rec, httptest.NewRequest("GET", s.srv.URL+"/tile", nil), spEntityID, relay)
	page := rec.Body.String()
	form := url.Values{}
	for _, m := range regexp.MustCompile(`name="(\w+)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	m := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(page)
	if rec.Code != http.StatusOK || m == nil || form.Get("SAMLResponse") == "" {
		t.Fatalf("the IdP made no unsolicited response (%d):\n%s", rec.Code, page)
	}
	return html.UnescapeString(m[1]), form
}

// TestIdPInitiatedTile is a dashboard tile end to end, in the binary, on
// both deployments: the IdP's signed unsolicited response through the
// real SAML connection lands the browser at the application's
// initiate_login_uri (303, iss and login_hint); the application's own
// authorization request (PKCE, login_hint, then connection=) gets a code
// without the IdP, whose exchange names the user; a replayed response is
// refused; and the session answers no request for another tenant.
func TestIdPInitiatedTile(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		testIdPInitiatedTile(t, map[string]string{
			envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		})
	})
	t.Run("postgres+redis", func(t *testing.T) {
		t.Parallel()
		testIdPInitiatedTile(t, map[string]string{
			envDatabaseURL: testdb.PostgresURL(t),
			envRedisURL:    ownRedis(t),
			envMasterKey:   testMasterKey,
		})
	})
}

func testIdPInitiatedTile(t *testing.T, env map[string]string) {
	env[envBootstrapAPIKey] = e2eBootstrapKey
	// --dev lets connections reach the loopback IdP over http.
	b := startBroker(t, env, "--dev")
	domain := "tiles-" + randomHex(t, 4) + ".example"
	idp := newTileIdP(t, "alice@"+domain)

	var acme, other struct{ ID string }
	if code := b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Tiles",
		"domains": []map[string]any{{"domain": domain, "verified": true}}}, &acme); code != http.StatusCreated {
		t.Fatalf("create tenant: %d", code)
	}
	if code := b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Other",
		"domains": []map[string]any{{"domain": "other-" + domain, "verified": true}}}, &other); code != http.StatusCreated {
		t.Fatalf("create tenant: %d", code)
	}
	var app struct {
		ID               string  `json:"id"`
		ClientSecret     string  `json:"client_secret"`
		InitiateLoginURI *string `json:"initiate_login_uri"`
	}
	if code := b.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{"name": "CRM",
		"redirect_uris": []string{"https://app.example/cb"}, "initiate_login_uri": "https://app.example/login"}, &app); code != http.StatusCreated {
		t.Fatalf("create application: %d", code)
	}
	var noLanding struct{ ID string }
	if code := b.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{"name": "API",
		"redirect_uris": []string{"https://api.example/cb"}}, &noLanding); code != http.StatusCreated {
		t.Fatalf("create application: %d", code)
	}

	// The landing must be an application with an initiate_login_uri.
	settings := map[string]any{"idp_metadata_xml": idp.metadataXML(t), "allow_idp_initiated": true, "idp_initiated_client_id": noLanding.ID}
	var refused struct {
		Error struct{ Code, Message, Field string } `json:"error"`
	}
	if code := b.do("POST", "/api/v1/tenants/"+acme.ID+"/connections", e2eBootstrapKey,
		map[string]any{"type": "saml", "name": "Okta", "saml": settings}, &refused); code != http.StatusBadRequest ||
		!strings.Contains(refused.Error.Message, "initiate_login_uri") {
		t.Fatalf("a landing without initiate_login_uri: %d %+v, want 400 naming it", code, refused)
	}
	settings["idp_initiated_client_id"] = app.ID
	var conn struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		SAML   struct {
			SPEntityID           string `json:"sp_entity_id"`
			IdPInitiatedClientID string `json:"idp_initiated_client_id"`
		} `json:"saml"`
	}
	if code := b.do("POST", "/api/v1/tenants/"+acme.ID+"/connections", e2eBootstrapKey,
		map[string]any{"type": "saml", "name": "Okta", "saml": settings}, &conn); code != http.StatusCreated ||
		conn.Status != "active" || conn.SAML.IdPInitiatedClientID != app.ID {
		t.Fatalf("create connection: %d %+v", code, conn)
	}

	// The tile: the IdP's unsolicited response, posted by the browser.
	jar, _ := cookiejar.New(nil)
	var landed *url.URL
	var code string
	br := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "app.example" {
			if r.URL.Path == "/login" {
				landed = r.URL
			} else {
				code = r.URL.Query().Get("code")
			}
			return http.ErrUseLastResponse
		}
		return nil
	}}
	acs, form := idp.tile(t, conn.SAML.SPEntityID, "")
	resp, err := br.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || landed == nil {
		t.Fatalf("the tile's response answered %d, want 303 to the initiate_login_uri", resp.StatusCode)
	}
	q := landed.Query()
	if q.Get("iss") != b.base || q.Get("login_hint") != idp.user || q.Has("code") {
		t.Fatalf("landed at %s, want iss=%s and login_hint=%s", landed, b.base, idp.user)
	}

	// The application starts its own sign-in, as for any other.
	verifier := base64.RawURLEncoding.EncodeToString([]byte(randomHex(t, 24)))
	sum := sha256.Sum256([]byte(verifier))
	authorize := func(extra url.Values) (string, *url.URL) {
		t.Helper()
		code = ""
		v := url.Values{"client_id": {app.ID}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"},
			"scope": {"openid email"}, "state": {"st8"}, "nonce": {"n0nce"},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
		for k, vs := range extra {
			v[k] = vs
		}
		resp, err := br.Get(b.base + "/authorize?" + v.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		return code, loc
	}
	rp := &rpClient{t: t, node: b, clientID: app.ID, secret: app.ClientSecret}
	var sub string
	for _, extra := range []url.Values{
		{"login_hint": {q.Get("login_hint")}},
		{"login_hint": {q.Get("login_hint")}, "connection": {conn.ID}},
	} {
		c, loc := authorize(extra)
		if c == "" {
			t.Fatalf("%v: no code (at %v)", extra, loc)
		}
		var tk tokens
		status, raw := rp.post(b, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {c},
			"redirect_uri": {"https://app.example/cb"}, "code_verifier": {verifier}}, &tk)
		if status != http.StatusOK {
			t.Fatalf("exchange: %d %s", status, raw)
		}
		s := tk.sub(t)
		if !strings.HasPrefix(s, "usr_") || (sub != "" && s != sub) {
			t.Fatalf("sub %q (before %q)", s, sub)
		}
		sub = s
	}
	if n := idp.authn.Load(); n != 0 {
		t.Fatalf("the IdP received %d AuthnRequests; the session should have answered", n)
	}
	// Another tenant's request is not answered from this session.
	if c, loc := authorize(url.Values{"tenant": {other.ID}, "prompt": {"none"}}); c != "" || loc == nil || loc.Query().Get("error") != "login_required" {
		t.Fatalf("tenant=%s: code %q at %v, want login_required", other.ID, c, loc)
	}

	// The same response again is a replay: refused, no landing.
	fresh, _ := cookiejar.New(nil)
	landed = nil
	br.Jar = fresh
	resp, err = br.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || landed != nil {
		t.Fatalf("replayed response: %d, landed %v; want 403", resp.StatusCode, landed)
	}
	var evs struct {
		Data []struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		} `json:"data"`
	}
	if code := b.do("GET", "/api/v1/events?tenant_id="+acme.ID+"&limit=100", e2eBootstrapKey, nil, &evs); code != http.StatusOK {
		t.Fatalf("events: %d", code)
	}
	var succeeded, replay bool
	for _, e := range evs.Data {
		succeeded = succeeded || (e.Type == "authentication.succeeded" && strings.Contains(string(e.Data), `"idp_initiated":true`))
		replay = replay || (e.Type == "authentication.failed" && strings.Contains(string(e.Data), `"reason_code":"replay"`))
	}
	if !succeeded || !replay {
		t.Fatalf("events: idp_initiated success %v, replay failure %v", succeeded, replay)
	}

	// What the tenant admin is told when a tile cannot land, through the
	// real connector: no landing application named, then IdP-initiated
	// logins turned off. The user gets the generic page either way.
	refusedWith := func(reasonCode, reasonHas string) {
		t.Helper()
		acs, form := idp.tile(t, conn.SAML.SPEntityID, "")
		br.Jar, _ = cookiejar.New(nil)
		landed = nil
		resp, err := br.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || landed != nil {
			t.Fatalf("%s: %d, landed %v; want 403", reasonCode, resp.StatusCode, landed)
		}
		if code := b.do("GET", "/api/v1/events?tenant_id="+acme.ID+"&events=authentication.failed&limit=100", e2eBootstrapKey, nil, &evs); code != http.StatusOK {
			t.Fatalf("events: %d", code)
		}
		for _, e := range evs.Data {
			if strings.Contains(string(e.Data), `"reason_code":"`+reasonCode+`"`) && strings.Contains(string(e.Data), reasonHas) {
				return
			}
		}
		t.Fatalf("no authentication.failed with reason_code %s and a reason naming %q: %+v", reasonCode, reasonHas, evs.Data)
	}
	patch := func(saml map[string]any) {
		t.Helper()
		if code := b.do("PATCH", "/api/v1/connections/"+conn.ID, e2eBootstrapKey, map[string]any{"saml": saml}, nil); code != http.StatusOK {
			t.Fatalf("PATCH connection %v: %d", saml, code)
		}
	}
	patch(map[string]any{"idp_initiated_client_id": ""})
	refusedWith("no_application_request", "idp_initiated_client_id")
	patch(map[string]any{"allow_idp_initiated": false})
	refusedWith("idp_initiated_not_allowed", "")
}
