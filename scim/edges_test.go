package scim_test

import (
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestRemoveWithoutPathIsNoTarget: RFC 7644 §3.5.2.2 — a remove with no
// path is 400 with scimType noTarget, in the error schema, and changes
// nothing, on users and groups alike, whatever its value says.
func TestRemoveWithoutPathIsNoTarget(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		uid := e.do("POST", "/Users", userBody("ann@acme.com", nil)).want(t, http.StatusCreated).str("id")
		gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "eng",
			"members": []any{map[string]any{"value": uid}}}).want(t, http.StatusCreated).str("id")
		for _, c := range []struct {
			name, path string
			op         map[string]any
		}{
			{"user, no value", "/Users/" + uid, map[string]any{"op": "remove"}},
			{"user, a value", "/Users/" + uid, map[string]any{"op": "remove", "value": map[string]any{"title": "x"}}},
			{"user, capitalised", "/Users/" + uid, map[string]any{"op": "Remove"}},
			{"group, no value", "/Groups/" + gid, map[string]any{"op": "remove"}},
			{"group, members as value", "/Groups/" + gid, map[string]any{"op": "remove", "value": []any{map[string]any{"value": uid}}}},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := e.do("GET", c.path, nil).want(t, http.StatusOK)
				r := e.do("PATCH", c.path, map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": []any{c.op}}).
					want(t, http.StatusBadRequest)
				if r.str("scimType") != "noTarget" {
					t.Errorf("scimType %q, want noTarget: %s", r.str("scimType"), r.raw)
				}
				if after := e.do("GET", c.path, nil).want(t, http.StatusOK); after.header.Get("ETag") != before.header.Get("ETag") {
					t.Errorf("the refused remove changed the resource: %s → %s", before.raw, after.raw)
				}
			})
		}
	})
}

// TestEmptyMembersEmptiesTheGroup: Entra ID and Okta empty a group with a
// replace of members by [] (with a path, or in a no-path value) or a PUT
// with "members": []; each empties it and announces one user_removed per
// member, and a group already empty announces nothing.
func TestEmptyMembersEmptiesTheGroup(t *testing.T) {
	patch := func(op map[string]any) map[string]any {
		return map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": []any{op}}
	}
	cases := []struct {
		name   string
		method string
		body   map[string]any
	}{
		{"PATCH replace members []", "PATCH", patch(map[string]any{"op": "replace", "path": "members", "value": []any{}})},
		{"PATCH Replace (Entra) members []", "PATCH", patch(map[string]any{"op": "Replace", "path": "members", "value": []any{}})},
		{"PATCH no-path replace members []", "PATCH", patch(map[string]any{"op": "replace", "value": map[string]any{"members": []any{}}})},
		{"PUT members []", "PUT", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "eng", "members": []any{}}},
	}
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		ann := e.do("POST", "/Users", userBody("ann@acme.com", nil)).want(t, http.StatusCreated).str("id")
		bob := e.do("POST", "/Users", userBody("bob@acme.com", nil)).want(t, http.StatusCreated).str("id")
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "eng",
					"members": []any{map[string]any{"value": ann}, map[string]any{"value": bob}}}).want(t, http.StatusCreated).str("id")
				before := len(eventTypes(t, st))
				r := e.do(c.method, "/Groups/"+gid, c.body)
				if r.status != http.StatusOK && r.status != http.StatusNoContent {
					t.Fatalf("%s: %d %s", c.method, r.status, r.raw)
				}
				g := e.do("GET", "/Groups/"+gid, nil).want(t, http.StatusOK)
				if ms, _ := g.body["members"].([]any); len(ms) != 0 {
					t.Errorf("members after emptying: %v", ms)
				}
				evs := eventTypes(t, st)[before:]
				if want := []string{scim.EventGroupUserRemove, scim.EventGroupUserRemove}; !reflect.DeepEqual(evs, want) {
					t.Errorf("events %v, want %v", evs, want)
				}
				// Again, on the empty group: nothing to announce.
				before = len(eventTypes(t, st))
				if r := e.do(c.method, "/Groups/"+gid, c.body); r.status != http.StatusOK && r.status != http.StatusNoContent {
					t.Fatalf("%s again: %d %s", c.method, r.status, r.raw)
				}
				if evs := eventTypes(t, st)[before:]; len(evs) != 0 {
					t.Errorf("emptying an empty group announced %v", evs)
				}
			})
		}
	})
}

// TestFilterOnStoredButUnindexedAttributes: a filter on an attribute the
// server keeps in the resource but cannot filter on (title, the enterprise
// extension) is 400 invalidFilter, never an empty list a client would read
// as "not there" and create a duplicate from; the ones it can filter on
// find what they should.
func TestFilterOnStoredButUnindexedAttributes(t *testing.T) {
	const ext = scim.SchemaEnterpriseUser
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		ann := e.do("POST", "/Users", userBody("ann@acme.com", map[string]any{
			"schemas": []string{scim.SchemaUser, ext}, "title": "Engineer",
			ext: map[string]any{"employeeNumber": "42", "department": "R&D", "manager": map[string]any{"value": "boss"}},
		})).want(t, http.StatusCreated).str("id")
		bob := e.do("POST", "/Users", userBody("bob@acme.com", nil)).want(t, http.StatusCreated).str("id")
		past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

		for _, f := range []string{
			`title eq "Engineer"`,
			`title pr`,
			ext + `:employeeNumber eq "42"`,
			ext + `:department eq "R&D"`,
			ext + `:manager.value eq "boss"`,
			`employeeNumber eq "42"`,
			`manager.value eq "boss"`,
			`userName eq "ann@acme.com" and title eq "Engineer"`,
			`userName eq "nobody@acme.com" or ` + ext + `:department eq "R&D"`,
			`emails[type eq "work" and display co "x"]`,
			`meta.lastModified gt "yesterday"`,
		} {
			r := e.do("GET", "/Users?filter="+url.QueryEscape(f), nil).want(t, http.StatusBadRequest)
			if r.str("scimType") != "invalidFilter" {
				t.Errorf("filter %s: scimType %q, want invalidFilter", f, r.str("scimType"))
			}
		}
		for _, c := range []struct {
			filter string
			want   []string
		}{
			{`emails[type eq "work"].value eq "ann@acme.com"`, []string{ann}},
			{`emails[type eq "work"].value eq "ANN@acme.com"`, []string{ann}},
			{`emails[type eq "work"].value eq "carl@acme.com"`, nil},
			{`emails[type eq "work" and value eq "bob@acme.com"]`, []string{bob}},
			{`emails.value eq "bob@acme.com"`, []string{bob}},
			{`meta.lastModified gt "` + past + `"`, []string{ann, bob}},
			{`meta.lastModified gt "` + future + `"`, nil},
			{`meta.lastModified lt "` + future + `" and userName eq "ann@acme.com"`, []string{ann}},
			{`meta.created ge "` + past + `"`, []string{ann, bob}},
		} {
			r := e.do("GET", "/Users?filter="+url.QueryEscape(c.filter), nil).want(t, http.StatusOK)
			var got []string
			rs, _ := r.body["Resources"].([]any)
			for _, x := range rs {
				got = append(got, lookup(x, "id").(string))
			}
			sort.Strings(got)
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("filter %s found %v, want %v", c.filter, got, want)
			}
		}
	})
}

// TestPutIgnoresTheBodysID: id is readOnly (RFC 7643 §3.1): a PUT whose
// body names another id — another user or group of the directory, one of
// another directory, or junk — replaces the resource of the URL, keeps its
// id, and leaves the resource the body named untouched.
func TestPutIgnoresTheBodysID(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		other := e.secondDirectory()
		ann := e.do("POST", "/Users", userBody("ann@acme.com", nil)).want(t, http.StatusCreated)
		bob := e.do("POST", "/Users", userBody("bob@acme.com", nil)).want(t, http.StatusCreated).str("id")
		theirs := other("POST", "/Users", userBody("zed@acme.com", nil)).want(t, http.StatusCreated)
		eng := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "eng"}).want(t, http.StatusCreated)
		ops := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "ops"}).want(t, http.StatusCreated).str("id")

		for _, c := range []struct {
			name, path string
			body       map[string]any
			reread     func() []resp
		}{
			{"user, another user's id", "/Users/" + bob, userBody("bob@acme.com", map[string]any{"id": ann.str("id"), "displayName": "Bob 1"}),
				func() []resp { return []resp{e.do("GET", "/Users/"+ann.str("id"), nil)} }},
			{"user, another directory's user id", "/Users/" + bob, userBody("bob@acme.com", map[string]any{"id": theirs.str("id"), "displayName": "Bob 2"}),
				func() []resp { return []resp{other("GET", "/Users/"+theirs.str("id"), nil)} }},
			{"user, junk id", "/Users/" + bob, userBody("bob@acme.com", map[string]any{"id": "not-an-id", "displayName": "Bob 3"}), nil},
			{"group, another group's id", "/Groups/" + ops, map[string]any{"schemas": []string{scim.SchemaGroup}, "id": eng.str("id"), "displayName": "ops 1"},
				func() []resp { return []resp{e.do("GET", "/Groups/"+eng.str("id"), nil)} }},
		} {
			t.Run(c.name, func(t *testing.T) {
				var before []resp
				if c.reread != nil {
					before = c.reread()
				}
				r := e.do("PUT", c.path, c.body).want(t, http.StatusOK)
				id := c.path[len("/Users/"):]
				if c.path[1] == 'G' {
					id = c.path[len("/Groups/"):]
				}
				if r.str("id") != id {
					t.Errorf("PUT answered id %q, want the URL's %q", r.str("id"), id)
				}
				got := e.do("GET", c.path, nil).want(t, http.StatusOK)
				if got.str("id") != id || got.str("displayName") != c.body["displayName"] {
					t.Errorf("after PUT: %s", got.raw)
				}
				if c.reread != nil {
					after := c.reread()
					for i := range before {
						if before[i].raw != after[i].raw {
							t.Errorf("the resource the body's id named changed:\n%s\n%s", before[i].raw, after[i].raw)
						}
					}
				}
			})
		}
		// Listing still finds one bob, under his own id.
		r := e.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "bob@acme.com"`), nil).want(t, http.StatusOK)
		if r.body["totalResults"] != float64(1) || r.str("Resources.0.id") != bob {
			t.Errorf("bob after the PUTs: %s", r.raw)
		}
	})
}
