package scim_test

import (
	"net/url"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestDoubledSlashesReachTheResource: a base URL pasted with a trailing
// slash makes clients send {base}//Users; it reaches /Users, with every
// method, as does a trailing slash after the resource.
func TestDoubledSlashesReachTheResource(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	r := e.do("POST", "//Users", map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "slash@acme.test"})
	if r.status != 201 {
		t.Fatalf("POST //Users: %d %s", r.status, r.raw)
	}
	id, _ := r.body["id"].(string)
	for _, c := range []struct{ method, path string }{
		{"GET", "//Users?filter=" + url.QueryEscape(`userName eq "slash@acme.test"`)},
		{"GET", "//Users//" + id},
		{"GET", "/Users/" + id + "/"},
		{"GET", "//ServiceProviderConfig"},
		{"PATCH", "//Users/" + id},
	} {
		var body any
		if c.method == "PATCH" {
			body = map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []map[string]any{{"op": "replace", "path": "displayName", "value": "Slash"}}}
		}
		if r := e.do(c.method, c.path, body); r.status != 200 {
			t.Errorf("%s %s: %d %s", c.method, c.path, r.status, r.raw)
		}
	}
}
