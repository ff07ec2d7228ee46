package broker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/store"
)

// TestCORS drives the endpoints as a single-page app on another origin
// does (a public client with PKCE): preflights, then the requests
// themselves. Token, userinfo, revocation, discovery and JWKS are
// readable from any origin and never with credentials (they use no
// cookies, so a credentialed answer would only let a page ride the
// broker's own cookies); the authorization and end-session endpoints are
// navigations and introspection is for servers: those offer no CORS at
// all.
func TestCORS(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	spa := n.app(store.Application{Public: true})
	const origin = "https://spa.example"

	send := func(t *testing.T, method, path string, h map[string]string, body string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, n.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, b
	}
	// public: readable from any origin, without credentials.
	public := func(t *testing.T, res *http.Response) {
		t.Helper()
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
		}
		if got := res.Header.Values("Access-Control-Allow-Credentials"); len(got) != 0 {
			t.Errorf("Access-Control-Allow-Credentials = %q, want none", got)
		}
	}
	noCORS := func(t *testing.T, res *http.Response) {
		t.Helper()
		for k := range res.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: %q, want no CORS header", k, res.Header.Get(k))
			}
		}
	}
	preflight := func(method, headers string) map[string]string {
		return map[string]string{"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}
	}

	t.Run("preflights", func(t *testing.T) {
		for _, tc := range []struct {
			path, method, headers string
		}{
			{broker.PathToken, http.MethodPost, "content-type"},
			{broker.PathToken, http.MethodPost, "authorization,content-type"},
			{broker.PathRevoke, http.MethodPost, "content-type"},
			{broker.PathUserinfo, http.MethodGet, "authorization"},
			{broker.PathUserinfo, http.MethodPost, "authorization,content-type"},
			// An app whose HTTP client adds a header to every fetch.
			{broker.PathDiscovery, http.MethodGet, "x-requested-with"},
			{broker.PathJWKS, http.MethodGet, "x-requested-with"},
			// oidc-client-ts with DPoP on (the broker answers Bearer
			// tokens; the client sees token_type and goes on), and with
			// extraHeaders (a custom one the app adds to every call).
			{broker.PathToken, http.MethodPost, "content-type,dpop"},
			{broker.PathUserinfo, http.MethodGet, "authorization,dpop"},
			{broker.PathToken, http.MethodPost, "content-type,x-client-version"},
			{broker.PathRevoke, http.MethodPost, "content-type,x-amz-trace-id,traceparent"},
			{broker.PathDiscovery, http.MethodGet, "x-client-version"},
		} {
			t.Run(tc.path+" "+tc.method, func(t *testing.T) {
				res, body := send(t, http.MethodOptions, tc.path, preflight(tc.method, tc.headers), "")
				if res.StatusCode != http.StatusNoContent {
					t.Fatalf("preflight = %d %s, want 204", res.StatusCode, body)
				}
				public(t, res)
				if m := res.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, tc.method) {
					t.Errorf("Access-Control-Allow-Methods = %q, want it to hold %s", m, tc.method)
				}
				allowed := strings.ToLower(res.Header.Get("Access-Control-Allow-Headers"))
				for _, h := range strings.Split(tc.headers, ",") {
					if !strings.Contains(allowed, h) {
						t.Errorf("Access-Control-Allow-Headers = %q, want it to hold %s", allowed, h)
					}
				}
				if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Access-Control-Request-Headers") {
					t.Errorf("Vary = %q: a cache would hand this preflight to another's", res.Header.Values("Vary"))
				}
				if res.Header.Get("Access-Control-Max-Age") == "" {
					t.Error("no Access-Control-Max-Age: every token request would cost a preflight")
				}
			})
		}
		// A header list that is not one (RFC 9110 field names) allows
		// nothing, so the browser refuses the request; never echoed.
		for _, bad := range []string{"x a", "x-a,\"y\"", strings.Repeat("x-h,", 60) + "x-h", "x-a,,"} {
			t.Run("bad list "+bad[:min(len(bad), 12)], func(t *testing.T) {
				res, _ := send(t, http.MethodOptions, broker.PathToken, preflight(http.MethodPost, bad), "")
				if got := res.Header.Get("Access-Control-Allow-Headers"); got != "" {
					t.Errorf("Access-Control-Allow-Headers = %q for %q, want none", got, bad)
				}
			})
		}
		// Navigations and server-to-server endpoints offer nothing.
		for _, path := range []string{broker.PathAuthorize, broker.PathEndSession, broker.PathIntrospect} {
			t.Run(path, func(t *testing.T) {
				res, _ := send(t, http.MethodOptions, path, preflight(http.MethodPost, "content-type"), "")
				noCORS(t, res)
			})
		}
	})

	t.Run("requests", func(t *testing.T) {
		// The sign-in itself is a navigation: no CORS on /authorize.
		verifier, challenge := pkce()
		q := url.Values{"client_id": {spa.ID}, "redirect_uri": {spa.Redirect}, "response_type": {"code"},
			"scope": {"openid email offline_access"}, "state": {"st8"}, "login_hint": {"alice@acme.test"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		res, _ := send(t, http.MethodGet, broker.PathAuthorize+"?"+q.Encode(), map[string]string{"Origin": origin}, "")
		noCORS(t, res)
		c := code(t, spa.authorize(t, browser(t), url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "login_hint": {"alice@acme.test"}}))

		form := map[string]string{"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"}
		res, body := send(t, http.MethodPost, broker.PathToken, form, url.Values{"grant_type": {"authorization_code"},
			"code": {c}, "redirect_uri": {spa.Redirect}, "client_id": {spa.ID}, "code_verifier": {verifier}}.Encode())
		if res.StatusCode != http.StatusOK {
			t.Fatalf("token = %d %s", res.StatusCode, body)
		}
		public(t, res)
		var tok struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
			t.Fatalf("token answer %s: %v", body, err)
		}

		// An error must be readable too, or the app cannot tell why.
		res, _ = send(t, http.MethodPost, broker.PathToken, form, url.Values{"grant_type": {"authorization_code"},
			"code": {"spent"}, "redirect_uri": {spa.Redirect}, "client_id": {spa.ID}, "code_verifier": {verifier}}.Encode())
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("token with a bad code = %d, want 400", res.StatusCode)
		}
		public(t, res)
		// So must an error the server answers before the endpoint's
		// handler runs: a body over its limit.
		for _, path := range []string{broker.PathToken, broker.PathRevoke, broker.PathUserinfo} {
			res, body = send(t, http.MethodPost, path, form, "token="+strings.Repeat("x", 2<<20))
			if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), `"error"`) {
				t.Errorf("%s with a body over the limit = %d %s, want 413 with an OAuth error", path, res.StatusCode, body)
			}
			public(t, res)
		}

		res, body = send(t, http.MethodGet, broker.PathUserinfo, map[string]string{"Origin": origin, "Authorization": "Bearer " + tok.AccessToken}, "")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("userinfo = %d %s", res.StatusCode, body)
		}
		public(t, res)
		res, _ = send(t, http.MethodGet, broker.PathUserinfo, map[string]string{"Origin": origin, "Authorization": "Bearer nope"}, "")
		public(t, res)
		if !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
			t.Errorf("Access-Control-Expose-Headers = %q: the app cannot read userinfo's error (WWW-Authenticate)", res.Header.Get("Access-Control-Expose-Headers"))
		}

		res, body = send(t, http.MethodPost, broker.PathRevoke, form, url.Values{"token": {tok.RefreshToken}, "client_id": {spa.ID}}.Encode())
		if res.StatusCode != http.StatusOK {
			t.Fatalf("revoke = %d %s", res.StatusCode, body)
		}
		public(t, res)

		for _, path := range []string{broker.PathDiscovery, broker.PathJWKS} {
			res, _ = send(t, http.MethodGet, path, map[string]string{"Origin": origin}, "")
			public(t, res)
		}
		// An origin that never registered, or the opaque "null" origin,
		// gets no more than any other.
		for _, o := range []string{"https://evil.example", "null"} {
			res, _ = send(t, http.MethodOptions, broker.PathToken, map[string]string{"Origin": o, "Access-Control-Request-Method": http.MethodPost}, "")
			public(t, res)
		}
	})
}

// BenchmarkTokenPreflight measures a browser's preflight of the token
// endpoint over loopback HTTP (keep-alive), client included: publicCORS
// answers it before the rate limiter, the SLO probe and the OAuth
// handlers.
func BenchmarkTokenPreflight(b *testing.B) {
	n := sqliteNode(b)
	req, err := http.NewRequest(http.MethodOptions, n.URL+broker.PathToken, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Origin", "https://spa.example")
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			b.Fatalf("preflight = %d", res.StatusCode)
		}
	}
	reportCPU(b, cpu)
}
