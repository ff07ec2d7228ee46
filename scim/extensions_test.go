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
// client's own URN as its key is stored (attribute names are
// case-insensitive, and the server keeps an unknown one in lower case),
// in the write's answer and when read back.
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
	want := []any{scim.SchemaUser, scim.SchemaEnterpriseUser, strings.ToLower(custom)}
	if !reflect.DeepEqual(r.body["schemas"], want) {
		t.Fatalf("created: schemas %v, want %v", r.body["schemas"], want)
	}
	id, _ := r.body["id"].(string)
	if got := e.do("GET", "/Users/"+id, nil); !reflect.DeepEqual(got.body["schemas"], want) {
		t.Fatalf("read back: schemas %v, want %v", got.body["schemas"], want)
	}
	// Without extensions, the core schema alone.
	plain := e.do("POST", "/Users", map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "plain@acme.test"})
	if !reflect.DeepEqual(plain.body["schemas"], []any{scim.SchemaUser}) {
		t.Fatalf("plain user: schemas %v", plain.body["schemas"])
	}
	g := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup, custom}, "displayName": "Eng",
		custom: map[string]any{"cost_center": "7"}})
	if g.status != http.StatusCreated || !reflect.DeepEqual(g.body["schemas"], []any{scim.SchemaGroup, strings.ToLower(custom)}) {
		t.Fatalf("group: %d schemas %v", g.status, g.body["schemas"])
	}
}
