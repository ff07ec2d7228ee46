package scim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
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

// TestLargeMembershipAnnouncedInOrder: a PUT of a few hundred members
// (Okta's push) announces each added user once, in the order sent, and
// a replace that drops most of them each removed one, in id order; the events are
// written several to a statement (store.DB.AppendEvents), which must
// lose, repeat or reorder none.
func TestLargeMembershipAnnouncedInOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		const n = 450
		ids := make([]string, n)
		members := make([]any, n)
		for i := range ids {
			u, err := st.CreateDirectoryUser(e.ctx(), store.User{DirectoryID: e.dir, UserName: fmt.Sprintf("u%03d@acme.com", i), Email: fmt.Sprintf("u%03d@acme.com", i), Active: true, Attributes: json.RawMessage(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = u.ID
			members[i] = map[string]any{"value": u.ID, "display": u.UserName}
		}
		// Reversed, so that creation order cannot pass for request order.
		slices.Reverse(ids)
		slices.Reverse(members)
		gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "all"}).want(t, http.StatusCreated).str("id")
		seen := len(eventTypes(t, st))
		e.do("PUT", "/Groups/"+gid, map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "all", "members": members}).want(t, http.StatusOK)
		wantMembership(t, st, seen, scim.EventGroupUserAdded, gid, ids)
		seen += n

		e.do("PATCH", "/Groups/"+gid, map[string]any{"Operations": []any{
			map[string]any{"op": "replace", "path": "members", "value": members[:200]}}}).want(t, http.StatusNoContent)
		// Those a replace drops go in the group's order (by id), which
		// is what it read, not the request's.
		wantMembership(t, st, seen, scim.EventGroupUserRemove, gid, slices.Sorted(slices.Values(ids[200:])))
		if g := e.do("GET", "/Groups/"+gid, nil).want(t, http.StatusOK); len(g.body["members"].([]any)) != 200 {
			t.Fatalf("%d members after the replace, want 200", len(g.body["members"].([]any)))
		}
	})
}

// wantMembership checks that the events after the first skip are typ for
// group gid and users ids, in that order, and no more.
func wantMembership(t *testing.T, st *store.DB, skip int, typ, gid string, ids []string) {
	t.Helper()
	var got []store.Event
	for p := (store.Page{Limit: 100}); ; {
		evs, next, err := st.ListEvents(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, evs...)
		if next == "" {
			break
		}
		p.After = next
	}
	got = got[skip:]
	if len(got) != len(ids) {
		t.Fatalf("%d events, want %d %s", len(got), len(ids), typ)
	}
	for i, ev := range got {
		var d struct {
			Group struct{ ID string } `json:"group"`
			User  struct{ ID string } `json:"user"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil || ev.Type != typ || d.Group.ID != gid || d.User.ID != ids[i] {
			t.Fatalf("event %d: %s %s, want %s for %s", i, ev.Type, ev.Data, typ, ids[i])
		}
	}
}

// TestGroupBodyLimit: a group written whole carries every member, so its
// bodies may reach DefaultMaxGroupBodyBytes (Okta's PUT of a 10,000-member
// group passes 1 MiB); a user's stay held to DefaultMaxBodyBytes, and a
// group past its own limit is 413 in the SCIM error schema.
func TestGroupBodyLimit(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		pad := strings.Repeat("x", 4000)
		var members []any
		for i := range 300 { // 300 × 4 KB: 1.2 MB
			u, err := st.CreateDirectoryUser(e.ctx(), store.User{DirectoryID: e.dir, UserName: fmt.Sprintf("u%03d@acme.com", i), Email: fmt.Sprintf("u%03d@acme.com", i), Active: true, Attributes: json.RawMessage(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			members = append(members, map[string]any{"value": u.ID, "display": pad})
		}
		group := map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "big", "members": members}
		gid := e.do("POST", "/Groups", group).want(t, http.StatusCreated).str("id")
		e.do("PUT", "/Groups/"+gid, group).want(t, http.StatusOK)
		e.do("PATCH", "/Groups/"+gid, map[string]any{"Operations": []any{
			map[string]any{"op": "replace", "path": "members", "value": members}}}).want(t, http.StatusNoContent)

		tooLarge := func(r resp, limit int) {
			t.Helper()
			r.want(t, http.StatusRequestEntityTooLarge)
			if r.str("status") != "413" || !strings.Contains(r.str("detail"), fmt.Sprint(limit)) {
				t.Errorf("413 not in the SCIM error schema, or naming another limit than %d: %s", limit, r.raw)
			}
		}
		tooLarge(e.do("POST", "/Users", userBody("big@acme.com", map[string]any{"displayName": pad, "title": strings.Repeat(pad, 300)})), scim.DefaultMaxBodyBytes)
		huge := make([]any, 2200) // 2,200 × 4 KB: past 8 MiB
		for i := range huge {
			huge[i] = map[string]any{"value": fmt.Sprintf("usr_%026d", i), "display": pad}
		}
		tooLarge(e.do("PUT", "/Groups/"+gid, map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "big", "members": huge}), scim.DefaultMaxGroupBodyBytes)
		if g := e.do("GET", "/Groups/"+gid, nil).want(t, http.StatusOK); len(g.body["members"].([]any)) != 300 {
			t.Fatalf("a refused PUT changed the group: %d members", len(g.body["members"].([]any)))
		}
	})
}
