package adminportal_test

import (
	"net/http"
	"testing"

	"github.com/idbroker/idbroker/sessions"
)

// TestPatchNull: in a PATCH, null is never taken for an absent field. A
// field the API shows as null (or []) when it has no value is unset by
// null, as a vendor that read it back expects; a field that always has a
// value refuses null with a 400 naming it. Before, every null was silently
// ignored: {"tier": null} answered 200 and kept the tier.
func TestPatchNull(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newConnEnv(t, b.open(t), sessions.NewMemory())
			tn := e.createTenant(map[string]any{"name": "Acme", "tier": "growth"})
			var app appOut
			e.must(http.StatusCreated, "POST", "/applications", map[string]any{
				"name": "Web", "redirect_uris": []string{"https://app.example/cb"},
				"post_logout_redirect_uris": []string{"https://app.example/"},
				"backchannel_logout_uri":    "https://app.example/bcl",
				"initiate_login_uri":        "https://app.example/login",
				"access_token_ttl_seconds":  600,
			}).decode(t, &app)
			var conn connOut
			e.must(http.StatusCreated, "POST", "/tenants/"+tn.ID+"/connections", map[string]any{"type": "saml", "name": "Okta"}).decode(t, &conn)

			// Unset by null.
			var got tenantOut
			e.must(http.StatusOK, "PATCH", "/tenants/"+tn.ID, `{"tier":null}`).decode(t, &got)
			if got.Tier != nil {
				t.Errorf(`PATCH {"tier":null}: tier %q, want null`, *got.Tier)
			}
			var upd appOut
			e.must(http.StatusOK, "PATCH", "/applications/"+app.ID, `{"backchannel_logout_uri":null,"initiate_login_uri":null,
				"post_logout_redirect_uris":null,"access_token_ttl_seconds":null}`).decode(t, &upd)
			if upd.BackchannelLogoutURI != nil || upd.InitiateLoginURI != nil || len(upd.PostLogoutRedirectURIs) != 0 ||
				upd.PostLogoutRedirectURIs == nil || upd.AccessTTL != nil || upd.Name != "Web" || len(upd.RedirectURIs) != 1 {
				t.Errorf("PATCH of nulls left %+v, want those fields unset and the rest as it was", upd)
			}

			// Refused: these always have a value.
			for _, tc := range []struct{ path, body, field string }{
				{"/tenants/" + tn.ID, `{"name":null}`, "name"},
				{"/tenants/" + tn.ID, `{"status":null}`, "status"},
				{"/tenants/" + tn.ID, `{"rate_limits":null}`, "rate_limits"},
				{"/applications/" + app.ID, `{"name":null}`, "name"},
				{"/applications/" + app.ID, `{"redirect_uris":null}`, "redirect_uris"},
				{"/connections/" + conn.ID, `{"name":null}`, "name"},
				{"/connections/" + conn.ID, `{"status":null}`, "status"},
			} {
				r := e.call("PATCH", tc.path, tc.body)
				if r.status != http.StatusBadRequest || r.err(t).Field != tc.field {
					t.Errorf("PATCH %s %s: %d %s, want 400 naming %s", tc.path, tc.body, r.status, r.body, tc.field)
				}
			}
			// Inside a field, decoding is as strict as at the top.
			if r := e.call("PATCH", "/tenants/"+tn.ID, `{"rate_limits":{"token_per_minute":10}}`); r.status != http.StatusBadRequest || r.err(t).Field != "token_per_minute" {
				t.Errorf("unknown field inside rate_limits: %d %s", r.status, r.body)
			}
			// Absent fields are still left alone.
			e.must(http.StatusOK, "PATCH", "/tenants/"+tn.ID, `{}`).decode(t, &got)
			if got.Name != "Acme" || got.Status != "active" {
				t.Errorf("after the refused PATCHes: %+v", got)
			}
		})
	}
}
