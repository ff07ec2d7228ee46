package main

import (
	"maps"
	"net/http"
	"path/filepath"
	"testing"
)

// The set-up the directory, outage and tracing tests start from: a broker
// with the bootstrap API key, and a tenant with a SCIM directory created
// through its operator API as an operator would.

// scimDirectory is a directory as the operator API answers its creation:
// where its IdP pushes and with which token.
type scimDirectory struct {
	ID          string `json:"id"`
	SCIMBaseURL string `json:"scim_base_url"`
	BearerToken string `json:"bearer_token"`
}

// startWithDirectory starts `idbroker serve` with args and env on top of
// the bootstrap API key and a fresh SQLite database, then creates the
// tenant Acme and its directory Okta.
func startWithDirectory(t *testing.T, env map[string]string, args ...string) (*node, tenantJSON, scimDirectory) {
	t.Helper()
	full := map[string]string{envBootstrapAPIKey: e2eBootstrapKey}
	if _, ok := env[envDatabaseURL]; !ok {
		full[envDatabaseURL] = "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db"))
	}
	maps.Copy(full, env)
	b := startBroker(t, full, args...)
	var tenant tenantJSON
	if code := b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Acme"}, &tenant); code != http.StatusCreated {
		t.Fatalf("POST /tenants = %d, want 201", code)
	}
	var dir scimDirectory
	if code := b.do("POST", "/api/v1/tenants/"+tenant.ID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d, want 201", code)
	}
	return b, tenant, dir
}

// pushUser sends user, a SCIM User resource, to the directory as its IdP
// does.
func (d scimDirectory) pushUser(t *testing.T, b *node, user string) answer {
	t.Helper()
	return call(t, b, "POST", d.SCIMBaseURL+"/Users", "Bearer "+d.BearerToken, "application/scim+json", []byte(user))
}

// webhookJSON is a webhook as the operator API answers its creation; the
// secret signs its deliveries.
type webhookJSON struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// subscribe creates through b's operator API a webhook that sends events
// to url.
func subscribe(t *testing.T, b *node, url string, events ...string) webhookJSON {
	t.Helper()
	var wh webhookJSON
	if code := b.do("POST", "/api/v1/webhooks", e2eBootstrapKey, map[string]any{"url": url, "events": events}, &wh); code != http.StatusCreated {
		t.Fatalf("POST /webhooks = %d, want 201", code)
	}
	return wh
}
