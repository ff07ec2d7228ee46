package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestRevocationGaugesFollowRedisOutage: the operator can see the promise
// "revocation is never lost" being kept. Two nodes on one PostgreSQL and a
// Redis of the test's own; a signed-in user is deprovisioned over SCIM while
// Redis is down. Both nodes' /metrics then show the order waiting, with an
// age that grows, and the cache down; once Redis is back the gauge drops to
// 0, the cache is up again and the user's session is gone.
func TestRevocationGaugesFollowRedisOutage(t *testing.T) {
	t.Parallel()
	rs := sessionstest.StartServer(t)
	nodes := startNodes(t, productionEnv(t, rs.URL()), 2)
	a, b := nodes[0], nodes[1]

	c := newRPClient(t, a, "Gauged", nil)
	var tenants struct {
		Data []tenantJSON `json:"data"`
	}
	if code := a.do("GET", "/api/v1/tenants", e2eBootstrapKey, nil, &tenants); code != http.StatusOK || len(tenants.Data) != 1 {
		t.Fatalf("GET /tenants = %d, %+v; want the dev tenant", code, tenants)
	}
	var dir struct {
		SCIMBaseURL string `json:"scim_base_url"`
		BearerToken string `json:"bearer_token"`
	}
	if code := a.do("POST", "/api/v1/tenants/"+tenants.Data[0].ID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("POST directory = %d", code)
	}
	scim := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, dir.SCIMBaseURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+dir.BearerToken)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	tok := c.login("alice@example.com")
	code, body := scim("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@example.com",`+
		`"active":true,"emails":[{"value":"alice@example.com","primary":true}]}`)
	var u struct{ ID string }
	if err := json.Unmarshal([]byte(body), &u); code != http.StatusCreated || err != nil || u.ID != tok.sub(t) {
		t.Fatalf("SCIM create = %d %s; want the signed-in user %s adopted", code, body, tok.sub(t))
	}

	// waitGauges scrapes n until ok holds of its gauges.
	waitGauges := func(n *node, what string, ok func(g map[string]float64) bool) map[string]float64 {
		t.Helper()
		var g map[string]float64
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			g = scrapeGauges(t, n)
			if ok(g) {
				return g
			}
			if time.Now().After(deadline) {
				shown := map[string]float64{}
				for k, v := range g {
					if strings.Contains(k, "_pending") || strings.HasPrefix(k, "idbroker_dependency_up") {
						shown[k] = v
					}
				}
				t.Fatalf("%s: not within 20 s; gauges %v", what, shown)
			}
		}
	}
	const (
		pending = "idbroker_revocations_pending"
		age     = "idbroker_revocations_oldest_pending_age_seconds"
		cacheUp = `idbroker_dependency_up{dependency="cache"}`
		dbUp    = `idbroker_dependency_up{dependency="database"}`
	)
	for _, n := range nodes {
		waitGauges(n, "healthy", func(g map[string]float64) bool {
			return g[pending] == 0 && g[age] == 0 && g[cacheUp] == 1 && g[dbUp] == 1 &&
				g["idbroker_backchannel_logouts_pending"] == 0 && g["idbroker_webhook_deliveries_pending"] == 0
		})
	}

	rs.Kill()
	if code, body := scim("DELETE", "/Users/"+u.ID, ""); code != http.StatusNoContent {
		t.Fatalf("SCIM DELETE with Redis down = %d %s; want 204 (the revocation queued)", code, body)
	}
	waiting := func(g map[string]float64) bool { return g[pending] == 1 && g[cacheUp] == 0 && g[dbUp] == 1 }
	first := waitGauges(a, "node A sees the revocation waiting", waiting)
	waitGauges(b, "node B sees the revocation waiting", waiting)
	time.Sleep(1500 * time.Millisecond)
	later := waitGauges(a, "still waiting", waiting)
	if later[age] < first[age]+1 {
		t.Errorf("age of the waiting revocation went from %v to %v in 1.5 s; want it growing", first[age], later[age])
	}
	if later[age] > 60 {
		t.Errorf("age %v s for a revocation seconds old", later[age])
	}

	rs.Start()
	for _, n := range nodes {
		waitGauges(n, "revocation applied", func(g map[string]float64) bool {
			return g[pending] == 0 && g[age] == 0 && g[cacheUp] == 1
		})
	}
	if c.active(b, tok.AccessToken) || c.userinfo(b, tok.AccessToken) != http.StatusUnauthorized {
		t.Fatal("the deprovisioned user's session outlived the applied revocation")
	}
	// The gauges name no user (tenants are labelled by design: ObserveTenant).
	if strings.Contains(scrapeText(t, a), u.ID) {
		t.Errorf("/metrics names the user %s", u.ID)
	}
}

// scrapeText is n's /metrics page.
func scrapeText(t *testing.T, n *node) string {
	t.Helper()
	resp, err := n.client.Get(n.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	return string(raw)
}

// scrapeGauges reads n's /metrics into series (name with its labels, as
// exposed) → value.
func scrapeGauges(t *testing.T, n *node) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for line := range strings.SplitSeq(scrapeText(t, n), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); i > 0 && err == nil {
			out[line[:i]] = v
		}
	}
	return out
}
