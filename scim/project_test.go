package scim_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
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

// TestGroupPatchWithAttributes: a group PATCH answers 204, but one that
// names attributes (or excludedAttributes) gets the group as changed with
// 200 and what it named (RFC 7644 §3.5.2), members only when asked for.
func TestGroupPatchWithAttributes(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		uid := e.do("POST", "/Users", userBody("member@acme.com", nil)).want(t, http.StatusCreated).str("id")
		gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng"}).want(t, http.StatusCreated).str("id")
		patch := func(query string, ops ...any) resp {
			if ops == nil {
				ops = []any{} // an empty list, not a missing one
			}
			return e.do("PATCH", "/Groups/"+gid+query, map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": ops})
		}
		rename := func(name string) map[string]any {
			return map[string]any{"op": "replace", "path": "displayName", "value": name}
		}
		if r := patch("", rename("Eng 1")).want(t, http.StatusNoContent); r.raw != "" || r.header.Get("ETag") == "" {
			t.Errorf("PATCH without attributes: %q, ETag %q", r.raw, r.header.Get("ETag"))
		}
		r := patch("?attributes=displayName", rename("Eng 2"), map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": uid}}}).
			want(t, http.StatusOK)
		if r.str("displayName") != "Eng 2" || r.str("id") != gid || lookup(r.body, "members") != nil || r.header.Get("ETag") != r.str("meta.version") {
			t.Errorf("PATCH ?attributes=displayName: %s", r.raw)
		}
		r = patch("?attributes=members", rename("Eng 3")).want(t, http.StatusOK)
		if lookup(r.body, "members.0.value") != uid || r.str("displayName") != "" {
			t.Errorf("PATCH ?attributes=members: %s", r.raw)
		}
		r = patch("?excludedAttributes=members").want(t, http.StatusOK)
		if r.str("displayName") != "Eng 3" || lookup(r.body, "members") != nil {
			t.Errorf("empty PATCH ?excludedAttributes=members: %s", r.raw)
		}
	})
}
