package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
)

// TestDirectoryProvisioningReachesWebhook follows a SCIM provisioning
// through the binary: the operator creates a directory, the IdP pushes a
// user with the directory's token, and the vendor's webhook receives the
// signed dsync.user.created event from the dispatcher, which counts it in
// /metrics.
func TestDirectoryProvisioningReachesWebhook(t *testing.T) {
	t.Parallel()
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

	b, _, dir := startWithDirectory(t, map[string]string{
		// The webhook receiver is on loopback.
		envAllowPrivateNetworks: "true",
	})
	if dir.SCIMBaseURL != b.base+"/scim/v2/"+dir.ID || dir.BearerToken == "" {
		t.Fatalf("directory = %+v, want scim_base_url %s/scim/v2/%s and a token", dir, b.base, dir.ID)
	}
	secret = subscribe(t, b, hook.URL, "dsync.user.created").Secret
	close(secretSet)

	user := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob@acme.example",` +
		`"active":true,"emails":[{"value":"bob@acme.example","primary":true}],"name":{"givenName":"Bob","familyName":"Ray"}}`
	if a := dir.pushUser(t, b, user); a.status != http.StatusCreated {
		t.Fatalf("SCIM POST /Users = %d %s, want 201", a.status, a.raw)
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
	// The attempt is counted once recorded, for the operator's alerts.
	want := `idbroker_outbound_deliveries_total{kind="webhook",outcome="succeeded"} 1`
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(b.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(page), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s:\n%s", want, grepLines(string(page), "outbound"))
		}
	}
	b.stop()
}
