package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestSignInAccessLogsNameTheTenant: the access log line of each request of
// a sign-in that names its tenant (the routed email page, the IdP's answer
// at the ACS, the application's code exchange) carries tenant_id, as the
// operator API's and SCIM's lines do, so that an operator can follow one
// tenant's sign-ins in the logs. Every line is JSON with
// IDBROKER_LOG_FORMAT=json, and none holds the IdP's SAML answer.
func TestSignInAccessLogsNameTheTenant(t *testing.T) {
	t.Parallel()
	b := startBroker(t, map[string]string{
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envLogLevel:    "debug",
		envLogFormat:   "json",
	}, "--dev")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	acs, form := devIdPAnswer(t, c, b, nil)
	resp, err := c.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the sign-in ended with %d at %s", resp.StatusCode, resp.Request.URL)
	}
	b.stop()

	tenants := map[string]map[string]bool{} // route → tenant ids of its lines
	for _, line := range strings.Split(strings.TrimSpace(b.output.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("a log line is not JSON (%v): %s", err, line)
			continue
		}
		if rec["msg"] != "http request" {
			continue
		}
		route, _ := rec["route"].(string)
		if tenants[route] == nil {
			tenants[route] = map[string]bool{}
		}
		tn, _ := rec["tenant_id"].(string)
		tenants[route][tn] = true
	}
	for _, route := range []string{"/sso/saml/:conn/acs", "/oauth/token"} {
		got := tenants[route]
		if len(got) != 1 || got[""] {
			t.Errorf("access log lines of %s name tenants %v, want the demo tenant", route, got)
			continue
		}
		for tn := range got {
			if !strings.HasPrefix(tn, "tnt_") {
				t.Errorf("access log lines of %s name tenant %q", route, tn)
			}
		}
	}
	// The email page routes the sign-in: its last answer names the tenant.
	if got := tenants["/login"]; !hasTenant(got) {
		t.Errorf("no access log line of /login names the tenant: %v", got)
	}
	saml := form.Get("SAMLResponse")
	if len(saml) < 64 {
		t.Fatalf("no SAMLResponse in the IdP's answer: %v", form)
	}
	if out := b.output.String(); strings.Contains(out, saml[len(saml)/2:len(saml)/2+32]) {
		t.Errorf("the log holds part of the IdP's SAML answer")
	}
}

func hasTenant(m map[string]bool) bool {
	for tn := range m {
		if strings.HasPrefix(tn, "tnt_") {
			return true
		}
	}
	return false
}

// TestRedisDownLogsStayJSONAndFew: while Redis is down, the Redis client
// library's own complaints (a failed dial per request) go through the
// broker's logger, so a JSON log stays JSON, and at most one such line is
// written every 10 s rather than one per request.
func TestRedisDownLogsStayJSONAndFew(t *testing.T) {
	t.Parallel()
	rs := sessionstest.StartServer(t)
	b := startBroker(t, map[string]string{
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envRedisURL:        rs.URL(),
		envBootstrapAPIKey: e2eBootstrapKey,
		envLogFormat:       "json",
	})
	rs.Kill()
	for range 20 {
		// The operator API's rate limiter asks Redis first (and lets the
		// request through when it cannot).
		b.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, nil)
	}
	b.stop()
	redisLines := 0
	for _, line := range strings.Split(strings.TrimSpace(b.output.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("a log line is not JSON (%v): %s", err, line)
			continue
		}
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "redis client: ") {
			redisLines++
		}
	}
	if redisLines == 0 || redisLines > 2 {
		t.Errorf("%d lines of the Redis client for 20 requests in a few seconds, want 1 or 2:\n%s", redisLines, b.output)
	}
}

// TestSignInFailuresCountedByReason: a sign-in refused after the IdP
// answered (here an assertion altered on its way, so its signature does
// not verify) is counted in idbroker_sign_in_failures_total by its
// reason_code, what an operator alerts on when a tenant's IdP changes.
func TestSignInFailuresCountedByReason(t *testing.T) {
	t.Parallel()
	b := startBroker(t, map[string]string{
		envDatabaseURL: "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
	}, "--dev")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	acs, form := devIdPAnswer(t, c, b, nil)
	xml, err := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
	if err != nil || !bytes.Contains(xml, []byte("alice@example.com")) {
		t.Fatalf("the IdP's answer is not alice's assertion (%v):\n%s", err, xml)
	}
	form.Set("SAMLResponse", base64.StdEncoding.EncodeToString(bytes.ReplaceAll(xml, []byte("alice@example.com"), []byte("mallory@example.com"))))
	resp, err := c.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an altered assertion answered %d, want 403", resp.StatusCode)
	}
	page, _ := pageReader(t)(c.Get(b.base + "/metrics"))
	if want := `idbroker_sign_in_failures_total{reason="signature_invalid"} 1`; !strings.Contains(page, want) {
		t.Errorf("no %s in /metrics:\n%s", want, grepLines(page, "sign_in"))
	}
}

// TestSignInWithRedisDownIsTheBrokersOutage: an IdP's answer that arrives
// while Redis (where the broker keeps the sign-in's state) is down is the
// broker's outage: 503 with Retry-After, a server error in the tenant's
// SLO, and no authentication.failed event blaming the tenant's IdP. It
// was a 403 "sign-in failed" page, recorded as the IdP's failure
// (upstream_unavailable) and counted as the user's error.
func TestSignInWithRedisDownIsTheBrokersOutage(t *testing.T) {
	t.Parallel()
	rs := sessionstest.StartServer(t)
	b := startBroker(t, map[string]string{
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envRedisURL:        rs.URL() + "?dial_timeout=200ms&max_retries=0",
		envBootstrapAPIKey: e2eBootstrapKey,
	}, "--dev")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	acs, form := devIdPAnswer(t, c, b, nil)
	rs.Kill()
	resp, err := c.PostForm(acs, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("the ACS answered %d (Retry-After %q) with Redis down, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	page, _ := pageReader(t)(c.Get(b.base + "/metrics"))
	if !regexp.MustCompile(`idbroker_tenant_requests_total\{kind="sign_in",outcome="server_error",tenant="tnt_\w+"\} 1\b`).MatchString(page) {
		t.Errorf("the sign-in is not a server error in the tenant's measurements:\n%s", grepLines(page, "idbroker_tenant_requests_total"))
	}
	// The reasons alert rules watch are there at 0 from the start; none
	// may have counted the outage.
	if regexp.MustCompile(`(?m)^idbroker_sign_in_failures_total\{[^}]*\} [1-9]`).MatchString(page) {
		t.Errorf("the outage is counted as a failed sign-in:\n%s", grepLines(page, "sign_in_failures"))
	}
	var events struct {
		Data []struct{ Type string } `json:"data"`
	}
	if code := b.do("GET", "/api/v1/events", e2eBootstrapKey, nil, &events); code != http.StatusOK {
		t.Fatalf("GET /events = %d", code)
	}
	for _, e := range events.Data {
		if e.Type == "authentication.failed" {
			t.Errorf("the outage was recorded as a failed sign-in: %+v", events.Data)
		}
	}
}

// TestRefusedTokenRequestsAreNoWarnings: a client's mistake at the token
// endpoint (a wrong secret, an unknown refresh token) is its access log
// line at INFO, not also a WARN line of the OpenID Provider library per
// request; at debug level that line is still there.
func TestRefusedTokenRequestsAreNoWarnings(t *testing.T) {
	t.Parallel()
	for _, level := range []string{"info", "debug"} {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, map[string]string{
				envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
				envBootstrapAPIKey: e2eBootstrapKey,
				envLogLevel:        level,
			})
			var app struct {
				ClientID string `json:"client_id"`
			}
			if code := b.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{"name": "A", "redirect_uris": []string{"https://app.example/cb"}}, &app); code != http.StatusCreated {
				t.Fatalf("create application: %d", code)
			}
			for range 3 {
				resp, err := http.PostForm(b.base+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"},
					"client_id": {app.ClientID}, "client_secret": {"wrong"}})
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("a wrong client secret answered %d", resp.StatusCode)
				}
			}
			b.stop()
			out := b.output.String()
			if n := strings.Count(out, `msg="http request" method=POST path=/oauth/token`); n != 3 {
				t.Errorf("%d access log lines of /oauth/token, want 3", n)
			}
			if strings.Contains(out, `level=WARN msg="request error"`) {
				t.Errorf("a client's refused token request is a warning:\n%s", grepLines(out, "request error"))
			}
			if got := strings.Count(out, `level=DEBUG msg="request error"`); (level == "debug") != (got == 3) {
				t.Errorf("%d DEBUG lines of the refusals at level %s", got, level)
			}
		})
	}
}
