package main

import (
	"net/http"
	"testing"
)

// TestTenantLifecycleAcrossTwoNodes: a tenant paused, cancelled or
// deleted through one node has its users' tokens dead on both nodes as
// soon as the call returns (introspection, userinfo, refresh); resumed or
// restored, the sessions stay ended while new sign-ins work. Only
// completed sign-ins are billed.
func TestTenantLifecycleAcrossTwoNodes(t *testing.T) {
	t.Parallel()
	nodes := startNodes(t, productionEnv(t, ownRedis(t)), 2)
	a, b := nodes[0], nodes[1]
	c := newRPClient(t, a, "App", nil)
	var tenants struct {
		Data []tenantJSON `json:"data"`
	}
	if code := a.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) != 1 {
		t.Fatalf("GET /tenants = %d, %+v; want the dev tenant", code, tenants)
	}
	tenantID := tenants.Data[0].ID
	status := func(n *node, s string) {
		t.Helper()
		if code := n.do("PATCH", "/api/v1/tenants/"+tenantID, e2eBootstrapKey, map[string]any{"status": s}, nil); code != http.StatusOK {
			t.Fatalf("status %s through %s = %d", s, n.base, code)
		}
	}
	dead := func(step string, tok tokens) {
		t.Helper()
		for _, n := range nodes {
			if c.active(n, tok.AccessToken) || c.userinfo(n, tok.AccessToken) != http.StatusUnauthorized {
				t.Errorf("%s: %s still honours the access token", step, n.base)
			}
		}
		var fresh tokens
		if code := c.refreshInto(a, tok.RefreshToken, &fresh); code == http.StatusOK {
			t.Errorf("%s: the refresh token still works", step)
		}
	}
	alive := func(step string, tok tokens) {
		t.Helper()
		for _, n := range nodes {
			if !c.active(n, tok.AccessToken) {
				t.Fatalf("%s: %s does not honour a fresh session", step, n.base)
			}
		}
	}

	tok := c.login("alice@example.com")
	alive("signed in", tok)
	status(b, "paused")
	dead("paused through the other node", tok)
	status(a, "active")
	dead("resumed", tok)

	tok = c.login("alice@example.com")
	alive("signed in after the resume", tok)
	status(a, "paused")
	status(b, "cancelled")
	dead("cancelled", tok)
	if code := a.do("DELETE", "/api/v1/tenants/"+tenantID, e2eBootstrapKey, nil, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE = %d", code)
	}
	var restored tenantJSON
	if code := b.do("POST", "/api/v1/tenants/"+tenantID+"/restore", e2eBootstrapKey, nil, &restored); code != http.StatusOK || restored.Status != "cancelled" {
		t.Fatalf("restore = %d %+v, want 200 and the status it had (cancelled)", code, restored)
	}
	dead("restored", tok)

	var use struct {
		Totals struct {
			Logins int64 `json:"logins"`
			MAU    int64 `json:"mau"`
		} `json:"totals"`
	}
	if code := b.do("GET", "/api/v1/tenants/"+tenantID+"/usage", e2eBootstrapKey, nil, &use); code != http.StatusOK ||
		use.Totals.Logins != 2 || use.Totals.MAU != 1 {
		t.Fatalf("usage = %d %+v, want 2 logins of 1 user", code, use.Totals)
	}
}
