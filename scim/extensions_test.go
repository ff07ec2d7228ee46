package scim_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestSchemasNameEveryExtension: a resource's schemas lists its core
// schema and every extension it carries, the enterprise one first, a
// client's own URN as the client wrote it (a client reads its attributes
// back under the key it sent; it was answered in lower case), in the
// write's answer and when read back. The URN is compared ignoring case:
// a PATCH naming it in another case changes the same object, and a body
// giving it twice is refused.
func TestSchemasNameEveryExtension(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	const custom = "urn:example:params:scim:schemas:extension:acme:2.0:User"
	r := e.do("POST", "/Users", map[string]any{
		"schemas":                 []string{scim.SchemaUser, scim.SchemaEnterpriseUser, custom},
		"userName":                "ext@acme.test",
		scim.SchemaEnterpriseUser: map[string]any{"department": "Eng"},
		custom:                    map[string]any{"badge": "42"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.status, r.raw)
	}
	want := []any{scim.SchemaUser, scim.SchemaEnterpriseUser, custom}
	if !reflect.DeepEqual(r.body["schemas"], want) {
		t.Fatalf("created: schemas %v, want %v", r.body["schemas"], want)
	}
	id, _ := r.body["id"].(string)
	if got := e.do("GET", "/Users/"+id, nil); !reflect.DeepEqual(got.body["schemas"], want) {
		t.Fatalf("read back: schemas %v, want %v", got.body["schemas"], want)
	} else if lookup(got.body[custom], "badge") != "42" {
		t.Fatalf("read back: %s not under %s: %s", "badge", custom, got.raw)
	}
	lower := strings.ToLower(custom)
	for _, op := range []map[string]any{
		{"op": "replace", "path": lower + ":badge", "value": "43"},
		{"op": "replace", "value": map[string]any{lower: map[string]any{"floor": "3"}}},
	} {
		r := e.do("PATCH", "/Users/"+id, map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": []any{op}}).want(t, http.StatusOK)
		if !reflect.DeepEqual(r.body["schemas"], want) || r.body[lower] != nil {
			t.Fatalf("PATCH %v made a second extension: %s", op, r.raw)
		}
	}
	if got := e.do("GET", "/Users/"+id, nil).body[custom]; !reflect.DeepEqual(got, map[string]any{"badge": "43", "floor": "3"}) {
		t.Fatalf("after PATCH: %v", got)
	}
	e.do("POST", "/Users", map[string]any{"schemas": []string{scim.SchemaUser, custom}, "userName": "twice@acme.test",
		custom: map[string]any{"badge": "1"}, lower: map[string]any{"badge": "2"}}).want(t, http.StatusBadRequest)
	// Without extensions, the core schema alone.
	plain := e.do("POST", "/Users", map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "plain@acme.test"})
	if !reflect.DeepEqual(plain.body["schemas"], []any{scim.SchemaUser}) {
		t.Fatalf("plain user: schemas %v", plain.body["schemas"])
	}
	g := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup, custom}, "displayName": "Eng",
		custom: map[string]any{"cost_center": "7"}})
	if g.status != http.StatusCreated || !reflect.DeepEqual(g.body["schemas"], []any{scim.SchemaGroup, custom}) {
		t.Fatalf("group: %d schemas %v", g.status, g.body["schemas"])
	}
}
