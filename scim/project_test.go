package scim_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/scim"
)

// TestAttributesSelectParts: attributes= and excludedAttributes= name
// attributes down to their sub-attributes and into extensions (RFC 7644
// §3.9, §3.10): excluding name.givenName keeps the rest of name, and
// asking for an extension's attribute returns it. id, schemas and meta
// are always returned.
func TestAttributesSelectParts(t *testing.T) {
	e := newEnv(t, backends[0].open(t), nil)
	id := e.do("POST", "/Users", map[string]any{
		"schemas":  []string{scim.SchemaUser, scim.SchemaEnterpriseUser},
		"userName": "alice@acme.com", "displayName": "Alice", "title": "Eng",
		"name":                    map[string]any{"givenName": "Alice", "familyName": "Smith"},
		"emails":                  []any{map[string]any{"value": "alice@acme.com", "type": "work", "primary": true}},
		scim.SchemaEnterpriseUser: map[string]any{"department": "R&D", "costCenter": "42"},
	}).want(t, http.StatusCreated).str("id")
	ent := scim.SchemaEnterpriseUser
	for _, tc := range []struct {
		query string
		want  string // the resource without id, schemas and meta, as JSON
	}{
		{"attributes=userName", `{"userName":"alice@acme.com"}`},
		{"attributes=USERNAME,Name.GivenName", `{"name":{"givenName":"Alice"},"userName":"alice@acme.com"}`},
		{"attributes=emails.value", `{"emails":[{"value":"alice@acme.com"}]}`},
		{"attributes=" + scim.SchemaUser + ":name.familyName", `{"name":{"familyName":"Smith"}}`},
		{"attributes=" + ent + ":department", `{"` + ent + `":{"department":"R\u0026D"}}`},
		{"attributes=" + ent, `{"` + ent + `":{"costCenter":"42","department":"R\u0026D"}}`},
		{"attributes=nickName", `{}`},
		{"attributes=title.sub", `{}`},
		{"excludedAttributes=name.givenName,emails.type,emails.primary,active,displayName,title," + ent + ":costCenter",
			`{"emails":[{"value":"alice@acme.com"}],"name":{"familyName":"Smith"},"` + ent + `":{"department":"R\u0026D"},"userName":"alice@acme.com"}`},
		{"excludedAttributes=id,meta,schemas,name,emails,active,displayName,title,userName," + ent, `{}`},
	} {
		for _, path := range []string{"/Users/" + id + "?" + tc.query, "/Users?filter=" + url.QueryEscape(`userName eq "alice@acme.com"`) + "&" + tc.query} {
			r := e.do("GET", path, nil).want(t, http.StatusOK)
			res := r.body
			if list, ok := r.body["Resources"].([]any); ok {
				res = list[0].(map[string]any)
			}
			var always []string
			for _, k := range []string{"id", "schemas", "meta"} {
				if _, ok := res[k]; ok {
					always = append(always, k)
				}
				delete(res, k)
			}
			got, _ := json.Marshal(res)
			if string(got) != tc.want || !slices.Equal(always, []string{"id", "schemas", "meta"}) {
				t.Errorf("GET %s:\n got  %s (with %s)\n want %s", path, got, strings.Join(always, ", "), tc.want)
			}
		}
	}
}
