package adminportal_test

import (
	"net/http"
	"net/url"
	"testing"
)

// TestListTenantsByDomain: ?domain= finds the tenant holding the domain
// verified (the one its users' sign-ins route to), in any case or
// spelling of the domain; an unverified claim, another status or a page
// past it find nothing; and a filter the list does not know is a 400,
// never every tenant.
func TestListTenantsByDomain(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		acme := e.createTenant(map[string]any{"name": "Acme", "domains": []any{map[string]any{"domain": "acme.com", "verified": true}}})
		e.createTenant(map[string]any{"name": "Globex", "domains": []any{map[string]any{"domain": "globex.com"}}})
		initech := e.createTenant(map[string]any{"name": "Initech", "domains": []any{map[string]any{"domain": "initech.com", "verified": true}}})
		e.must(http.StatusOK, "PATCH", "/tenants/"+initech.ID, map[string]any{"status": "paused"})

		for _, tc := range []struct {
			query string
			want  string // tenant id, or "" for none
		}{
			{"domain=acme.com", acme.ID},
			{"domain=" + url.QueryEscape(" ACME.com. "), acme.ID},
			{"domain=globex.com", ""}, // claimed, not verified: sign-ins do not go there
			{"domain=nobody.example", ""},
			{"domain=initech.com", initech.ID},
			{"domain=initech.com&status=paused", initech.ID},
			{"domain=initech.com&status=active", ""},
			{"domain=acme.com&after=" + acme.ID, ""},
			{"domain=acme.com&limit=1", acme.ID},
		} {
			var got listOut[tenantOut]
			e.must(http.StatusOK, "GET", "/tenants?"+tc.query, nil).decode(t, &got)
			switch {
			case tc.want == "" && len(got.Data) != 0,
				tc.want != "" && (len(got.Data) != 1 || got.Data[0].ID != tc.want),
				got.NextCursor != nil:
				t.Errorf("GET /tenants?%s = %+v; want %q", tc.query, got, tc.want)
			}
		}
		for _, q := range []string{"domain=", "domain=not%20a%20domain", "name=Acme", "domains%5B%5D=acme.com", "search=acme"} {
			if r := e.call("GET", "/tenants?"+q, nil); r.status != http.StatusBadRequest || r.err(t).Code != "invalid_request" {
				t.Errorf("GET /tenants?%s: %d %s", q, r.status, r.body)
			}
		}
		// The other lists refuse what they do not know too.
		for _, p := range []string{"/tenants/" + acme.ID + "/domains?verified=true",
			"/applications?name=x", "/webhooks?enabled=true", "/audit_events?tenant_id=" + acme.ID + "&resource_id=x",
			"/tenants/" + acme.ID + "/logouts?user_id=x"} {
			if r := e.call("GET", p, nil); r.status != http.StatusBadRequest || r.err(t).Code != "invalid_request" {
				t.Errorf("GET %s: %d %s", p, r.status, r.body)
			}
		}
	})
}
