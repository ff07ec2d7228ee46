package scim_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestQualifiedNamesInABody: a POST or PUT body that names attributes by
// their schema URN (RFC 7644 §3.10) has them put where the schema does:
// an enterprise attribute in the extension's object, a core one among the
// core attributes; schemas then names only real schemas. The same
// attribute given both ways is refused.
func TestQualifiedNamesInABody(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		ent := scim.SchemaEnterpriseUser
		r := e.do("POST", "/Users", map[string]any{
			"schemas":                           []string{scim.SchemaUser, ent},
			"userName":                          "q@acme.com",
			ent + ":department":                 "R&D",
			ent + ":manager.value":              "mgr-1",
			scim.SchemaUser + ":name.givenName": "Ann",
			"urn:ietf:params:scim:schemas:core:2.0:user:TITLE": "Eng",
			ent: map[string]any{"costCenter": "42"},
		}).want(t, http.StatusCreated)
		id := r.str("id")
		for _, r := range []resp{r, e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK)} {
			if got, want := r.body[ent], map[string]any{"department": "R&D", "costCenter": "42", "manager": map[string]any{"value": "mgr-1"}}; !reflect.DeepEqual(got, want) {
				t.Errorf("enterprise extension %v, want %v: %s", got, want, r.raw)
			}
			if lookup(r.body, "name.givenName") != "Ann" || r.str("title") != "Eng" {
				t.Errorf("core attributes not in place: %s", r.raw)
			}
			if got := r.body["schemas"]; !reflect.DeepEqual(got, []any{scim.SchemaUser, ent}) {
				t.Errorf("schemas %v", got)
			}
		}
		if r := e.do("PUT", "/Users/"+id, map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "q@acme.com",
			"title": "A", scim.SchemaUser + ":title": "B"}).want(t, http.StatusBadRequest); r.str("scimType") != "invalidSyntax" {
			t.Errorf("title given twice: %s", r.raw)
		}
		g := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, scim.SchemaGroup + ":displayName": "Eng"}).
			want(t, http.StatusCreated)
		if g.str("displayName") != "Eng" || len(g.body["schemas"].([]any)) != 1 {
			t.Errorf("group with a qualified displayName: %s", g.raw)
		}
	})
}
