package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestRevocationSurvivesRedisOutage is issue 9's first finding as a test:
// two brokers on one PostgreSQL and a Redis of the test's own. A user signs
// in through node A; Redis is killed; the user is deprovisioned over SCIM
// (then, signed in again, their sessions revoked by an operator; then their
// tenant deleted). Each call must succeed (its revocation is queued with
// the change) or fail whole, never answer 500 with the change made. Once
// Redis is back, node B must find the old access token inactive, refuse
// the refresh token and answer /userinfo 401.
func TestRevocationSurvivesRedisOutage(t *testing.T) {
	t.Parallel()
	rs := sessionstest.StartServer(t)
	env := productionEnv(t, rs.URL())
	nodes := startNodes(t, env, 2)
	a, b := nodes[0], nodes[1]

	c := newRPClient(t, a, "Revoked", nil)
	var tenants struct {
		Data []tenantJSON `json:"data"`
	}
	if code := a.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) != 1 {
		t.Fatalf("GET /tenants = %d, %+v; want the dev tenant", code, tenants)
	}
	tenantID := tenants.Data[0].ID
	var dir struct {
		SCIMBaseURL string `json:"scim_base_url"`
		BearerToken string `json:"bearer_token"`
	}
	if code := a.do("POST", "/api/v1/tenants/"+tenantID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}

	// outage runs change with Redis down, then brings Redis back and
	// checks that the session of tok ended on node B.
	outage := func(name string, tok tokens, change func() (int, string)) {
		t.Helper()
		if !c.active(b, tok.AccessToken) {
			t.Fatalf("%s: node B does not see the fresh session", name)
		}
		rs.Kill()
		code, body := change()
		if code/100 != 2 && code != http.StatusServiceUnavailable {
			t.Errorf("%s with Redis down = %d %s; want success (revocation queued) or 503", name, code, body)
		}
		// Meanwhile nothing that needs the session store pretends: 503
		// with Retry-After, in OAuth's error format.
		req, _ := http.NewRequest("POST", b.base+"/oauth/token", strings.NewReader(url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.secret))
		if resp, err := b.client.Do(req); err != nil {
			t.Fatal(err)
		} else {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
				!strings.Contains(string(raw), `"temporarily_unavailable"`) {
				t.Errorf("%s: refresh with Redis down = %d (Retry-After %q) %s; want 503 temporarily_unavailable with Retry-After",
					name, resp.StatusCode, resp.Header.Get("Retry-After"), raw)
			}
		}
		rs.Start()
		// The revocation is applied within a second of Redis returning; a
		// refresh that slips into that second must die with the session.
		live := []tokens{tok}
		deadline := time.Now().Add(20 * time.Second)
		for len(live) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: 20 s after Redis returned, node B still honours %d token sets", name, len(live))
			}
			next := live[:0]
			for _, tk := range live {
				var fresh tokens
				refreshed := c.refreshInto(b, tk.RefreshToken, &fresh) == http.StatusOK
				if refreshed {
					next = append(next, fresh)
				}
				if refreshed || c.active(b, tk.AccessToken) || c.userinfo(b, tk.AccessToken) != http.StatusUnauthorized {
					next = append(next, tokens{AccessToken: tk.AccessToken})
				}
			}
			live = next
			time.Sleep(100 * time.Millisecond)
		}
		// Node A's Redis client may take a moment to redial.
		waitStatus(t, a, "/readyz", http.StatusOK, func(healthJSON) bool { return true })
	}

	// 1. SCIM DELETE of a user with a live session.
	tok := c.login("alice@example.com")
	scim := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, dir.SCIMBaseURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+dir.BearerToken)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	code, body := scim("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@example.com",`+
		`"active":true,"emails":[{"value":"alice@example.com","primary":true}]}`)
	var u struct{ ID string }
	if err := json.Unmarshal([]byte(body), &u); code != http.StatusCreated || err != nil || u.ID != tok.sub(t) {
		t.Fatalf("SCIM create = %d %s; want the signed-in user %s adopted", code, body, tok.sub(t))
	}
	outage("SCIM DELETE", tok, func() (int, string) { return scim("DELETE", "/Users/"+u.ID, "") })
	if code, _ := scim("GET", "/Users/"+u.ID, ""); code != http.StatusNotFound {
		t.Fatalf("SCIM GET after the delete = %d, want 404", code)
	}

	// 2. The operator's revoke_sessions.
	tok = c.login("alice@example.com")
	outage("revoke_sessions", tok, func() (int, string) {
		return a.do("POST", "/api/v1/users/"+tok.sub(t)+"/revoke_sessions", e2eBootstrapKey, nil, nil), ""
	})

	// 3. Deleting the tenant.
	tok = c.login("alice@example.com")
	outage("tenant DELETE", tok, func() (int, string) {
		return a.do("DELETE", "/api/v1/tenants/"+tenantID, e2eBootstrapKey, nil, nil), ""
	})
	if code := a.do("GET", "/api/v1/tenants/"+tenantID, e2eBootstrapKey, nil, nil); code != http.StatusNotFound {
		t.Fatalf("GET tenant after delete = %d, want 404", code)
	}
}

// rpClient is a confidential application signing users in through a
// broker running --dev (its SAML test IdP) and using their tokens.
// newRPClient registers an application named name on node n (redirect URI
// https://app.example/cb, plus the fields of extra) and returns its
// client, with a new browser for each login.
func newRPClient(t *testing.T, n *node, name string, extra map[string]any) *rpClient {
	t.Helper()
	body := map[string]any{"name": name, "redirect_uris": []string{"https://app.example/cb"}}
	maps.Copy(body, extra)
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code := n.do("POST", "/api/v1/applications", e2eBootstrapKey, body, &app); code != http.StatusCreated {
		t.Fatalf("POST /applications = %d", code)
	}
	return &rpClient{t: t, node: n, clientID: app.ClientID, secret: app.ClientSecret}
}

type rpClient struct {
	t                *testing.T
	node             *node
	clientID, secret string
	// jar, when set, is the browser's: its SSO cookie signs the user in
	// to every application sharing it. Otherwise each login is a new
	// browser.
	jar http.CookieJar
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// sub reads the subject of the id_token (its signature is the broker's
// business in other tests).
func (tk tokens) sub(t *testing.T) string {
	parts := strings.Split(tk.IDToken, ".")
	if len(parts) != 3 {
		t.Fatalf("id_token %q", tk.IDToken)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Sub string }
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.Sub
}

// login runs the code flow for email through the dev IdP and exchanges
// the code.
func (c *rpClient) login(email string) tokens {
	t := c.t
	t.Helper()
	code := c.authorize(email)
	var tk tokens
	status, raw := c.post(c.node, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://app.example/cb"}}, &tk)
	if status != http.StatusOK || tk.RefreshToken == "" {
		t.Fatalf("code exchange = %d %s", status, raw)
	}
	return tk
}

// authorize runs the code flow for email through the dev IdP up to the
// authorization code.
func (c *rpClient) authorize(email string) string {
	c.t.Helper()
	return c.authorizeVia(nil, email)
}

// authorizeVia is authorize with the browser's requests sent through rt
// (nil: the default transport).
func (c *rpClient) authorizeVia(rt http.RoundTripper, email string) string {
	t := c.t
	t.Helper()
	var jar http.CookieJar = c.jar
	if jar == nil {
		jar, _ = cookiejar.New(nil)
	}
	var code string
	br := &http.Client{Jar: jar, Transport: rt, Timeout: 10 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "app.example" {
			code = r.URL.Query().Get("code")
			return http.ErrUseLastResponse
		}
		return nil
	}}
	read := func(resp *http.Response, err error) (string, *url.URL) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.Request.URL
	}
	attr := func(page, re string) string {
		if m := regexp.MustCompile(re).FindStringSubmatch(page); m != nil {
			return html.UnescapeString(m[1])
		}
		return ""
	}
	q := url.Values{"client_id": {c.clientID}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"},
		"scope": {"openid email offline_access"}, "state": {"st8"}, "nonce": {"n0nce"}, "login_hint": {email}}
	page, at := read(br.Get(c.node.base + "/authorize?" + q.Encode()))
	for step := 0; code == "" && step < 5; step++ {
		switch {
		case attr(page, `name="return" value="([^"]+)"`) != "": // the dev IdP's user picker
			page, at = read(br.PostForm(c.node.base+"/dev/idp/login", url.Values{"user": {strings.Split(email, "@")[0]},
				"return": {attr(page, `name="return" value="([^"]+)"`)}}))
		case strings.Contains(page, "SAMLResponse"):
			form := url.Values{}
			for _, m := range regexp.MustCompile(`name="(\w+)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
				form.Set(m[1], html.UnescapeString(m[2]))
			}
			action, _ := at.Parse(attr(page, `action="([^"]+)"`))
			page, at = read(br.PostForm(action.String(), form))
		case attr(page, `name="id" value="([^"]+)"`) != "": // the broker's email page
			action, _ := at.Parse(attr(page, `action="([^"]+)"`))
			page, at = read(br.PostForm(action.String(), url.Values{"id": {attr(page, `name="id" value="([^"]+)"`)}, "email": {email}}))
		default:
			t.Fatalf("login: stuck at %s:\n%s", at, page)
		}
	}
	if code == "" {
		t.Fatalf("login: no code; last page %s:\n%s", at, page)
	}
	return code
}

func (c *rpClient) post(n *node, path string, form url.Values, out any) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", n.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.secret))
	resp, err := n.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(raw, out)
	}
	return resp.StatusCode, string(raw)
}

// active introspects tok on node n; a 503 (the session store still down)
// counts as not active.
func (c *rpClient) active(n *node, tok string) bool {
	var out struct{ Active bool }
	status, _ := c.post(n, "/oauth/introspect", url.Values{"token": {tok}}, &out)
	return status == http.StatusOK && out.Active
}

// refreshInto refreshes rt on node n (an empty rt is refused) and decodes
// the answer into out.
func (c *rpClient) refreshInto(n *node, rt string, out *tokens) int {
	if rt == "" {
		return http.StatusBadRequest
	}
	status, _ := c.post(n, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, out)
	return status
}

func (c *rpClient) userinfo(n *node, at string) int {
	req, _ := http.NewRequest("GET", n.base+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := n.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestBackchannelLogoutReachesANewApp: an application created a moment
// ago, a user signing in to it, the user deprovisioned over SCIM within a
// second: the application receives a logout_token signed by the broker
// for that session (issue 9: the list of back-channel applications was
// cached, and a new one got nothing).
func TestBackchannelLogoutReachesANewApp(t *testing.T) {
	t.Parallel()
	got := make(chan string, 4)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil {
			got <- r.PostForm.Get("logout_token")
		}
	}))
	defer rcv.Close()
	a := startBroker(t, map[string]string{
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envBootstrapAPIKey: e2eBootstrapKey,
	}, "--dev")
	var tenants struct {
		Data []tenantJSON `json:"data"`
	}
	if code := a.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) != 1 {
		t.Fatalf("GET /tenants = %d", code)
	}
	var dir struct {
		SCIMBaseURL string `json:"scim_base_url"`
		BearerToken string `json:"bearer_token"`
	}
	if code := a.do("POST", "/api/v1/tenants/"+tenants.Data[0].ID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	// Round 0 warms whatever a node might cache about applications; round
	// 1 creates its application just before the sign-in.
	for round := range 2 {
		var app struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if code := a.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{
			"name": fmt.Sprintf("Fresh %d", round), "redirect_uris": []string{"https://app.example/cb"}, "backchannel_logout_uri": rcv.URL,
		}, &app); code != http.StatusCreated {
			t.Fatalf("POST /applications = %d", code)
		}
		c := &rpClient{t: t, node: a, clientID: app.ClientID, secret: app.ClientSecret}
		tok := c.login("alice@example.com")
		sid := claim(t, tok.IDToken, "sid")

		req, _ := http.NewRequest("POST", dir.SCIMBaseURL+"/Users", strings.NewReader(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],`+
			`"userName":"alice@example.com","active":true,"emails":[{"value":"alice@example.com","primary":true}]}`))
		req.Header.Set("Authorization", "Bearer "+dir.BearerToken)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var u struct{ ID string }
		_ = json.NewDecoder(resp.Body).Decode(&u)
		resp.Body.Close()
		req, _ = http.NewRequest("DELETE", dir.SCIMBaseURL+"/Users/"+u.ID, nil)
		req.Header.Set("Authorization", "Bearer "+dir.BearerToken)
		if resp, err = a.client.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("SCIM DELETE: %v %v", resp, err)
		}
		resp.Body.Close()

		select {
		case lt := <-got:
			// Verified with the broker's published keys, as an application would.
			ks := oidc.NewRemoteKeySet(context.Background(), a.base+"/.well-known/jwks.json")
			payload, err := ks.VerifySignature(context.Background(), lt)
			if err != nil {
				t.Fatalf("logout_token signature: %v", err)
			}
			var lc struct {
				Iss, Aud, Sub, SID string
				Events             map[string]any
			}
			if err := json.Unmarshal(payload, &lc); err != nil {
				t.Fatal(err)
			}
			if lc.Iss != a.base || lc.Aud != app.ClientID || lc.SID != sid || lc.Sub != u.ID ||
				lc.Events["http://schemas.openid.net/event/backchannel-logout"] == nil {
				t.Fatalf("logout_token claims %+v; want iss %s aud %s sid %s sub %s", lc, a.base, app.ClientID, sid, u.ID)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("round %d: no back-channel logout within 15 s of the deprovisioning", round)
		}
	}
}

// claim reads one string claim of a JWT without verifying it.
func claim(t *testing.T, jwt, name string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[name].(string)
	return s
}
