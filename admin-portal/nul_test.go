package adminportal_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/sessions"
)

// TestNULRefused: PostgreSQL stores no NUL character, so a \u0000 in any
// string of a request body is a 400 naming the field, on both backends,
// including the fields a connection type decodes itself (before, a SAML
// idp_entity_id or an OIDC client_id with a NUL was a 500 on PostgreSQL).
func TestNULRefused(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newConnEnv(t, b.open(t), sessions.NewMemory())
			tn := e.createTenant(map[string]any{"name": "Acme"})
			var conn connOut
			e.must(http.StatusCreated, "POST", "/tenants/"+tn.ID+"/connections", map[string]any{"type": "saml", "name": "Okta"}).decode(t, &conn)
			for _, tc := range []struct{ method, path, body, field string }{
				{"POST", "/tenants/" + tn.ID + "/connections", `{"type":"saml","name":"n","saml":{"idp_entity_id":"a\u0000b","idp_sso_url":"https://idp.example/sso"}}`, "saml.idp_entity_id"},
				{"POST", "/tenants/" + tn.ID + "/connections", `{"type":"oidc","name":"n","oidc":{"client_id":"a\u0000b"}}`, "oidc.client_id"},
				{"PATCH", "/connections/" + conn.ID, `{"saml":{"idp_entity_id":"a\u0000b"}}`, "saml.idp_entity_id"},
				{"POST", "/tenants", `{"name":"ok","domains":[{"domain":"a.example"},{"domain":"b\u0000.example"}]}`, "domains[1].domain"},
				{"POST", "/applications", `{"name":"Web","redirect_uris":["https://app.example/cb\u0000"]}`, "redirect_uris[0]"},
			} {
				r := e.call(tc.method, tc.path, tc.body)
				if got := r.err(t); r.status != http.StatusBadRequest || got.Field != tc.field || !strings.Contains(got.Message, "NUL") {
					t.Errorf("%s %s %s: %d %s, want 400 naming %s", tc.method, tc.path, tc.body, r.status, r.body, tc.field)
				}
			}
			// A backslash followed by u0000 is text, not a NUL.
			e.must(http.StatusCreated, "POST", "/applications", `{"name":"C:\\u0000","redirect_uris":["https://app.example/cb"]}`)
		})
	}
}
