package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
)

// TestDirectoryProvisioningReachesWebhook follows a SCIM provisioning
// through the binary: the operator creates a directory, the IdP pushes a
// user with the directory's token, and the vendor's webhook receives the
// signed dsync.user.created event from the dispatcher.
func TestDirectoryProvisioningReachesWebhook(t *testing.T) {
	received := make(chan []byte, 16)
	var secret string
	secretSet := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		<-secretSet
		if err := events.Verify(secret, r.Header.Get(events.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("webhook delivery with a bad signature: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		received <- body
	}))
	defer hook.Close()

	b := startBroker(t, map[string]string{
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envBootstrapAPIKey: e2eBootstrapKey,
		// The webhook receiver is on loopback.
		envAllowPrivateNetworks: "true",
	})

	var wh struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if code := b.do("POST", "/api/v1/webhooks", e2eBootstrapKey,
		map[string]any{"url": hook.URL, "events": []string{"dsync.user.created"}}, &wh); code != http.StatusCreated {
		t.Fatalf("POST /webhooks = %d, want 201", code)
	}
	secret = wh.Secret
	close(secretSet)

	var tenant tenantJSON
	if code := b.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Acme"}, &tenant); code != http.StatusCreated {
		t.Fatalf("POST /tenants = %d", code)
	}
	var dir struct {
		ID          string `json:"id"`
		SCIMBaseURL string `json:"scim_base_url"`
		BearerToken string `json:"bearer_token"`
	}
	if code := b.do("POST", "/api/v1/tenants/"+tenant.ID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d, want 201", code)
	}
	if dir.SCIMBaseURL != b.base+"/scim/v2/"+dir.ID || dir.BearerToken == "" {
		t.Fatalf("directory = %+v, want scim_base_url %s/scim/v2/%s and a token", dir, b.base, dir.ID)
	}

	user := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob@acme.example",` +
		`"active":true,"emails":[{"value":"bob@acme.example","primary":true}],"name":{"givenName":"Bob","familyName":"Ray"}}`
	req, _ := http.NewRequest("POST", dir.SCIMBaseURL+"/Users", bytes.NewReader([]byte(user)))
	req.Header.Set("Authorization", "Bearer "+dir.BearerToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("SCIM POST /Users = %d, want 201", resp.StatusCode)
	}

	select {
	case body := <-received:
		var ev struct {
			ID   string          `json:"id"`
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("webhook body %q: %v", body, err)
		}
		if ev.Type != "dsync.user.created" || !strings.HasPrefix(ev.ID, "evt_") || !strings.Contains(string(ev.Data), "bob@acme.example") {
			t.Errorf("webhook event = %s, want dsync.user.created for bob@acme.example", body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook delivery within 20s of the SCIM change")
	}
	b.stop()
}
