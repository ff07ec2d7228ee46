package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/internal/dnstest"
)

// TestDomainVerificationRealDNS: POST /tenants/{id}/domains/{dom}/verify
// against a DNS server shaped as real ones answer, through the broker as
// serve wires it. An internationalised domain is named in the path in any
// form; the record is found split into strings, quoted, among others or
// behind a CNAME; SERVFAIL is a failed lookup (422, try again) and not a
// missing record; a second tenant that proves the same domain is 409, and
// another tenant's domain is 404 under a tenant's path.
func TestDomainVerificationRealDNS(t *testing.T) {
	t.Parallel()
	w := startWired(t, false)
	auth := map[string]string{"Authorization": "Bearer " + w.apiKey}
	do := func(method, path, body string, want int) map[string]any {
		t.Helper()
		a, err := httpDo(method, w.url+"/api/v1"+path, auth, []byte(body))
		if err != nil || a.status != want {
			t.Fatalf("%s %s = %d %v, want %d: %s", method, path, a.status, err, want, a.body)
		}
		var out map[string]any
		json.Unmarshal(a.body, &out)
		return out
	}
	tenant := func(name string) string {
		id, _ := do("POST", "/tenants", `{"name":"`+name+`"}`, 201)["id"].(string)
		return id
	}
	addDomain := func(tn, dom string) (id, recordName, recordValue string) {
		d := do("POST", "/tenants/"+tn+"/domains", `{"domain":"`+dom+`"}`, 201)
		v, _ := d["verification"].(map[string]any)
		id, _ = d["id"].(string)
		recordName, _ = v["record_name"].(string)
		recordValue, _ = v["record_value"].(string)
		return id, recordName, recordValue
	}
	message := func(m map[string]any) string {
		e, _ := m["error"].(map[string]any)
		s, _ := e["message"].(string)
		return s
	}

	a := tenant("A")
	_, name, value := addDomain(a, "Bücher.example.")
	if name != "_idbroker-verification.xn--bcher-kva.example" {
		t.Fatalf("record name %q", name)
	}
	verify := func(tn, dom string, want int) map[string]any {
		t.Helper()
		return do("POST", "/tenants/"+tn+"/domains/"+url.PathEscape(dom)+"/verify", "", want)
	}

	w.dns.SetTXT(name)
	if m := verify(a, "bücher.example", 422); !strings.Contains(message(m), "no TXT record found") {
		t.Errorf("NXDOMAIN: %v", m)
	}
	w.dns.SetRcode(name, dnstest.RcodeServFail)
	if m := verify(a, "BÜCHER.example", 422); !strings.Contains(message(m), "lookup") || strings.Contains(message(m), "no TXT record") {
		t.Errorf("SERVFAIL: %v, want a failed lookup, not a missing record", m)
	}
	w.dns.SetTXTStrings(name, []string{"v=spf1 -all"}, []string{`"idbroker-`, `verification=` + strings.TrimPrefix(value, "idbroker-verification=") + `"`})
	if d := verify(a, "xn--bcher-kva.example", 200); d["verified"] != true || d["domain"] != "xn--bcher-kva.example" {
		t.Errorf("verified: %v", d)
	}

	// A CNAME to where a DNS provider hosts the record.
	_, name2, value2 := addDomain(a, "acme.example")
	w.dns.SetCNAME(name2, "tenant-a.verify.provider.example")
	w.dns.SetTXT("tenant-a.verify.provider.example", value2)
	if d := verify(a, "ACME.example.", 200); d["verified"] != true {
		t.Errorf("CNAME: %v", d)
	}

	// Tenant B claims the same domain; its own record proves it, but one
	// domain routes to one tenant.
	b := tenant("B")
	domB, nameB, valueB := addDomain(b, "bücher.example")
	if nameB != name || valueB == value {
		t.Fatalf("B's record %s %s", nameB, valueB)
	}
	w.dns.SetTXT(nameB, value, valueB)
	verify(b, "bücher.example", 409)
	// A's domain under B's path, and B's under A's, are unknown.
	do("POST", "/tenants/"+a+"/domains/"+domB+"/verify", "", 404)
	if m := do("GET", "/tenants?domain="+url.QueryEscape("BÜCHER.example."), "", 200); !strings.Contains(mustJSON(t, m), a) || strings.Contains(mustJSON(t, m), b) {
		t.Errorf("GET /tenants?domain=: %v, want A only", m)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
