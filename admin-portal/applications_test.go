package adminportal_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/internal/secrets"
)

func TestCreateApplication(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		var out struct {
			ID           string  `json:"id"`
			ClientID     string  `json:"client_id"`
			ClientSecret *string `json:"client_secret"`
			Alg          string  `json:"id_token_signed_response_alg"`
			// InitiateLoginURI is null when unset.
			InitiateLoginURI *string `json:"initiate_login_uri"`
		}
		e.must(http.StatusCreated, "POST", "/applications", map[string]any{
			"name": "Dashboard", "redirect_uris": []string{"https://app.example/cb"},
			"backchannel_logout_uri": "https://app.example/bcl", "initiate_login_uri": "https://app.example/login?tile=1",
		}).decode(t, &out)
		if out.ID == "" || out.ClientID != out.ID || out.ClientSecret == nil || !strings.HasPrefix(*out.ClientSecret, "idb_cs_") || out.Alg != "RS256" ||
			out.InitiateLoginURI == nil || *out.InitiateLoginURI != "https://app.example/login?tile=1" {
			t.Fatalf("created %+v", out)
		}
		app, err := e.st.Application(context.Background(), out.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !secrets.Equal(app.SecretHash, secrets.HashToken(*out.ClientSecret)) {
			t.Fatal("stored hash does not match the secret shown")
		}
		if app.InitiateLoginURI != "https://app.example/login?tile=1" {
			t.Fatalf("stored initiate_login_uri %q", app.InitiateLoginURI)
		}

		var pub struct {
			ClientSecret *string `json:"client_secret"`
			Alg          string  `json:"id_token_signed_response_alg"`
			ATAlg        string  `json:"access_token_signed_response_alg"`
		}
		raw := e.must(http.StatusCreated, "POST", "/applications", map[string]any{
			"name": "CLI", "public": true, "redirect_uris": []string{"http://127.0.0.1/cb", "com.example.cli:/cb"},
			"id_token_signed_response_alg": "ES256",
		})
		raw.decode(t, &pub)
		var shown map[string]any
		raw.decode(t, &shown)
		if v, ok := shown["initiate_login_uri"]; !ok || v != nil {
			t.Fatalf("initiate_login_uri shown as %v (present %v), want null", v, ok)
		}
		if pub.ClientSecret != nil || pub.Alg != "ES256" || pub.ATAlg != "ES256" {
			t.Fatalf("public client %+v", pub)
		}
		// RS256 id_tokens, ES256 access tokens.
		var mixed struct {
			ID    string `json:"id"`
			Alg   string `json:"id_token_signed_response_alg"`
			ATAlg string `json:"access_token_signed_response_alg"`
		}
		e.must(http.StatusCreated, "POST", "/applications", map[string]any{
			"name": "API", "redirect_uris": []string{"https://api.example/cb"}, "access_token_signed_response_alg": "ES256",
		}).decode(t, &mixed)
		if app, err := e.st.Application(context.Background(), mixed.ID); err != nil || mixed.Alg != "RS256" || mixed.ATAlg != "ES256" ||
			app.AccessTokenSigningAlg != "ES256" {
			t.Fatalf("mixed algorithms %+v, stored %+v, %v", mixed, app, err)
		}

		before, _, _ := e.st.ListApplications(context.Background(), storePage())
		bad := map[string]map[string]any{
			"no redirect":        {"name": "x"},
			"empty redirects":    {"name": "x", "redirect_uris": []string{}},
			"relative":           {"name": "x", "redirect_uris": []string{"/cb"}},
			"fragment":           {"name": "x", "redirect_uris": []string{"https://a.example/cb#x"}},
			"plain http":         {"name": "x", "redirect_uris": []string{"http://a.example/cb"}},
			"wildcard host":      {"name": "x", "redirect_uris": []string{"https://*.a.example/cb"}},
			"custom scheme conf": {"name": "x", "redirect_uris": []string{"com.example.app:/cb"}},
			"alg":                {"name": "x", "redirect_uris": []string{"https://a.example/cb"}, "id_token_signed_response_alg": "HS256"},
			"access alg":         {"name": "x", "redirect_uris": []string{"https://a.example/cb"}, "access_token_signed_response_alg": "none"},
			"no name":            {"redirect_uris": []string{"https://a.example/cb"}},
			"unknown field":      {"name": "x", "redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"implicit"}},
			"duplicate":          {"name": "x", "redirect_uris": []string{"https://a.example/cb", "https://a.example/cb"}},
			"bcl http":           {"name": "x", "redirect_uris": []string{"https://a.example/cb"}, "backchannel_logout_uri": "http://a.example/bcl"},
			"initiate http":      {"name": "x", "redirect_uris": []string{"https://a.example/cb"}, "initiate_login_uri": "http://a.example/login"},
			"initiate fragment":  {"name": "x", "redirect_uris": []string{"https://a.example/cb"}, "initiate_login_uri": "https://a.example/login#top"},
			"initiate relative":  {"name": "x", "redirect_uris": []string{"https://a.example/cb"}, "initiate_login_uri": "/login"},
			"public bad type":    {"name": "x", "redirect_uris": []string{"https://a.example/cb"}, "public": "yes"},
		}
		for name, body := range bad {
			t.Run(name, func(t *testing.T) {
				r := e.call("POST", "/applications", body)
				if r.status != http.StatusBadRequest || r.err(t).Code != "invalid_request" {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
			})
		}
		after, _, _ := e.st.ListApplications(context.Background(), storePage())
		if len(after) != len(before) {
			t.Fatalf("refused requests stored applications: %d → %d", len(before), len(after))
		}
		if r := e.call("POST", "/applications", map[string]any{"name": "x", "redirect_uris": []string{"https://a.example/cb"}}, "Authorization", "Bearer nope"); r.status != http.StatusUnauthorized {
			t.Fatalf("without a key: %d", r.status)
		}
	})
}
