package scim_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestPatchKeepsOnePrimary: a PATCH that makes a value primary leaves the
// values that were primary not primary (RFC 7644 §3.5.2, RFC 7643 §2.4),
// however it says so: an added value, a filtered sub-attribute, a no-path
// value. The new primary address becomes the user's email.
func TestPatchKeepsOnePrimary(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		patch := func(id string, ops ...any) resp {
			return e.do("PATCH", "/Users/"+id, map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": ops}).want(t, http.StatusOK)
		}
		emailOf := func(addr string) int {
			r := e.do("GET", "/Users?filter="+url.QueryEscape(`emails eq "`+addr+`"`), nil).want(t, http.StatusOK)
			n, _ := lookup(r.body, "totalResults").(float64)
			return int(n)
		}
		primaries := func(r resp, attr string) (out []string) {
			list, _ := r.body[attr].([]any)
			for _, el := range list {
				if m := el.(map[string]any); m["primary"] == true {
					out = append(out, m["value"].(string))
				}
			}
			return out
		}
		for _, tc := range []struct {
			name string
			op   map[string]any
		}{
			{"add a primary value", map[string]any{"op": "add", "path": "emails",
				"value": []any{map[string]any{"value": "work@acme.com", "type": "work", "primary": true}}}},
			{"Entra: set primary by filter", map[string]any{"op": "Replace", "path": `emails[type eq "work"].primary`, "value": "True"}},
			{"Okta: no-path add", map[string]any{"op": "add",
				"value": map[string]any{"emails": []any{map[string]any{"value": "work@acme.com", "type": "work", "primary": true}}}}},
			{"replace the work value whole", map[string]any{"op": "replace", "path": `emails[type eq "work"]`,
				"value": map[string]any{"value": "work@acme.com", "type": "work", "primary": true}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				emails := []any{map[string]any{"value": "home@example.com", "type": "home", "primary": true}}
				if tc.op["op"] != "add" {
					emails = append(emails, map[string]any{"value": "work@acme.com", "type": "work"})
				}
				id := e.do("POST", "/Users", map[string]any{"schemas": []string{scim.SchemaUser}, "userName": tc.name,
					"emails": emails}).want(t, http.StatusCreated).str("id")
				r := patch(id, tc.op)
				if got := primaries(r, "emails"); len(got) != 1 || got[0] != "work@acme.com" {
					t.Errorf("primary emails %v, want [work@acme.com]: %s", got, r.raw)
				}
				if emailOf("work@acme.com") != 1 || emailOf("home@example.com") != 0 {
					t.Errorf("the user's email is not the new primary address")
				}
				e.do("DELETE", "/Users/"+id, nil).want(t, http.StatusNoContent)
			})
		}

		// Making the primary value primary again, or adding one that is
		// not primary, changes no other value.
		id := e.do("POST", "/Users", map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "keep",
			"phoneNumbers": []any{map[string]any{"value": "1", "type": "work", "primary": true}}}).want(t, http.StatusCreated).str("id")
		r := patch(id, map[string]any{"op": "replace", "path": `phoneNumbers[type eq "work"].primary`, "value": true},
			map[string]any{"op": "add", "path": "phoneNumbers", "value": []any{map[string]any{"value": "2", "type": "mobile"}}})
		if got := primaries(r, "phoneNumbers"); len(got) != 1 || got[0] != "1" {
			t.Errorf("primary phone numbers %v, want [1]: %s", got, r.raw)
		}
	})
}
