package scim_test

import (
	"net/http"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

func patchBody(ops ...any) map[string]any {
	return map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": ops}
}

// TestNoOpWrites: Entra and Okta re-send resources that did not change. A
// PUT or PATCH whose result is what is stored answers 200 (or 204 for a
// group PATCH) with the version unchanged and emits nothing; a write that
// changes something, (de)activation included, still counts.
func TestNoOpWrites(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		body := userBody("ann@acme.com", map[string]any{"displayName": "Ann", "title": "Eng",
			"roles": []any{map[string]any{"value": "admin", "primary": true}}})
		r := e.do("POST", "/Users", body).want(t, http.StatusCreated)
		uid, v := r.str("id"), r.str("meta.version")
		gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "eng",
			"members": []any{map[string]any{"value": uid}}}).want(t, http.StatusCreated).str("id")
		gv := e.do("GET", "/Groups/"+gid, nil).want(t, http.StatusOK).str("meta.version")

		// same checks that a request answered status with the version
		// (body or ETag) it had, and wrote no event.
		same := func(name, method, path string, body any, status int, version string) {
			t.Helper()
			before := len(eventTypes(t, st))
			r := e.do(method, path, body).want(t, status)
			if got := r.header.Get("ETag"); got != version {
				t.Errorf("%s: ETag %s, want %s", name, got, version)
			}
			if r.body != nil && r.str("meta.version") != version {
				t.Errorf("%s: meta.version %s, want %s", name, r.str("meta.version"), version)
			}
			if evs := eventTypes(t, st); len(evs) != before {
				t.Errorf("%s: emitted %v", name, evs[before:])
			}
		}
		same("PUT user as it is", "PUT", "/Users/"+uid, body, http.StatusOK, v)
		same("PUT user as GET returned it", "PUT", "/Users/"+uid, e.do("GET", "/Users/"+uid, nil).body, http.StatusOK, v)
		same("PATCH user to its values", "PATCH", "/Users/"+uid, patchBody(
			map[string]any{"op": "Replace", "path": "displayName", "value": "Ann"},
			map[string]any{"op": "replace", "path": "name.givenName", "value": "Given"},
			map[string]any{"op": "replace", "path": "active", "value": "True"}), http.StatusOK, v)
		same("PUT group as it is", "PUT", "/Groups/"+gid, map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "eng",
			"members": []any{map[string]any{"value": uid}}}, http.StatusOK, gv)
		same("PATCH re-adding a member", "PATCH", "/Groups/"+gid, patchBody(
			map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": uid}}}), http.StatusNoContent, gv)
		same("PATCH group to its name", "PATCH", "/Groups/"+gid, patchBody(
			map[string]any{"op": "replace", "value": map[string]any{"displayName": "eng"}}), http.StatusNoContent, gv)

		// If-Match is still checked on a write that changes nothing.
		e.do("PUT", "/Users/"+uid, body, "If-Match", `W/"99"`).want(t, http.StatusPreconditionFailed)

		// Deactivating is a change: a new version, the event, sessions
		// ended. Sending it again changes nothing more.
		deactivate := patchBody(map[string]any{"op": "replace", "path": "active", "value": "False"})
		before := len(eventTypes(t, st))
		r = e.do("PATCH", "/Users/"+uid, deactivate).want(t, http.StatusOK)
		if r.str("meta.version") == v {
			t.Fatal("deactivation kept the version")
		}
		if evs := eventTypes(t, st)[before:]; len(evs) != 1 || evs[0] != scim.EventUserDeactivated {
			t.Fatalf("deactivation emitted %v", evs)
		}
		v = r.str("meta.version")
		same("PATCH deactivating again", "PATCH", "/Users/"+uid, deactivate, http.StatusOK, v)
		before = len(eventTypes(t, st))
		r = e.do("PATCH", "/Users/"+uid, patchBody(map[string]any{"op": "replace", "path": "active", "value": true})).want(t, http.StatusOK)
		if evs := eventTypes(t, st)[before:]; r.str("meta.version") == v || len(evs) != 1 || evs[0] != scim.EventUserUpdated {
			t.Fatalf("reactivation: version %s (was %s), events %v", r.str("meta.version"), v, evs)
		}

		// A real change to a group still counts.
		before = len(eventTypes(t, st))
		r = e.do("PATCH", "/Groups/"+gid, patchBody(map[string]any{"op": "replace", "path": "displayName", "value": "Eng"})).want(t, http.StatusNoContent)
		if evs := eventTypes(t, st)[before:]; r.header.Get("ETag") == gv || len(evs) != 1 || evs[0] != scim.EventGroupUpdated {
			t.Fatalf("rename: ETag %s (was %s), events %v", r.header.Get("ETag"), gv, evs)
		}
	})
}
