package adminportal_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestRotateDirectoryTokenWithOverlap: with previous_token_expires_in the
// old SCIM token keeps reading and writing its own directory (the IdP has
// not been given the new one yet) while the new one works too; it opens
// no other tenant's directory; a rotation without an overlap stops both
// older tokens at once; the audit row says until when and never a token.
func TestRotateDirectoryTokenWithOverlap(t *testing.T) {
	eachSCIMBackend(t, func(t *testing.T, e *env) {
		ta := e.createTenant(map[string]any{"name": "Acme"})
		tb := e.createTenant(map[string]any{"name": "Globex"})
		var d, other directoryOut
		e.must(http.StatusCreated, "POST", "/tenants/"+ta.ID+"/directories", map[string]any{"name": "Okta"}).decode(t, &d)
		e.must(http.StatusCreated, "POST", "/tenants/"+tb.ID+"/directories", map[string]any{"name": "Entra"}).decode(t, &other)
		old := *d.BearerToken
		// The old token has been used: a node may remember it.
		provision(t, d.SCIMBaseURL, old, scimUser("ann@acme.example", "Ann"))

		var rot struct {
			directoryOut
			PreviousTokenExpiresAt *string `json:"previous_token_expires_at"`
		}
		r := e.must(http.StatusOK, "POST", "/directories/"+d.ID+"/token", map[string]any{"previous_token_expires_in": 3600})
		r.decode(t, &rot)
		if rot.BearerToken == nil || *rot.BearerToken == old || rot.PreviousTokenExpiresAt == nil || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("rotation answer %s", r.body)
		}
		newer := *rot.BearerToken
		if got := e.must(http.StatusOK, "GET", "/directories/"+d.ID, nil); !strings.Contains(string(got.body), `"previous_token_expires_at":"`) ||
			strings.Contains(string(got.body), "bearer_token") {
			t.Errorf("GET during the overlap: %s", got.body)
		}
		for name, tok := range map[string]string{"old": old, "new": newer} {
			if st, _ := scimCall(t, d.SCIMBaseURL, tok, "GET", "/Users", nil); st != http.StatusOK {
				t.Errorf("%s token reading during the overlap: %d", name, st)
			}
		}
		provision(t, d.SCIMBaseURL, old, scimUser("bob@acme.example", "Bob"))
		provision(t, d.SCIMBaseURL, newer, scimUser("cy@acme.example", "Cy"))
		// Cross-tenant: neither token opens Globex's directory.
		for _, tok := range []string{old, newer} {
			if st, _ := scimCall(t, other.SCIMBaseURL, tok, "GET", "/Users", nil); st != http.StatusUnauthorized {
				t.Errorf("Acme's token on Globex's directory: %d, want 401", st)
			}
			if st, _ := scimCall(t, other.SCIMBaseURL, tok, "POST", "/Users", scimUser("eve@globex.example", "Eve")); st != http.StatusUnauthorized {
				t.Errorf("Acme's token writing Globex's directory: %d, want 401", st)
			}
		}
		if r := e.call("POST", "/directories/"+d.ID+"/token", nil, "Authorization", "Bearer idb_sk_wrong"); r.status != http.StatusUnauthorized {
			t.Errorf("rotation without a valid key: %d", r.status)
		}

		// Now without an overlap: both older tokens stop at once.
		var last directoryOut
		r = e.must(http.StatusOK, "POST", "/directories/"+d.ID+"/token", nil)
		r.decode(t, &last)
		var raw map[string]any
		_ = json.Unmarshal(r.body, &raw)
		if _, ok := raw["previous_token_expires_at"]; ok {
			t.Errorf("rotation without overlap names an expiry: %s", r.body)
		}
		for name, tok := range map[string]string{"first": old, "second": newer} {
			if st, _ := scimCall(t, d.SCIMBaseURL, tok, "GET", "/Users", nil); st != http.StatusUnauthorized {
				t.Errorf("%s token after a rotation without overlap: %d, want 401", name, st)
			}
			if st, _ := scimCall(t, d.SCIMBaseURL, tok, "POST", "/Users", scimUser("dan@acme.example", "Dan")); st != http.StatusUnauthorized {
				t.Errorf("%s token writing after a rotation without overlap: %d, want 401", name, st)
			}
		}
		if got := e.must(http.StatusOK, "GET", "/directories/"+d.ID, nil); strings.Contains(string(got.body), "previous_token_expires_at") {
			t.Errorf("GET after a rotation without overlap: %s", got.body)
		}
		if st, _ := scimCall(t, d.SCIMBaseURL, *last.BearerToken, "GET", "/Users", nil); st != http.StatusOK {
			t.Errorf("newest token: %d", st)
		}

		for _, bad := range []string{`{"previous_token_expires_in": -5}`, `{"previous_token_expires_in": 604801}`, `{"overlap": 60}`} {
			if r := e.call("POST", "/directories/"+d.ID+"/token", bad); r.status != http.StatusBadRequest {
				t.Errorf("body %s: %d, want 400", bad, r.status)
			}
		}
		rows := e.audits(ta.ID, "directory.token_rotated")
		if len(rows) != 2 {
			t.Fatalf("%d directory.token_rotated rows, want 2", len(rows))
		}
		for _, row := range rows {
			for _, tok := range []string{old, newer, *last.BearerToken} {
				if strings.Contains(string(row.Context), tok) {
					t.Errorf("audit row carries a token: %s", row.Context)
				}
			}
		}
		if len(e.audits(tb.ID, "directory.token_rotated")) != 0 {
			t.Error("Globex's trail got Acme's rotation")
		}
	})
}
