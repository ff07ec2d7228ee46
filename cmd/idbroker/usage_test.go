package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUsageAsBilledAcrossTwoNodes is what the vendor bills on, read from
// two nodes of one deployment (PostgreSQL and Redis shared): one user
// signing in through a real OIDC IdP on both nodes at once, a sign-in the
// IdP fails, one refused while the tenant is paused, SCIM writes of which
// some are refused. Logins count completed sign-ins, MAU the user once,
// SCIM operations the writes that happened; both nodes answer the same
// totals, by day and by month; the export, NDJSON and CSV from either
// node, holds every record once under the same keys, and nothing of
// another tenant, whose usage the API refuses once it is deleted.
func TestUsageAsBilledAcrossTwoNodes(t *testing.T) {
	t.Parallel()
	nodes := startNodes(t, productionEnv(t, ownRedis(t)), 2)
	a, b := nodes[0], nodes[1]
	u := &upstream{t: t, b: a, domain: "corp-" + randomHex(t, 4) + ".example"}
	var tn struct{ ID string }
	if code := a.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "Corp",
		"domains": []map[string]any{{"domain": u.domain, "verified": true}}}, &tn); code != http.StatusCreated {
		t.Fatalf("create tenant: %d", code)
	}
	u.tenantID = tn.ID
	var other struct{ ID string }
	if code := a.do("POST", "/api/v1/tenants", e2eBootstrapKey, map[string]any{"name": "=HYPERLINK(\"https://evil.example\")"}, &other); code != http.StatusCreated {
		t.Fatalf("create other tenant: %d", code)
	}
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if code := a.do("POST", "/api/v1/applications", e2eBootstrapKey, map[string]any{"name": "App",
		"redirect_uris": []string{"https://app.example/cb"}}, &app); code != http.StatusCreated {
		t.Fatalf("create application: %d", code)
	}
	u.clientID, u.secret = app.ClientID, app.ClientSecret
	op := newVendorOP(t, "/oauth2/default")
	op.set(func(op *vendorOP) {
		op.claims = map[string]any{"sub": "00u-alice", "email": "alice@" + u.domain, "email_verified": true}
	})
	conn := u.oidcConnection(op, nil)
	onB := *u
	onB.b = b

	// Four sign-ins of one user, two per node, all at once.
	var wg sync.WaitGroup
	subs := make([]string, 4)
	for i := range subs {
		wg.Go(func() {
			up := u
			if i%2 == 1 {
				up = &onB
			}
			res := up.signIn(conn, nil)
			if res.code == "" {
				t.Errorf("sign-in %d: no code (%d)", i, res.status)
				return
			}
			subs[i], _ = up.claims(res.code)["sub"].(string)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Refused: the IdP's token endpoint fails; then the tenant is paused.
	op.set(func(op *vendorOP) { op.tokenError = "invalid_grant" })
	if res := u.signIn(conn, nil); res.code != "" {
		t.Fatal("a sign-in the IdP failed got a code")
	}
	op.set(func(op *vendorOP) { op.tokenError = "" })
	for _, st := range []string{"paused", "active"} {
		if code := a.do("PATCH", "/api/v1/tenants/"+u.tenantID, e2eBootstrapKey, map[string]any{"status": st}, nil); code != http.StatusOK {
			t.Fatalf("status %s: %d", st, code)
		}
		if st == "paused" {
			if res := onB.signIn(conn, nil); res.code != "" {
				t.Fatal("a paused tenant's user signed in")
			}
		}
	}

	// SCIM: three writes happen (two creates, a delete); a duplicate
	// create (409) and a delete of what is gone (404) do not.
	var dir scimDirectory
	if code := a.do("POST", "/api/v1/tenants/"+u.tenantID+"/directories", e2eBootstrapKey, map[string]any{"name": "Okta"}, &dir); code != http.StatusCreated {
		t.Fatalf("create directory: %d", code)
	}
	user := func(name string) string {
		return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + name + `@` + u.domain + `","active":true}`
	}
	scim := func(n *node, method, path, body string) answer {
		return call(t, n, method, dir.SCIMBaseURL+path, "Bearer "+dir.BearerToken, "application/scim+json", []byte(body))
	}
	if r := scim(a, "POST", "/Users", user("bob")); r.status != http.StatusCreated {
		t.Fatalf("create bob: %d %s", r.status, r.raw)
	}
	if r := scim(b, "POST", "/Users", user("bob")); r.status != http.StatusConflict {
		t.Fatalf("create bob again: %d %s", r.status, r.raw)
	}
	carol := scim(b, "POST", "/Users", user("carol"))
	carolID, _ := carol.body["id"].(string)
	if carol.status != http.StatusCreated || carolID == "" {
		t.Fatalf("create carol: %d %s", carol.status, carol.raw)
	}
	if r := scim(a, "DELETE", "/Users/"+carolID, ""); r.status != http.StatusNoContent {
		t.Fatalf("delete carol: %d %s", r.status, r.raw)
	}
	if r := scim(b, "DELETE", "/Users/"+carolID, ""); r.status != http.StatusNotFound {
		t.Fatalf("delete carol again: %d %s", r.status, r.raw)
	}

	type totals struct {
		Logins         int64 `json:"logins"`
		MAU            int64 `json:"mau"`
		SCIMOperations int64 `json:"scim_operations"`
	}
	now := time.Now().UTC()
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	window := "from=" + from.Format(time.DateOnly) + "&to=" + now.AddDate(0, 0, 2).Format(time.DateOnly)
	want := totals{Logins: 4, MAU: 1, SCIMOperations: 3}
	for _, n := range nodes {
		for _, g := range []string{"day", "month"} {
			var rep struct {
				Totals totals   `json:"totals"`
				Data   []totals `json:"data"`
			}
			if code := n.do("GET", "/api/v1/tenants/"+u.tenantID+"/usage?"+window+"&granularity="+g, e2eBootstrapKey, nil, &rep); code != http.StatusOK {
				t.Fatalf("usage: %d", code)
			}
			var sum totals
			for _, d := range rep.Data {
				sum.Logins, sum.MAU, sum.SCIMOperations = sum.Logins+d.Logins, sum.MAU+d.MAU, sum.SCIMOperations+d.SCIMOperations
			}
			if rep.Totals != want || sum != want {
				t.Errorf("%s by %s: totals %+v, buckets sum to %+v; want %+v", n.base, g, rep.Totals, sum, want)
			}
		}
		if code := n.do("GET", "/api/v1/tenants/"+other.ID+"/usage?"+window, e2eBootstrapKey, nil, nil); code != http.StatusOK {
			t.Fatalf("other tenant's usage: %d", code)
		}
	}

	// The export, from each node, in each format.
	type rec struct{ key, meter, tenant, subject string }
	export := func(n *node, format string) []rec {
		t.Helper()
		req, _ := http.NewRequest("GET", n.base+"/api/v1/usage/export?"+window+"&format="+format, nil)
		req.Header.Set("Authorization", "Bearer "+e2eBootstrapKey)
		resp, err := n.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("export %s: %d", format, resp.StatusCode)
		}
		var out []rec
		if format == "csv" {
			rows, err := csv.NewReader(resp.Body).ReadAll()
			if err != nil || len(rows) == 0 || strings.Join(rows[0], ",") != "idempotency_key,event_name,meter,tenant_id,value,timestamp,time,subject" {
				t.Fatalf("csv export: %v %v", rows, err)
			}
			for _, r := range rows[1:] {
				if v, err := strconv.Atoi(r[4]); err != nil || v < 0 {
					t.Fatalf("csv value %q", r[4])
				}
				out = append(out, rec{r[0], r[2], r[3], r[7]})
			}
			return out
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var e struct {
				Key     string `json:"idempotency_key"`
				Meter   string `json:"meter"`
				Tenant  string `json:"tenant_id"`
				Subject string `json:"subject"`
			}
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("ndjson line %q: %v", sc.Text(), err)
			}
			out = append(out, rec{e.Key, e.Meter, e.Tenant, e.Subject})
		}
		return out
	}
	var first []rec
	for _, n := range nodes {
		for _, f := range []string{"ndjson", "csv"} {
			got := export(n, f)
			seen := map[string]bool{}
			count := map[string]int64{}
			for _, r := range got {
				if seen[r.key] {
					t.Errorf("%s %s: key %s twice", n.base, f, r.key)
				}
				seen[r.key] = true
				// The other tenant used nothing; a daily snapshot may have
				// counted its (zero) connections and users, as a node's first
				// snapshot pass runs in the background after it is ready.
				if r.tenant == other.ID && r.meter != "connection.count" && r.meter != "directory.user_count" {
					t.Errorf("%s %s: a record of a tenant with no usage: %+v", n.base, f, r)
				}
				if r.tenant == u.tenantID {
					count[r.meter]++
				}
				if r.meter == "user.active" && r.tenant == u.tenantID && r.subject != subs[0] {
					t.Errorf("%s %s: user.active of %s, want %s", n.base, f, r.subject, subs[0])
				}
			}
			if count["login.succeeded"] != want.Logins || count["user.active"] != want.MAU || count["scim.operation"] != want.SCIMOperations {
				t.Errorf("%s %s: the tenant's records per meter %v; want %+v", n.base, f, count, want)
			}
			if first == nil {
				first = got
				continue
			}
			if len(got) != len(first) {
				t.Errorf("%s %s: %d records, the first export had %d", n.base, f, len(got), len(first))
			}
			for i := range min(len(got), len(first)) {
				if got[i] != first[i] {
					t.Errorf("%s %s: record %d is %+v, the first export's %+v", n.base, f, i, got[i], first[i])
					break
				}
			}
		}
	}

	// Deleted: its usage is another deleted object, on both nodes.
	if code := b.do("DELETE", "/api/v1/tenants/"+other.ID, e2eBootstrapKey, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	for _, n := range nodes {
		if code := n.do("GET", "/api/v1/tenants/"+other.ID+"/usage", e2eBootstrapKey, nil, nil); code != http.StatusNotFound {
			t.Errorf("%s: a deleted tenant's usage = %d, want 404", n.base, code)
		}
	}
}
