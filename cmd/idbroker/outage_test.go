package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/testdb"
)

// answer is one HTTP answer, its body decoded when it is JSON.
type answer struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func call(t *testing.T, b *node, method, url, auth, ctype string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return do(t, b, req)
}

// isSCIMError, isAPIError and isOAuthError tell the three JSON error
// formats apart.
func isSCIMError(a answer, status string) bool {
	s, _ := a.body["schemas"].([]any)
	return len(s) == 1 && s[0] == "urn:ietf:params:scim:api:messages:2.0:Error" && a.body["status"] == status
}

func isAPIError(a answer, code string) bool {
	e, _ := a.body["error"].(map[string]any)
	return e != nil && e["code"] == code && e["message"] != nil
}

func isOAuthError(a answer, code string) bool {
	c, _ := a.body["error"].(string)
	return c == code
}

// TestOutageAnswers503 stops the broker's PostgreSQL (a server of the
// test's own) under it: SCIM writes and operator reads answer 503 with
// Retry-After, each in its own error format, and work again once the
// database is back.
func TestOutageAnswers503(t *testing.T) {
	t.Parallel()
	pg := testdb.StartPostgres(t)
	b, tenant, dir := startWithDirectory(t, map[string]string{
		envDatabaseURL: pg.URL(),
		envMasterKey:   testMasterKey,
	})
	scimCreate := func(name string) answer {
		return dir.pushUser(t, b, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+name+`@acme.example"}`)
	}
	if a := scimCreate("before"); a.status != http.StatusCreated {
		t.Fatalf("SCIM create with the database up: %d %s", a.status, a.raw)
	}

	pg.Stop()
	a := scimCreate("during")
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !isSCIMError(a, "503") {
		t.Errorf("SCIM create with the database down: %d Retry-After %q %s; want 503 with Retry-After in the SCIM error schema",
			a.status, a.header.Get("Retry-After"), a.raw)
	}
	for _, path := range []string{"/api/v1/tenants/" + tenant.ID, "/api/v1/tenants"} {
		a := call(t, b, "GET", b.base+path, "Bearer "+e2eBootstrapKey, "", nil)
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !isAPIError(a, "unavailable") {
			t.Errorf("GET %s with the database down: %d Retry-After %q %s; want 503 unavailable with Retry-After",
				path, a.status, a.header.Get("Retry-After"), a.raw)
		}
	}
	if strings.Contains(b.output.String(), "status=500") {
		t.Errorf("a request answered 500 during the outage:\n%s", b.output)
	}
	// The cause is logged once, not once per refused request: under load
	// an outage wrote thousands of identical lines a second beside the
	// access log's own line for each request.
	for i := range 20 {
		if a := scimCreate(fmt.Sprintf("during%d", i)); a.status != http.StatusServiceUnavailable {
			t.Fatalf("SCIM create %d with the database down: %d %s", i, a.status, a.raw)
		}
	}
	if n := strings.Count(b.output.String(), "scim request failed"); n != 1 {
		t.Errorf("the outage's cause was logged %d times for 21 refused SCIM requests; want once", n)
	}

	pg.Start()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		a := scimCreate("after")
		if a.status == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SCIM create after the database came back: %d %s", a.status, a.raw)
		}
	}
}

// TestOversizedBodiesInEachFormat: a body over the server's limit is 413
// in the format of the surface it was sent to.
func TestOversizedBodiesInEachFormat(t *testing.T) {
	t.Parallel()
	b, _, dir := startWithDirectory(t, nil)
	big := bytes.Repeat([]byte("a"), 2<<20)
	jsonBig := append(append([]byte(`{"name":"`), big...), '"', '}')

	if a := call(t, b, "POST", dir.SCIMBaseURL+"/Users", "Bearer "+dir.BearerToken, "application/scim+json", jsonBig); a.status != 413 || !isSCIMError(a, "413") {
		t.Errorf("SCIM: %d %.300s; want 413 in the SCIM error schema", a.status, a.raw)
	}
	// A group written whole carries its members: its limit is 8 MiB, so
	// 2 MiB reaches SCIM's own checks (a name that long is refused) and
	// only 9 MiB is too large.
	if a := call(t, b, "POST", dir.SCIMBaseURL+"/Groups", "Bearer "+dir.BearerToken, "application/scim+json", jsonBig); a.status != 400 || !isSCIMError(a, "400") {
		t.Errorf("SCIM group of 2 MiB: %d %.300s; want SCIM's 400 for a bad group, not 413", a.status, a.raw)
	}
	hugeGroup := append(append([]byte(`{"displayName":"`), bytes.Repeat([]byte("a"), 9<<20)...), '"', '}')
	if a := call(t, b, "PUT", dir.SCIMBaseURL+"/Groups/grp_01JUNKJUNKJUNKJUNKJUNKJUNK", "Bearer "+dir.BearerToken, "application/scim+json", hugeGroup); a.status != 413 || !isSCIMError(a, "413") {
		t.Errorf("SCIM group of 9 MiB: %d %.300s; want 413 in the SCIM error schema", a.status, a.raw)
	}
	for _, path := range []string{"/oauth/token", "/oauth/revoke", "/oauth/introspect"} {
		form := append([]byte("token="), big...)
		if a := call(t, b, "POST", b.base+path, "", "application/x-www-form-urlencoded", form); a.status != 413 || !isOAuthError(a, "invalid_request") {
			t.Errorf("%s: %d %.300s; want 413 invalid_request OAuth JSON", path, a.status, a.raw)
		}
	}
	if a := call(t, b, "POST", b.base+"/api/v1/tenants", "Bearer "+e2eBootstrapKey, "application/json", jsonBig); a.status != 413 || !isAPIError(a, "payload_too_large") {
		t.Errorf("operator API: %d %.300s; want 413 payload_too_large", a.status, a.raw)
	}
	// Pages: the sign-in page, the ACS a browser posts to, and the
	// portal's and console's forms, which also keep their CSP.
	for _, path := range []string{"/login", "/sso/saml/conn_01JUNKJUNKJUNKJUNKJUNKJUNK/acs", "/portal/signout", "/console/signin"} {
		a := call(t, b, "POST", b.base+path, "", "application/x-www-form-urlencoded", big)
		if a.status != 413 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s %.200s; want 413 as an HTML page", path, a.status, a.header.Get("Content-Type"), a.raw)
		}
		if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q, want frame-ancestors 'none'", path, csp)
		}
	}
}

// TestOAuthDuringDatabaseOutage stops the broker's PostgreSQL (a server of
// the test's own) under a signed-in application: the token endpoint (code
// exchange and refresh) and /userinfo answer 503 with Retry-After in
// OAuth's error JSON, never 500, and work again once it is back.
func TestOAuthDuringDatabaseOutage(t *testing.T) {
	t.Parallel()
	pg := testdb.StartPostgres(t)
	b := startBroker(t, map[string]string{
		envDatabaseURL:     pg.URL(),
		envMasterKey:       testMasterKey,
		envBootstrapAPIKey: e2eBootstrapKey,
	}, "--dev")
	c := newRPClient(t, b, "Outage", nil)
	tok := c.login("alice@example.com")
	code := c.authorize("alice@example.com") // exchanged during the outage
	if got := c.userinfo(b, tok.AccessToken); got != http.StatusOK {
		t.Fatalf("userinfo with the database up = %d", got)
	}

	pg.Stop()
	unavailable := func(what string, a answer) {
		t.Helper()
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !isOAuthError(a, "temporarily_unavailable") ||
			!strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s with the database down: %d Retry-After %q %s; want 503 temporarily_unavailable with Retry-After",
				what, a.status, a.header.Get("Retry-After"), a.raw)
		}
	}
	token := func(form url.Values) answer {
		req, _ := http.NewRequest("POST", b.base+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.secret))
		return do(t, b, req)
	}
	userinfo := func() answer {
		req, _ := http.NewRequest("GET", b.base+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		return do(t, b, req)
	}
	// A user known active a moment ago is believed for a few seconds
	// (the broker's active-user cache): /userinfo may answer 200 until
	// then, and must answer 503 once it needs the database. By then the
	// token endpoint needs it too.
	a := userinfo()
	for deadline := time.Now().Add(30 * time.Second); a.status == http.StatusOK && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		a = userinfo()
	}
	unavailable("userinfo", a)
	unavailable("code exchange", token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example/cb"}}))
	unavailable("refresh", token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}))
	if strings.Contains(b.output.String(), "status=500") {
		t.Errorf("a request answered 500 during the outage:\n%s", b.output)
	}

	pg.Start()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if a := userinfo(); a.status == http.StatusOK {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("userinfo after the database came back: %d %s", a.status, a.raw)
		}
	}
	var fresh tokens
	if status := c.refreshInto(b, tok.RefreshToken, &fresh); status != http.StatusOK {
		t.Fatalf("refresh after the database came back = %d", status)
	}
}

// do sends req through b's client and reads the answer.
func do(t *testing.T, b *node, req *http.Request) answer {
	t.Helper()
	res, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// TestSSODuringDatabaseOutage stops the broker's PostgreSQL (a server of
// the test's own): a connection's SP metadata and its ACS answer 503 with
// Retry-After on an HTML page. They answered 404, as for a connection that
// does not exist: an IdP reading the metadata was told the connection was
// gone, and a user whose IdP had just signed them in was told the sign-in
// failed for good instead of to try again.
func TestSSODuringDatabaseOutage(t *testing.T) {
	t.Parallel()
	pg := testdb.StartPostgres(t)
	b := startBroker(t, map[string]string{
		envDatabaseURL: pg.URL(),
		envMasterKey:   testMasterKey,
	}, "--dev")
	// A well-formed id that no cache holds: with the database down the
	// broker cannot know whether it exists.
	conn := "conn_01M96ZZZZZZZZZZZZZZZZZZZZZ"
	if a := call(t, b, "GET", b.base+"/sso/saml/"+conn+"/metadata", "", "", nil); a.status != http.StatusNotFound {
		t.Fatalf("metadata of an unknown connection with the database up: %d, want 404", a.status)
	}

	pg.Stop()
	form := []byte(url.Values{"SAMLResponse": {"PHg+"}, "RelayState": {"x"}}.Encode())
	for _, a := range []struct {
		what string
		a    answer
	}{
		{"SP metadata", call(t, b, "GET", b.base+"/sso/saml/"+conn+"/metadata", "", "", nil)},
		{"ACS", call(t, b, "POST", b.base+"/sso/saml/"+conn+"/acs", "", "application/x-www-form-urlencoded", form)},
		{"OIDC callback", call(t, b, "GET", b.base+"/sso/oidc/"+conn+"/callback?state=x&code=y", "", "", nil)},
	} {
		if a.a.status != http.StatusServiceUnavailable || a.a.header.Get("Retry-After") == "" ||
			!strings.HasPrefix(a.a.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s with the database down: %d Retry-After %q %s; want a 503 page with Retry-After",
				a.what, a.a.status, a.a.header.Get("Retry-After"), a.a.header.Get("Content-Type"))
		}
	}
	if strings.Contains(b.output.String(), "status=500") {
		t.Errorf("a request answered 500 during the outage:\n%s", b.output)
	}
}

// TestOAuthColdClientDuringDatabaseOutage stops the broker's PostgreSQL
// before the node has read an application (a node just started, or past
// its application cache): the token and revocation endpoints, which must
// authenticate the client from the database, answer 503
// temporarily_unavailable with Retry-After, and /authorize a 503 page
// with Retry-After. They answered 500 server_error, and the page had no
// Retry-After.
func TestOAuthColdClientDuringDatabaseOutage(t *testing.T) {
	t.Parallel()
	pg := testdb.StartPostgres(t)
	b := startBroker(t, map[string]string{
		envDatabaseURL:     pg.URL(),
		envMasterKey:       testMasterKey,
		envBootstrapAPIKey: e2eBootstrapKey,
	})
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code := b.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{
		"name": "Cold", "redirect_uris": []string{"https://app.example/cb"},
	}, &app); code != http.StatusCreated {
		t.Fatalf("POST /applications = %d", code)
	}
	pg.Stop()
	for _, f := range []struct{ path, form string }{
		{"/oauth/token", "grant_type=refresh_token&refresh_token=x"},
		{"/oauth/revoke", "token=x"},
	} {
		req, _ := http.NewRequest("POST", b.base+f.path, strings.NewReader(f.form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(app.ClientID), url.QueryEscape(app.ClientSecret))
		a := do(t, b, req)
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !isOAuthError(a, "temporarily_unavailable") {
			t.Errorf("%s with the database down: %d Retry-After %q %s; want 503 temporarily_unavailable with Retry-After",
				f.path, a.status, a.header.Get("Retry-After"), a.raw)
		}
	}
	q := url.Values{"client_id": {app.ClientID}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"}, "scope": {"openid"}}
	a := call(t, b, "GET", b.base+"/authorize?"+q.Encode(), "", "", nil)
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Errorf("/authorize with the database down: %d Retry-After %q %s; want a 503 page with Retry-After",
			a.status, a.header.Get("Retry-After"), a.header.Get("Content-Type"))
	}
	if strings.Contains(b.output.String(), "status=500") {
		t.Errorf("a request answered 500 during the outage:\n%s", b.output)
	}
}
