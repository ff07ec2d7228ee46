package broker_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/broker"
	"github.com/idbroker/idbroker/store"
)

// oauthCall is one raw request to an OAuth endpoint.
type oauthCall struct {
	method, path, contentType, body string
	basicID, basicSecret            string // Basic credentials when basicID != ""
	rawAuth                         string // an Authorization header as is
}

func (c oauthCall) do(t *testing.T, base string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if c.basicID != "" {
		req.SetBasicAuth(c.basicID, c.basicSecret)
	}
	if c.rawAuth != "" {
		req.Header.Set("Authorization", c.rawAuth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("answer is not JSON: %q", raw)
		}
	}
	return resp.StatusCode, resp.Header, out
}

// TestOAuthErrors sends malformed requests to the token, revocation and
// introspection endpoints: each gets the RFC's error code with the right
// status, never a 500, and never the operator API's error shape.
func TestOAuthErrors(t *testing.T) {
	n := sqliteNode(t)
	n.tenant("Acme", "acme.test", alice("acme.test"))
	a := n.app(store.Application{})
	pub := n.app(store.Application{Public: true, RedirectURIs: []string{"https://app.example/callback"}})
	other := n.app(store.Application{})
	const form = "application/x-www-form-urlencoded"
	tok := a.login(t)
	ended := a.login(t)
	if err := n.Sess.Revoke(context.Background(), ended.SID); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("a", 100<<10)

	// The endpoints are those discovery advertises, with the client
	// authentication methods it advertises for them.
	resp, err := http.Get(n.URL + broker.PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		Token            string   `json:"token_endpoint"`
		Introspection    string   `json:"introspection_endpoint"`
		Revocation       string   `json:"revocation_endpoint"`
		IntrospectionAMs []string `json:"introspection_endpoint_auth_methods_supported"`
		RevocationAMs    []string `json:"revocation_endpoint_auth_methods_supported"`
	}
	json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if disc.Token != n.URL+broker.PathToken || disc.Introspection != n.URL+broker.PathIntrospect || disc.Revocation != n.URL+broker.PathRevoke ||
		strings.Join(disc.IntrospectionAMs, " ") != "client_secret_basic client_secret_post" ||
		strings.Join(disc.RevocationAMs, " ") != "client_secret_basic client_secret_post none" {
		t.Fatalf("discovery: %+v", disc)
	}

	tests := []struct {
		name   string
		call   oauthCall
		status int
		code   string
	}{
		// Token endpoint.
		{"token: missing grant_type", oauthCall{"POST", broker.PathToken, form, "code=x", a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"token: password grant", oauthCall{"POST", broker.PathToken, form, "grant_type=password&username=u&password=p", a.ID, a.Secret, ""}, 400, "unsupported_grant_type"},
		{"token: client_credentials grant", oauthCall{"POST", broker.PathToken, form, "grant_type=client_credentials", a.ID, a.Secret, ""}, 400, "unsupported_grant_type"},
		{"token: made-up grant", oauthCall{"POST", broker.PathToken, form, "grant_type=urn:x", a.ID, a.Secret, ""}, 400, "unsupported_grant_type"},
		{"token: garbage code", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=garbage&redirect_uri=" + url.QueryEscape(a.Redirect), a.ID, a.Secret, ""}, 400, "invalid_grant"},
		{"token: missing code", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&redirect_uri=" + url.QueryEscape(a.Redirect), a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"token: garbage refresh token", oauthCall{"POST", broker.PathToken, form, "grant_type=refresh_token&refresh_token=idbr_garbage", a.ID, a.Secret, ""}, 400, "invalid_grant"},
		{"token: missing refresh token", oauthCall{"POST", broker.PathToken, form, "grant_type=refresh_token", a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"token: JSON body", oauthCall{"POST", broker.PathToken, "application/json", `{"grant_type":"authorization_code","code":"x"}`, a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"token: no content type", oauthCall{"POST", broker.PathToken, "", "grant_type=authorization_code&code=x", a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"token: bad form encoding", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=%zz", a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"token: grant_type twice", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&grant_type=refresh_token&code=x", a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"token: code in the URL", oauthCall{"POST", broker.PathToken + "?code=x", form, "grant_type=authorization_code", a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"token: oversized body", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=" + big, a.ID, a.Secret, ""}, 413, "invalid_request"},
		{"token: GET", oauthCall{"GET", broker.PathToken + "?grant_type=authorization_code&code=x", "", "", a.ID, a.Secret, ""}, 405, "invalid_request"},
		{"token: PUT", oauthCall{"PUT", broker.PathToken, form, "grant_type=authorization_code", a.ID, a.Secret, ""}, 405, "invalid_request"},
		{"token: basic and post at once", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=x&client_id=" + a.ID + "&client_secret=" + a.Secret, a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"token: client_id disagrees with basic", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=x&client_id=" + pub.ID, a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"token: client_id of another confidential client beside basic", oauthCall{"POST", broker.PathToken, form, "grant_type=refresh_token&refresh_token=" + url.QueryEscape(tok.RefreshToken) + "&client_id=" + other.ID, a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"token: client_id agrees with basic", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=x&redirect_uri=" + url.QueryEscape(a.Redirect) + "&client_id=" + a.ID, a.ID, a.Secret, ""}, 400, "invalid_grant"},
		{"revoke: client_id disagrees with basic", oauthCall{"POST", broker.PathRevoke, form, "token=x&client_id=" + pub.ID, a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"token: no client authentication", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=x", "", "", ""}, 401, "invalid_client"},
		{"token: unknown client", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=x&client_id=app_nope&client_secret=x", "", "", ""}, 401, "invalid_client"},
		{"token: wrong secret", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=x", a.ID, "wrong", ""}, 401, "invalid_client"},
		{"token: malformed basic", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=x", "", "", "Basic !!!"}, 401, "invalid_client"},
		{"token: basic, bad form encoding", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=x", "", "", "Basic JXp6OnNlY3JldA=="}, 401, "invalid_client"},
		{"revoke: basic, bad form encoding", oauthCall{"POST", broker.PathRevoke, form, "token=x", "", "", "Basic JXp6OnNlY3JldA=="}, 401, "invalid_client"},
		{"token: bearer instead of basic", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=x", "", "", "Bearer x"}, 401, "invalid_client"},
		{"token: public client, garbage code", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=x&code_verifier=" + strings.Repeat("v", 43) + "&redirect_uri=" + url.QueryEscape(pub.Redirect) + "&client_id=" + pub.ID, "", "", ""}, 400, "invalid_grant"},
		{"token: public client with a secret", oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=x&client_id=" + pub.ID + "&client_secret=s", "", "", ""}, 401, "invalid_client"},

		// Revocation endpoint (RFC 7009).
		{"revoke: missing token", oauthCall{"POST", broker.PathRevoke, form, "", a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"revoke: garbage token", oauthCall{"POST", broker.PathRevoke, form, "token=garbage", a.ID, a.Secret, ""}, 200, ""},
		{"revoke: unknown hint", oauthCall{"POST", broker.PathRevoke, form, "token=garbage&token_type_hint=foo", a.ID, a.Secret, ""}, 200, ""},
		{"revoke: no client authentication", oauthCall{"POST", broker.PathRevoke, form, "token=garbage", "", "", ""}, 401, "invalid_client"},
		{"revoke: wrong secret", oauthCall{"POST", broker.PathRevoke, form, "token=garbage", a.ID, "wrong", ""}, 401, "invalid_client"},
		{"revoke: JSON body", oauthCall{"POST", broker.PathRevoke, "application/json", `{"token":"x"}`, a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"revoke: GET", oauthCall{"GET", broker.PathRevoke + "?token=x", "", "", a.ID, a.Secret, ""}, 405, "invalid_request"},
		{"revoke: basic and post at once", oauthCall{"POST", broker.PathRevoke, form, "token=x&client_id=" + a.ID + "&client_secret=" + a.Secret, a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"revoke: token twice", oauthCall{"POST", broker.PathRevoke, form, "token=x&token=y", a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"revoke: oversized body", oauthCall{"POST", broker.PathRevoke, form, "token=" + big, a.ID, a.Secret, ""}, 413, "invalid_request"},
		{"revoke: another client's access token", oauthCall{"POST", broker.PathRevoke, form, "token=" + tok.AccessToken + "&client_id=" + pub.ID, "", "", ""}, 400, "unauthorized_client"},

		// Introspection endpoint (RFC 7662).
		{"introspect: missing token", oauthCall{"POST", broker.PathIntrospect, form, "token_type_hint=access_token", a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"introspect: garbage token", oauthCall{"POST", broker.PathIntrospect, form, "token=garbage", a.ID, a.Secret, ""}, 200, ""},
		{"introspect: token twice", oauthCall{"POST", broker.PathIntrospect, form, "token=a&token=b", a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"introspect: bad form encoding", oauthCall{"POST", broker.PathIntrospect, form, "token=%z", a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"introspect: JSON body", oauthCall{"POST", broker.PathIntrospect, "application/json", `{"token":"x"}`, a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"introspect: GET", oauthCall{"GET", broker.PathIntrospect + "?token=x", "", "", a.ID, a.Secret, ""}, 405, "invalid_request"},
		{"introspect: oversized body", oauthCall{"POST", broker.PathIntrospect, form, "token=" + big, a.ID, a.Secret, ""}, 413, "invalid_request"},
		{"introspect: no client authentication", oauthCall{"POST", broker.PathIntrospect, form, "token=x", "", "", ""}, 401, "invalid_client"},
		{"introspect: unknown client", oauthCall{"POST", broker.PathIntrospect, form, "token=x&client_id=app_nope&client_secret=x", "", "", ""}, 401, "invalid_client"},
		{"introspect: wrong secret", oauthCall{"POST", broker.PathIntrospect, form, "token=x", a.ID, "wrong", ""}, 401, "invalid_client"},
		{"introspect: public client", oauthCall{"POST", broker.PathIntrospect, form, "token=x&client_id=" + pub.ID, "", "", ""}, 401, "invalid_client"},
		{"introspect: basic and post at once", oauthCall{"POST", broker.PathIntrospect, form, "token=x&client_secret=" + a.Secret, a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"introspect: client_id disagrees with basic", oauthCall{"POST", broker.PathIntrospect, form, "token=x&client_id=" + pub.ID, a.ID, a.Secret, ""}, 400, "invalid_request"},
		{"introspect: malformed basic", oauthCall{"POST", broker.PathIntrospect, form, "token=x", "", "", "Basic !!!"}, 401, "invalid_client"},
		{"introspect: basic without colon", oauthCall{"POST", broker.PathIntrospect, form, "token=x", "", "", "Basic YWJj"}, 401, "invalid_client"},
		{"introspect: bearer instead of basic", oauthCall{"POST", broker.PathIntrospect, form, "token=x", "", "", "Bearer " + tok.AccessToken}, 401, "invalid_client"},

		// UserInfo (RFC 6750 errors).
		{"userinfo: no token", oauthCall{"GET", broker.PathUserinfo, "", "", "", "", ""}, 401, "invalid_request"},
		{"userinfo: garbage token", oauthCall{"GET", broker.PathUserinfo, "", "", "", "", "Bearer garbage"}, 401, "invalid_token"},
		{"userinfo: ended session", oauthCall{"GET", broker.PathUserinfo, "", "", "", "", "Bearer " + ended.AccessToken}, 401, "invalid_token"},
		{"userinfo: basic instead of bearer", oauthCall{"GET", broker.PathUserinfo, "", "", a.ID, a.Secret, ""}, 401, "invalid_request"},
		{"userinfo: token in the URL", oauthCall{"GET", broker.PathUserinfo + "?access_token=" + tok.AccessToken, "", "", "", "", ""}, 400, "invalid_request"},
		{"userinfo: token twice", oauthCall{"POST", broker.PathUserinfo, form, "access_token=" + tok.AccessToken, "", "", "Bearer " + tok.AccessToken}, 400, "invalid_request"},
		{"userinfo: PUT", oauthCall{"PUT", broker.PathUserinfo, "", "", "", "", "Bearer " + tok.AccessToken}, 405, "invalid_request"},
		{"userinfo: token in the body", oauthCall{"POST", broker.PathUserinfo, form, "access_token=" + tok.AccessToken, "", "", ""}, 200, ""},
		{"userinfo: bearer", oauthCall{"GET", broker.PathUserinfo, "", "", "", "", "Bearer " + tok.AccessToken}, 200, ""},
		// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token, the scheme
		// in any case (RFC 9110 §11.1). op read the token after exactly
		// one space, and answered a valid one 401 without a challenge.
		{"userinfo: bearer, two spaces", oauthCall{"GET", broker.PathUserinfo, "", "", "", "", "Bearer  " + tok.AccessToken}, 200, ""},
		{"userinfo: bearer, two spaces, POST", oauthCall{"POST", broker.PathUserinfo, "", "", "", "", "Bearer  " + tok.AccessToken}, 200, ""},
		{"userinfo: bearer in lower case", oauthCall{"GET", broker.PathUserinfo, "", "", "", "", "bearer " + tok.AccessToken}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := tc.call.do(t, n.URL)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			if tc.code == "" {
				return
			}
			if body["error"] != tc.code {
				t.Fatalf("error %v, want %s (body %v)", body["error"], tc.code, body)
			}
			if d, _ := body["error_description"].(string); d == "" {
				t.Errorf("no error_description: %v", body)
			}
			if status == 401 && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") && !strings.HasPrefix(tc.call.path, broker.PathUserinfo) {
				t.Errorf("401 without WWW-Authenticate: Basic")
			}
			if status == 401 && strings.HasPrefix(tc.call.path, broker.PathUserinfo) && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer (%q)", h.Get("WWW-Authenticate"))
			}
			if h.Get("Cache-Control") != "no-store" && !strings.HasPrefix(tc.call.path, broker.PathUserinfo) {
				t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
			}
		})
	}
	// Bodies over the server's own cap are refused before the broker sees
	// them; the status is still 413.
	huge := oauthCall{"POST", broker.PathToken, form, "grant_type=authorization_code&code=" + strings.Repeat("a", 2<<20), a.ID, a.Secret, ""}
	if status, _, _ := huge.do(t, n.URL); status != 413 {
		t.Fatalf("2 MiB token request: status %d", status)
	}
	// None of the refused requests harmed the real token.
	if in := a.introspect(t, n, tok.AccessToken); in["active"] != true {
		t.Fatalf("token after the refusals: %v", in)
	}
	// A successful token answer is not cached either (RFC 6749 §5.1).
	ok := oauthCall{"POST", broker.PathToken, form, "grant_type=refresh_token&refresh_token=" + url.QueryEscape(tok.RefreshToken), a.ID, a.Secret, ""}
	if status, h, body := ok.do(t, n.URL); status != 200 || h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" {
		t.Fatalf("refresh: %d, Cache-Control %q, Pragma %q: %v", status, h.Get("Cache-Control"), h.Get("Pragma"), body)
	}
}

// login signs alice in to a and redeems the code.
func (a *app) login(t *testing.T) *tokenPair {
	t.Helper()
	tok, c := a.exchange(t, code(t, a.authorize(t, browser(t), url.Values{"login_hint": {"alice@" + "acme.test"}})))
	return &tokenPair{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Sub: c.Sub, SID: c.SID}
}

type tokenPair struct {
	AccessToken, RefreshToken, Sub, SID string
}
