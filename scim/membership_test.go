package scim_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestMembersOfAnotherDirectory: a tenant with two directories (Okta and
// Entra, say) keeps them apart: a group of one takes no member of the
// other, whatever the request's form, and a refused request changes
// nothing and announces nothing.
func TestMembersOfAnotherDirectory(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		other := e.secondDirectory()
		mine := e.do("POST", "/Users", userBody("mine@acme.com", nil)).want(t, http.StatusCreated).str("id")
		theirs := other("POST", "/Users", userBody("theirs@acme.com", nil)).want(t, http.StatusCreated).str("id")
		gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "eng",
			"members": []any{map[string]any{"value": mine}}}).want(t, http.StatusCreated).str("id")
		before := eventTypes(t, st)

		patch := func(ops ...any) map[string]any {
			return map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": ops}
		}
		for name, req := range map[string]struct {
			method, path string
			body         any
		}{
			"PATCH add": {"PATCH", "/Groups/" + gid, patch(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": theirs}}})},
			"PATCH add beside a valid one": {"PATCH", "/Groups/" + gid, patch(map[string]any{"op": "Add", "path": "members",
				"value": []any{map[string]any{"value": mine}, map[string]any{"value": theirs}}})},
			"PATCH replace": {"PATCH", "/Groups/" + gid, patch(map[string]any{"op": "replace", "path": "members", "value": []any{map[string]any{"value": theirs}}})},
			"PUT":           {"PUT", "/Groups/" + gid, map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "eng", "members": []any{map[string]any{"value": theirs}}}},
			"POST":          {"POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "ops", "members": []any{map[string]any{"value": theirs}}}},
		} {
			r := e.do(req.method, req.path, req.body).want(t, http.StatusBadRequest)
			if r.str("scimType") != "invalidValue" {
				t.Errorf("%s: %s", name, r.raw)
			}
		}
		g := e.do("GET", "/Groups/"+gid, nil).want(t, http.StatusOK)
		if ms, _ := g.body["members"].([]any); len(ms) != 1 || lookup(ms[0], "value") != mine || g.str("displayName") != "eng" {
			t.Fatalf("refused requests changed the group: %s", g.raw)
		}
		if after := eventTypes(t, st); !reflect.DeepEqual(after, before) {
			t.Fatalf("refused requests emitted events: %v", after[len(before):])
		}
		// The other directory cannot see or change the group either.
		other("GET", "/Groups/"+gid, nil).want(t, http.StatusNotFound)
		other("PATCH", "/Groups/"+gid, patch(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": theirs}}})).want(t, http.StatusNotFound)
	})
}

// TestDeleteAnnouncesOnlyTheDeletion: deleting a user or a group sends its
// own deleted event alone; the memberships it ends are not announced one
// by one (docs/reference/events.md says consumers infer them).
func TestDeleteAnnouncesOnlyTheDeletion(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		ann := e.do("POST", "/Users", userBody("ann@acme.com", nil)).want(t, http.StatusCreated).str("id")
		bob := e.do("POST", "/Users", userBody("bob@acme.com", nil)).want(t, http.StatusCreated).str("id")
		group := func(name string) string {
			return e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": name,
				"members": []any{map[string]any{"value": ann}, map[string]any{"value": bob}}}).want(t, http.StatusCreated).str("id")
		}
		eng := group("eng")
		group("ops")
		for _, c := range []struct{ path, want string }{
			{"/Users/" + ann, scim.EventUserDeleted},
			{"/Groups/" + eng, scim.EventGroupDeleted},
		} {
			before := len(eventTypes(t, st))
			e.do("DELETE", c.path, nil).want(t, http.StatusNoContent)
			if evs := eventTypes(t, st)[before:]; !reflect.DeepEqual(evs, []string{c.want}) {
				t.Errorf("DELETE %s emitted %v, want [%s]", c.path, evs, c.want)
			}
		}
	})
}
