package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestConnectionErrorsNameTheField creates connections through the wired
// operator API, in and out of --dev: every refusal is one readable line in
// the API's one error shape, with field naming the setting (as the API's
// JSON nests it), an IdP that cannot be reached says what failed and
// where, and no message asks for https where http is accepted.
func TestConnectionErrorsNameTheField(t *testing.T) {
	t.Parallel()
	closed := "http://" + freeAddr(t) // nothing listens there
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"dev", []string{"--dev"}},
		{"production", nil},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			dev := mode.name == "dev"
			b := startBroker(t, map[string]string{
				envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
				envBootstrapAPIKey: e2eBootstrapKey,
			}, mode.args...)
			var tenant tenantJSON
			if code := b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Acme"}, &tenant); code != http.StatusCreated {
				t.Fatalf("POST /tenants = %d", code)
			}
			var draft struct {
				ID string `json:"id"`
			}
			if code := b.do("POST", "/api/v1/tenants/"+tenant.ID+"/connections", e2eBootstrapKey,
				map[string]any{"type": "oidc", "name": "Draft"}, &draft); code != http.StatusCreated {
				t.Fatalf("POST draft connection = %d", code)
			}

			type want struct {
				status      int
				code, field string
				message     string // a substring
			}
			tests := []struct {
				name   string
				method string
				path   string // default: the tenant's connections
				body   string
				want   want
				dev    *want // when --dev answers otherwise
			}{
				{name: "empty name", body: `{"type":"saml","name":" "}`,
					want: want{400, "invalid_request", "name", "name must be 1 to 200 characters"}},
				{name: "unknown type", body: `{"type":"ldap","name":"x"}`,
					want: want{400, "invalid_request", "type", `type must be "oidc" or "saml"`}},
				{name: "another type's settings", body: `{"type":"oidc","name":"x","saml":{}}`,
					want: want{400, "invalid_request", "saml", "saml settings on a oidc connection"}},
				{name: "unknown setting", body: `{"type":"saml","name":"x","saml":{"bogus":1}}`,
					want: want{400, "invalid_request", "saml.bogus", `unknown field "bogus"`}},
				{name: "setting of the wrong type", body: `{"type":"saml","name":"x","saml":{"clock_skew_seconds":"90"}}`,
					want: want{400, "invalid_request", "saml.clock_skew_seconds", "clock_skew_seconds must be an integer, not a string"}},
				{name: "nested setting", body: `{"type":"oidc","name":"x","oidc":{"attribute_mapping":{"preset":"ldap"}}}`,
					want: want{400, "invalid_request", "oidc.attribute_mapping.preset", `attribute_mapping.preset "ldap" is not one of`}},
				{name: "metadata URL not a URL", body: `{"type":"saml","name":"x","saml":{"idp_metadata_url":"ftp://idp.example/m"}}`,
					want: want{400, "invalid_request", "saml.idp_metadata_url", "idp_metadata_url must be an absolute https URL"},
					dev:  &want{400, "invalid_request", "saml.idp_metadata_url", "idp_metadata_url must be an absolute http or https URL"}},
				{name: "plain http metadata URL", body: `{"type":"saml","name":"x","saml":{"idp_metadata_url":"` + closed + `/metadata"}}`,
					want: want{400, "invalid_request", "saml.idp_metadata_url", "idp_metadata_url must use https"},
					dev:  &want{502, "upstream_unavailable", "saml.idp_metadata_url", "could not fetch IdP metadata from " + closed + "/metadata: connection refused"}},
				{name: "metadata URL answering 404", body: `{"type":"saml","name":"x","saml":{"idp_metadata_url":"` + b.base + `/nowhere"}}`,
					want: want{400, "invalid_request", "saml.idp_metadata_url", "idp_metadata_url must use https"},
					dev:  &want{502, "upstream_unavailable", "saml.idp_metadata_url", "could not fetch IdP metadata from " + b.base + "/nowhere: the server answered 404 Not Found"}},
				{name: "metadata URL serving something else", body: `{"type":"saml","name":"x","saml":{"idp_metadata_url":"` + b.base + `/healthz"}}`,
					want: want{400, "invalid_request", "saml.idp_metadata_url", "idp_metadata_url must use https"},
					dev:  &want{400, "invalid_request", "saml.idp_metadata_url", "the document at " + b.base + "/healthz is not usable: IdP metadata is not XML"}},
				{name: "https metadata URL on a private address", body: `{"type":"saml","name":"x","saml":{"idp_metadata_url":"https://127.0.0.1:1/metadata"}}`,
					want: want{400, "invalid_request", "saml.idp_metadata_url", "could not fetch IdP metadata from https://127.0.0.1:1/metadata: the address is on a private or local network"},
					dev:  &want{502, "upstream_unavailable", "saml.idp_metadata_url", "could not fetch IdP metadata from https://127.0.0.1:1/metadata: connection refused"}},
				{name: "metadata XML that is not XML", body: `{"type":"saml","name":"x","saml":{"idp_metadata_xml":"<EntityDescriptor"}}`,
					want: want{400, "invalid_request", "saml.idp_metadata_xml", "IdP metadata is not XML"}},
				{name: "certificate that is not one", body: `{"type":"saml","name":"x","saml":{"idp_certificates_pem":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}}`,
					want: want{400, "invalid_request", "saml.idp_certificates_pem", "an IdP certificate is not a valid X.509 certificate"}},
				{name: "OIDC issuer not reachable", body: `{"type":"oidc","name":"x","oidc":{"issuer":"` + closed + `","client_id":"c","client_secret":"s"}}`,
					want: want{400, "invalid_request", "oidc.issuer", "issuer must use https"},
					dev:  &want{502, "upstream_unavailable", "oidc.issuer", "could not read the OIDC discovery document at " + closed + "/.well-known/openid-configuration: connection refused"}},
				{name: "OIDC issuer without discovery", body: `{"type":"oidc","name":"x","oidc":{"issuer":"` + b.base + `/nowhere","client_id":"c","client_secret":"s"}}`,
					want: want{400, "invalid_request", "oidc.issuer", "issuer must use https"},
					dev:  &want{502, "upstream_unavailable", "oidc.issuer", "/nowhere/.well-known/openid-configuration: the server answered 404 Not Found"}},
				{name: "OIDC client secret", body: `{"type":"oidc","name":"x","oidc":{"client_secret":""}}`,
					want: want{400, "invalid_request", "oidc.client_secret", "client_secret must be 1 to 4096 characters"}},
				{name: "Entra common issuer", body: `{"type":"oidc","name":"x","oidc":{"issuer":"https://login.microsoftonline.com/common/v2.0"}}`,
					want: want{400, "invalid_request", "oidc.issuer", "Entra ID issuer must name the tenant id"}},
				{name: "activating an incomplete connection", method: "PATCH", path: "/api/v1/connections/" + draft.ID, body: `{"status":"active"}`,
					want: want{400, "invalid_request", "oidc.issuer", "cannot activate: missing issuer, client_id, client_secret"}},
				// A null is refused, not taken for an absent setting and
				// silently ignored.
				{name: "null setting", body: `{"type":"saml","name":"x","saml":{"allow_idp_initiated":null}}`,
					want: want{400, "invalid_request", "saml.allow_idp_initiated", "allow_idp_initiated cannot be null"}},
				{name: "null setting in a PATCH", method: "PATCH", path: "/api/v1/connections/" + draft.ID, body: `{"oidc":{"client_id":"c","issuer":null}}`,
					want: want{400, "invalid_request", "oidc.issuer", "issuer cannot be null"}},
				{name: "null settings", method: "PATCH", path: "/api/v1/connections/" + draft.ID, body: `{"oidc":null}`,
					want: want{400, "invalid_request", "oidc", "must be an object, not a null"}},
				{name: "another type's null settings", body: `{"type":"saml","name":"x","oidc":null}`,
					want: want{400, "invalid_request", "oidc", "must be an object, not a null"}},
				{name: "bad status", method: "PATCH", path: "/api/v1/connections/" + draft.ID, body: `{"status":"on"}`,
					want: want{400, "invalid_request", "status", `status must be "active" or "inactive"`}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					w := tt.want
					if dev && tt.dev != nil {
						w = *tt.dev
					}
					method, path := cmpOr(tt.method, "POST"), cmpOr(tt.path, "/api/v1/tenants/"+tenant.ID+"/connections")
					a := call(t, b, method, b.base+path, "Bearer "+e2eBootstrapKey, "application/json", []byte(tt.body))
					e, _ := a.body["error"].(map[string]any)
					if a.status != w.status || e == nil || e["code"] != w.code || e["field"] != w.field {
						t.Fatalf("%d %s; want %d %s with field %q", a.status, a.raw, w.status, w.code, w.field)
					}
					msg, _ := e["message"].(string)
					if !strings.Contains(msg, w.message) {
						t.Errorf("message %q, want it to contain %q", msg, w.message)
					}
					if strings.ContainsAny(msg, "\n\r") || strings.Contains(msg, "connections:") || strings.Contains(msg, "dial tcp") {
						t.Errorf("message %q is not one readable line", msg)
					}
					if dev && (strings.Contains(msg, "must use https") || strings.Contains(msg, "absolute https URL")) {
						t.Errorf("--dev accepts http, yet the message says %q", msg)
					}
				})
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestWrongMethodIs405EverywhereWithAllow asks known paths of each surface
// of the wired broker with a method they do not take: 405 with an Allow
// header, in the surface's own error format, after its authentication; an
// unknown path stays 404.
func TestWrongMethodIs405EverywhereWithAllow(t *testing.T) {
	t.Parallel()
	b := startBroker(t, map[string]string{
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envBootstrapAPIKey: e2eBootstrapKey,
	}, "--dev")
	var tenant tenantJSON
	if code := b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Acme"}, &tenant); code != http.StatusCreated {
		t.Fatalf("POST /tenants = %d", code)
	}
	var conn struct {
		ID string `json:"id"`
	}
	if code := b.do("POST", "/api/v1/tenants/"+tenant.ID+"/connections", e2eBootstrapKey, map[string]any{"type": "saml", "name": "Okta"}, &conn); code != http.StatusCreated {
		t.Fatalf("POST connection = %d", code)
	}
	var dir struct {
		SCIMBaseURL string `json:"scim_base_url"`
		BearerToken string `json:"bearer_token"`
	}
	if code := b.do("POST", "/api/v1/tenants/"+tenant.ID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	console, csrf := consoleSession(t, b)

	apiKey, scimToken := "Bearer "+e2eBootstrapKey, "Bearer "+dir.BearerToken
	isHTML := func(a answer) bool { return strings.HasPrefix(a.header.Get("Content-Type"), "text/html") }
	for _, tt := range []struct {
		name, method, url, auth string
		status                  int
		allow                   string // want the header to list exactly these, OPTIONS aside
		format                  func(answer) bool
	}{
		{"API collection", "PUT", "/api/v1/tenants", apiKey, 405, "GET, HEAD, POST", func(a answer) bool { return isAPIError(a, "method_not_allowed") }},
		{"API resource", "POST", "/api/v1/tenants/" + tenant.ID, apiKey, 405, "GET, HEAD, PATCH, DELETE", func(a answer) bool { return isAPIError(a, "method_not_allowed") }},
		{"API connection", "PUT", "/api/v1/connections/" + conn.ID, apiKey, 405, "GET, HEAD, PATCH, DELETE", func(a answer) bool { return isAPIError(a, "method_not_allowed") }},
		{"API action", "GET", "/api/v1/tenants/" + tenant.ID + "/restore", apiKey, 405, "POST", func(a answer) bool { return isAPIError(a, "method_not_allowed") }},
		{"API without a key learns nothing", "PUT", "/api/v1/tenants", "", 401, "", func(a answer) bool { return isAPIError(a, "unauthorized") }},
		{"API unknown path", "GET", "/api/v1/nowhere", apiKey, 404, "", func(a answer) bool { return isAPIError(a, "not_found") }},
		{"SCIM collection", "DELETE", dir.SCIMBaseURL + "/Users", scimToken, 405, "GET, HEAD, POST", func(a answer) bool { return isSCIMError(a, "405") }},
		{"SCIM resource", "POST", dir.SCIMBaseURL + "/Groups/g1", scimToken, 405, "GET, HEAD, PUT, PATCH, DELETE", func(a answer) bool { return isSCIMError(a, "405") }},
		{"SCIM unknown path", "GET", dir.SCIMBaseURL + "/Nowhere", scimToken, 404, "", func(a answer) bool { return isSCIMError(a, "404") }},
		{"OAuth token", "GET", "/oauth/token", "", 405, "POST", func(a answer) bool { return isOAuthError(a, "invalid_request") }},
		{"OAuth introspection", "PUT", "/oauth/introspect", "", 405, "POST", func(a answer) bool { return isOAuthError(a, "invalid_request") }},
		{"discovery", "POST", "/.well-known/openid-configuration", "", 405, "GET, HEAD", func(a answer) bool { return isAPIError(a, "method_not_allowed") }},
		{"sign-in page", "PUT", "/login", "", 405, "GET, POST", isHTML},
		// The IdP sends the user's browser to the SSO URLs: pages.
		{"SAML ACS", "GET", "/sso/saml/" + conn.ID + "/acs", "", 405, "POST", isHTML},
		{"SAML metadata", "POST", "/sso/saml/" + conn.ID + "/metadata", "", 405, "GET", isHTML},
		{"SSO unknown path", "GET", "/sso/saml/" + conn.ID + "/nowhere", "", 404, "", isHTML},
		{"SAML metadata of no connection", "GET", "/sso/saml/conn_01JUNKJUNKJUNKJUNKJUNKJUNK/metadata", "", 404, "", isHTML},
		{"portal page", "DELETE", "/portal/sso", "", 405, "GET", isHTML},
		{"portal unknown path", "DELETE", "/portal/nowhere", "", 404, "", isHTML},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.url
			if strings.HasPrefix(u, "/") {
				u = b.base + u
			}
			a := call(t, b, tt.method, u, tt.auth, "", nil)
			checkMethodAnswer(t, a, tt.status, tt.allow, tt.format)
		})
	}

	// An unknown URL no surface claims: a page for a browser (a typo, an
	// old bookmark), JSON for a program, and the operator API's JSON for
	// anyone under /api/.
	for _, tt := range []struct {
		name, path, accept string
		format             func(answer) bool
	}{
		{"unknown URL, browser", "/consle", "text/html,application/xhtml+xml,*/*;q=0.8", func(a answer) bool {
			return isHTML(a) && a.header.Get("Content-Security-Policy") != ""
		}},
		{"unknown URL, program", "/consle", "*/*", func(a answer) bool { return isAPIError(a, "not_found") }},
		{"unknown API version, browser", "/api/v2/tenants", "text/html", func(a answer) bool { return isAPIError(a, "not_found") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", b.base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", tt.accept)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			a := answer{status: res.StatusCode, header: res.Header, raw: string(raw)}
			_ = json.Unmarshal(raw, &a.body)
			checkMethodAnswer(t, a, 404, "", tt.format)
		})
	}

	// The console, signed in: a page asked with another method (its CSRF
	// token sent, as every signed-in form does) is its 405 page.
	for _, tt := range []struct {
		name, method, path string
		status             int
		allow              string
	}{
		{"console page", "PUT", "/console/tenants", 405, "GET"},
		{"console action", "PATCH", "/console/tenants/" + tenant.ID + "/status", 405, "GET, POST"},
		{"console unknown path", "PUT", "/console/nowhere", 404, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, b.base+tt.path, strings.NewReader(url.Values{"csrf_token": {csrf}}.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := console.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			a := answer{status: res.StatusCode, header: res.Header, raw: string(raw)}
			checkMethodAnswer(t, a, tt.status, tt.allow, func(a answer) bool {
				return strings.HasPrefix(a.header.Get("Content-Type"), "text/html") && a.header.Get("Content-Security-Policy") != ""
			})
		})
	}
}

func checkMethodAnswer(t *testing.T, a answer, status int, allow string, format func(answer) bool) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%d %.300s; want %d", a.status, a.raw, status)
	}
	var got []string
	for _, m := range strings.Split(a.header.Get("Allow"), ",") {
		if m = strings.TrimSpace(m); m != "" && m != http.MethodOptions {
			got = append(got, m)
		}
	}
	if status == http.StatusMethodNotAllowed && strings.Join(got, ", ") != allow {
		t.Errorf("Allow = %q, want %q", a.header.Get("Allow"), allow)
	}
	if !format(a) {
		t.Errorf("%d answered in the wrong format: %s %.300s", a.status, a.header.Get("Content-Type"), a.raw)
	}
}

var (
	devOperatorRE = regexp.MustCompile(`email=(\S+) password=(\S+) totp_secret=(\S+)`)
	csrfFieldRE   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
)

// consoleSession signs the --dev operator in to the console (its
// credentials are in the log) and returns the signed-in client and the
// session's CSRF token.
func consoleSession(t *testing.T, b *node) (*http.Client, string) {
	t.Helper()
	m := devOperatorRE.FindStringSubmatch(b.output.String())
	if m == nil {
		t.Fatalf("no dev operator credentials in the log:\n%s", b.output)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	page := func(res *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s %s = %d: %.300s", res.Request.Method, res.Request.URL, res.StatusCode, raw)
		}
		f := csrfFieldRE.FindSubmatch(raw)
		if f == nil {
			t.Fatalf("%s has no CSRF field: %.500s", res.Request.URL, raw)
		}
		return string(f[1])
	}
	csrf := page(c.Get(b.base + "/console/signin"))
	code, err := totp.GenerateCode(m[3], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"csrf_token": {csrf}, "email": {m[1]}, "password": {m[2]}, "code": {code}}
	// The sign-in redirects to the tenants page, whose sign-out form
	// carries the session's token.
	res, err := c.Post(b.base+"/console/signin", "application/x-www-form-urlencoded", bytes.NewBufferString(form.Encode()))
	return c, page(res, err)
}
