package scim_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestNullAndEmptyAreUnassigned: null, an empty array and an object left
// with nothing in it are an unassigned attribute (RFC 7643 §2.5), whether
// a POST, a PUT or a PATCH sends them: the resource comes back without
// them (no "emails": null, no extension named in schemas for a null one),
// and re-sending them to a resource without them is no change (same
// version, no event); so is re-sending a user created without active.
func TestNullAndEmptyAreUnassigned(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		body := map[string]any{
			"schemas":                 []string{scim.SchemaUser, scim.SchemaEnterpriseUser},
			"userName":                "nulls@acme.com",
			"active":                  true,
			"emails":                  nil,
			"phoneNumbers":            []any{},
			"title":                   nil,
			"name":                    map[string]any{"givenName": "Ann", "middleName": nil},
			"addresses":               []any{nil, map[string]any{"type": nil}, map[string]any{"type": "work", "locality": nil, "region": "X"}},
			scim.SchemaEnterpriseUser: map[string]any{"manager": map[string]any{"value": nil}, "department": nil},
		}
		r := e.do("POST", "/Users", body).want(t, http.StatusCreated)
		id, version := r.str("id"), r.header.Get("ETag")
		check := func(how string, r resp) {
			t.Helper()
			for _, attr := range []string{"emails", "phoneNumbers", "title", "name.middleName", scim.SchemaEnterpriseUser} {
				if _, ok := lookupOK(r.body, attr); ok {
					t.Errorf("%s: %s is returned although unassigned: %s", how, attr, r.raw)
				}
			}
			if lookup(r.body, "name.givenName") != "Ann" || lookup(r.body, "addresses.0.region") != "X" || lookup(r.body, "addresses.1") != nil {
				t.Errorf("%s: assigned values lost: %s", how, r.raw)
			}
			if strings.Contains(r.raw, ":null") || strings.Contains(r.raw, "[]") || strings.Contains(r.raw, "{}") {
				t.Errorf("%s: answer holds an unassigned value: %s", how, r.raw)
			}
			if s, _ := r.body["schemas"].([]any); len(s) != 1 {
				t.Errorf("%s: schemas %v name an extension the user does not have", how, s)
			}
		}
		check("POST", r)
		check("GET", e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK))

		events := len(eventTypes(t, st))
		check("PUT", e.do("PUT", "/Users/"+id, body).want(t, http.StatusOK))
		check("PATCH", e.do("PATCH", "/Users/"+id, map[string]any{"schemas": []string{scim.SchemaPatchOp},
			"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"title": nil, "emails": []any{}, "nickName": nil}}}}).
			want(t, http.StatusOK))
		if got := e.do("GET", "/Users/"+id, nil).header.Get("ETag"); got != version {
			t.Errorf("re-sending unassigned attributes moved the version from %s to %s", version, got)
		}
		if n := len(eventTypes(t, st)) - events; n != 0 {
			t.Errorf("re-sending unassigned attributes sent %d events", n)
		}

		// Without active, a user is created active; the same body re-sent
		// by PUT is no change either.
		plain := map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "plain@acme.com", "title": nil}
		r = e.do("POST", "/Users", plain).want(t, http.StatusCreated)
		events = len(eventTypes(t, st))
		if put := e.do("PUT", "/Users/"+r.str("id"), plain).want(t, http.StatusOK); put.header.Get("ETag") != r.header.Get("ETag") || lookup(put.body, "active") != true {
			t.Errorf("re-sending a user created without active changed it: %s then %s", r.raw, put.raw)
		}
		if n := len(eventTypes(t, st)) - events; n != 0 {
			t.Errorf("re-sending a user created without active sent %d events", n)
		}

		// A PATCH that sets an attribute to null unassigns it.
		e.do("PATCH", "/Users/"+id, map[string]any{"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"name": map[string]any{"givenName": nil}}}}}).
			want(t, http.StatusOK)
		if r := e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK); strings.Contains(r.raw, `"name"`) {
			t.Errorf("name left with no sub-attribute is still returned: %s", r.raw)
		}

		g := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng", "externalId": nil,
			"urn:ietf:params:scim:schemas:extension:acme:2.0:Group": map[string]any{"cost": nil}}).want(t, http.StatusCreated)
		if strings.Contains(g.raw, ":null") || strings.Contains(g.raw, "acme:2.0") {
			t.Errorf("group keeps unassigned values: %s", g.raw)
		}
	})
}

// lookupOK is lookup that tells an absent attribute from a null one.
func lookupOK(v any, path string) (any, bool) {
	parts := strings.Split(path, ".")
	if strings.HasPrefix(path, "urn:") {
		parts = []string{path}
	}
	for _, p := range parts {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, true
}
