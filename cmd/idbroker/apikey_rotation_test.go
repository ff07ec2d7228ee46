package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestAPIKeyRotation: how an operator rolls an API key without downtime,
// on a running broker. apikey list shows when each key last authenticated
// ("never" for a new one), so the old key can be revoked once nothing uses
// it; the revocation holds at once; and a node restarted with the revoked
// bootstrap key still in its environment refuses to start, saying so,
// rather than bringing the key back.
func TestAPIKeyRotation(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		envDatabaseURL:     "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "idbroker.db")),
		envBootstrapAPIKey: e2eBootstrapKey,
	}
	b := startBroker(t, env)
	if code := b.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, nil); code != http.StatusOK {
		t.Fatalf("bootstrap key: %d", code)
	}
	newKey, errOut, code := runBinary(t, env, "apikey", "create", "--name", "rotated")
	newKey = strings.TrimSpace(newKey)
	if code != exitOK || newKey == "" {
		t.Fatalf("apikey create: %d %s", code, errOut)
	}
	list := func() map[string][]string { // name → fields
		t.Helper()
		out, errOut, code := runBinary(t, env, "apikey", "list")
		if code != exitOK || !strings.Contains(out, "LAST USED") {
			t.Fatalf("apikey list: %d %s\n%s", code, errOut, out)
		}
		rows := map[string][]string{}
		for _, line := range strings.Split(out, "\n")[1:] {
			if f := strings.Fields(line); len(f) >= 6 {
				rows[f[1]] = f
			}
		}
		return rows
	}
	rows := list()
	if got := rows["rotated"]; got == nil || got[4] != "never" {
		t.Fatalf("the new key before any use: %v", got)
	}
	if got := rows["bootstrap"]; got == nil || got[4] == "never" {
		t.Fatalf("the bootstrap key after a call: %v", got)
	}
	if code := b.do("GET", "/api/v1/tenants", newKey, nil, nil); code != http.StatusOK {
		t.Fatalf("new key: %d", code)
	}
	rows = list()
	if got := rows["rotated"]; got[4] == "never" {
		t.Fatalf("the new key after a call: %v", got)
	}
	oldID := rows["bootstrap"][0]
	if _, errOut, code := runBinary(t, env, "apikey", "revoke", oldID); code != exitOK {
		t.Fatalf("revoke: %s", errOut)
	}
	if code := b.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("revoked key on the running node: %d, want 401", code)
	}
	if code := b.do("GET", "/api/v1/tenants", newKey, nil, nil); code != http.StatusOK {
		t.Errorf("new key after the old one's revocation: %d", code)
	}
	b.stop()
	env[envListen] = freeAddr(t)
	_, errOut, code = runBinary(t, env, "serve")
	if code == exitOK || !strings.Contains(errOut, "revoked") || !strings.Contains(errOut, envBootstrapAPIKey) {
		t.Errorf("serve with the revoked bootstrap key: exit %d, want a refusal naming it:\n%s", code, errOut)
	}
}
