package scim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// TestCoreSchemaWrapperDeprovisions: attributes wrapped in an object named
// by the core schema's URN ({"urn:…:core:2.0:User": {"active": false}}), in
// a PUT, in a PATCH without a path or in one whose path is that URN, are
// the user's own: the user is deactivated and their sessions end. They were
// kept as an extension of that name, answered 200, and the user stayed
// signed in. A remove whose path is the resource is refused.
func TestCoreSchemaWrapperDeprovisions(t *testing.T) {
	patch := func(ops ...map[string]any) map[string]any {
		return map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": ops}
	}
	wrapped := map[string]any{scim.SchemaUser: map[string]any{"active": false, "displayName": "Wrapped"}}
	tests := []struct {
		name   string
		method string
		body   func(userName string) any
		status int
	}{
		{"PUT, the core URN wrapping", http.MethodPut, func(u string) any {
			return map[string]any{"schemas": []string{scim.SchemaUser}, "userName": u, scim.SchemaUser: map[string]any{"active": false, "displayName": "Wrapped"}}
		}, http.StatusOK},
		{"PUT, the core URN in lower case wrapping", http.MethodPut, func(u string) any {
			return map[string]any{"schemas": []string{scim.SchemaUser}, "userName": u, "urn:ietf:params:scim:schemas:core:2.0:user": map[string]any{"Active": "False", "displayName": "Wrapped"}}
		}, http.StatusOK},
		{"PATCH without a path, the core URN wrapping", http.MethodPatch, func(string) any {
			return patch(map[string]any{"op": "replace", "value": wrapped})
		}, http.StatusOK},
		{"PATCH whose path is the core URN", http.MethodPatch, func(string) any {
			return patch(map[string]any{"op": "Replace", "path": scim.SchemaUser, "value": map[string]any{"active": "False", "displayName": "Wrapped"}})
		}, http.StatusOK},
		{"PATCH wrapping a qualified name", http.MethodPatch, func(string) any {
			return patch(map[string]any{"op": "replace", "value": map[string]any{scim.SchemaUser: map[string]any{scim.SchemaUser + ":active": false, "displayName": "Wrapped"}}})
		}, http.StatusOK},
		{"PATCH removing the resource", http.MethodPatch, func(string) any {
			return patch(map[string]any{"op": "remove", "path": scim.SchemaUser})
		}, http.StatusBadRequest},
		{"PATCH whose path is the core URN, value not an object", http.MethodPatch, func(string) any {
			return patch(map[string]any{"op": "replace", "path": scim.SchemaUser, "value": false})
		}, http.StatusBadRequest},
		{"PUT, the core URN wrapping a string", http.MethodPut, func(u string) any {
			return map[string]any{"schemas": []string{scim.SchemaUser}, "userName": u, scim.SchemaUser: "inactive"}
		}, http.StatusBadRequest},
		{"PUT, an attribute both wrapped and not, two values", http.MethodPut, func(u string) any {
			return map[string]any{"schemas": []string{scim.SchemaUser}, "userName": u, "active": false, scim.SchemaUser: map[string]any{"active": true}}
		}, http.StatusBadRequest},
		{"PUT, the whole user both wrapped and not", http.MethodPut, func(u string) any {
			inner := map[string]any{"schemas": []string{scim.SchemaUser}, "userName": u, "active": false, "displayName": "Wrapped"}
			return map[string]any{"schemas": []string{scim.SchemaUser}, "userName": u, "active": false, scim.SchemaUser: inner}
		}, http.StatusOK},
	}
	eachBackend(t, func(t *testing.T, st *store.DB) {
		ss := sessions.NewMemory()
		e := newEnv(t, st, ss)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				userName := "w" + store.NewID("") + "@acme.com"
				id := e.do("POST", "/Users", userBody(userName, nil)).want(t, http.StatusCreated).str("id")
				sess := sessions.Session{ID: store.NewID(store.PrefixSession), TenantID: e.tenant, UserID: id, ExpiresAt: time.Now().Add(time.Hour)}
				if err := ss.Create(context.Background(), sess); err != nil {
					t.Fatal(err)
				}
				r := e.do(tc.method, "/Users/"+id, tc.body(userName)).want(t, tc.status)
				got := e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK)
				_, err := ss.Get(context.Background(), sess.ID)
				if tc.status != http.StatusOK {
					if got.body["active"] != true || err != nil {
						t.Fatalf("refused request changed the user (active %v, session %v): %s", got.body["active"], err, got.raw)
					}
					return
				}
				if r.body["active"] != false || got.body["active"] != false || got.str("displayName") != "Wrapped" {
					t.Fatalf("user after %s: %s", tc.method, got.raw)
				}
				if !errors.Is(err, sessions.ErrNotFound) {
					t.Fatalf("session of the deactivated user: %v", err)
				}
				for _, s := range got.body["schemas"].([]any) {
					if s != scim.SchemaUser {
						t.Fatalf("schemas %v: the core URN kept as an extension: %s", got.body["schemas"], got.raw)
					}
				}
			})
		}
	})
}

// TestCoreSchemaWrapperGroupMembers: a group's members wrapped in the core
// Group URN, or named by their qualified name in a PATCH without a path,
// change the membership rather than vanishing with the document.
func TestCoreSchemaWrapperGroupMembers(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		a := e.do("POST", "/Users", userBody("ga@acme.com", nil)).want(t, http.StatusCreated).str("id")
		b := e.do("POST", "/Users", userBody("gb@acme.com", nil)).want(t, http.StatusCreated).str("id")
		member := func(id string) []any { return []any{map[string]any{"value": id}} }
		g := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup},
			scim.SchemaGroup: map[string]any{"displayName": "Eng", "members": member(a)}}).want(t, http.StatusCreated)
		gid := g.str("id")
		for _, tc := range []struct {
			name string
			op   map[string]any
			want []string
		}{
			{"add wrapped", map[string]any{"op": "add", "value": map[string]any{scim.SchemaGroup: map[string]any{"members": member(b)}}}, []string{a, b}},
			{"remove wrapped", map[string]any{"op": "remove", "path": "members", "value": member(a)}, []string{b}},
			{"add qualified", map[string]any{"op": "add", "value": map[string]any{scim.SchemaGroup + ":members": member(a)}}, []string{b, a}},
			{"replace by the core URN path", map[string]any{"op": "replace", "path": scim.SchemaGroup, "value": map[string]any{"members": member(a), "displayName": "Eng 2"}}, []string{a}},
		} {
			e.do("PATCH", "/Groups/"+gid, map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": []any{tc.op}}).want(t, http.StatusNoContent)
			got := e.do("GET", "/Groups/"+gid, nil).want(t, http.StatusOK)
			var ids []string
			for _, m := range got.body["members"].([]any) {
				ids = append(ids, m.(map[string]any)["value"].(string))
			}
			if len(ids) != len(tc.want) || !sameSet(ids, tc.want) {
				t.Fatalf("%s: members %v, want %v", tc.name, ids, tc.want)
			}
			if len(got.body["schemas"].([]any)) != 1 {
				t.Fatalf("%s: schemas %v", tc.name, got.body["schemas"])
			}
		}
		if got := e.do("GET", "/Groups/"+gid, nil).str("displayName"); got != "Eng 2" {
			t.Fatalf("displayName %q after a replace by the core URN path", got)
		}
	})
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestFilterFindsWhatWasTrimmed: userName, externalId, emails, displayName
// are stored with their outer spaces cut, so an eq filter on the value the
// client sent, spaces and all, finds what it created. It found nothing:
// the client then created the user again and was answered 409 at every
// sync (Entra and Okta look a user up by userName before creating it).
func TestFilterFindsWhatWasTrimmed(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		e.do("POST", "/Users", userBody(" ann@acme.com ", map[string]any{"externalId": " ext-1 ", "displayName": "Ann ",
			"emails": []any{map[string]any{"value": "ann.work@acme.com  ", "type": "work", "primary": true}}})).want(t, http.StatusCreated)
		e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng ", "externalId": " g-1"}).
			want(t, http.StatusCreated)
		for _, tc := range []struct {
			path, filter string
			want         int
		}{
			{"/Users", `userName eq " ann@acme.com "`, 1},
			{"/Users", `userName eq "ann@acme.com "`, 1},
			{"/Users", `userName ne "ann@acme.com "`, 0},
			{"/Users", `externalId eq " ext-1 "`, 1},
			{"/Users", `emails[type eq "work"].value eq "ann.work@acme.com  "`, 1},
			{"/Users", `emails.value eq " ann.work@acme.com"`, 1},
			{"/Users", `displayName eq "Ann "`, 1},
			{"/Users", `userName sw "ann@acme.com "`, 0}, // only eq and ne compare the cut value
			{"/Groups", `displayName eq "Eng "`, 1},
			{"/Groups", `externalId eq " g-1 "`, 1},
		} {
			r := e.do("GET", tc.path+"?filter="+url.QueryEscape(tc.filter), nil).want(t, http.StatusOK)
			if n, _ := r.body["totalResults"].(float64); int(n) != tc.want {
				t.Errorf("%s?filter=%s: %v results, want %d", tc.path, tc.filter, r.body["totalResults"], tc.want)
			}
		}
		// What the filter says is there is what a create collides with.
		e.do("POST", "/Users", userBody("ann@acme.com ", nil)).want(t, http.StatusConflict)
	})
}

// TestNoPathKeysThatArePaths: the keys of a no-path PATCH value (Entra ID
// sends them so) are paths, filters and schema URNs included, also inside
// the core URN's wrapper: each sets what it names.
func TestNoPathKeysThatArePaths(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		for _, tc := range []struct {
			name  string
			value map[string]any
			path  string // where the new address must be
		}{
			{"filter path", map[string]any{`emails[type eq "work"].value`: "new@acme.com"}, "emails.0.value"},
			{"qualified filter path", map[string]any{scim.SchemaUser + `:emails[type eq "work"].value`: "new@acme.com"}, "emails.0.value"},
			{"filter on a dotted value", map[string]any{`emails[value eq "p.q@acme.com"].value`: "new@acme.com"}, "emails.0.value"},
			{"wrapped filter path", map[string]any{scim.SchemaUser: map[string]any{`emails[type eq "work"].value`: "new@acme.com"}}, "emails.0.value"},
			{"qualified enterprise attribute", map[string]any{scim.SchemaEnterpriseUser + ":department": "new@acme.com"}, scim.SchemaEnterpriseUser + ".department"},
		} {
			id := e.do("POST", "/Users", userBody("p.q@acme.com", nil)).want(t, http.StatusCreated).str("id")
			r := e.do("PATCH", "/Users/"+id, map[string]any{"schemas": []string{scim.SchemaPatchOp},
				"Operations": []any{map[string]any{"op": "Replace", "value": tc.value}}}).want(t, http.StatusOK)
			var got any = r.body
			if tc.path == scim.SchemaEnterpriseUser+".department" {
				ext, _ := r.body[scim.SchemaEnterpriseUser].(map[string]any)
				got = ext["department"]
			} else {
				got = lookup(r.body, tc.path)
			}
			if got != "new@acme.com" {
				t.Fatalf("%s: %s is %v: %s", tc.name, tc.path, got, r.raw)
			}
			// The address changed, and nothing else of it.
			if lookup(r.body, "emails.0.type") != "work" || lookup(r.body, "emails.0.primary") != true {
				t.Fatalf("%s: the work address lost its type or primary: %s", tc.name, r.raw)
			}
			e.do("DELETE", "/Users/"+id, nil).want(t, http.StatusNoContent)
		}
	})
}

// TestListedExtensionWithoutAttributes: schemas may list a client's own
// extension whose attributes this body does not carry (a user with none of
// them set, a PUT clearing them with null): it was refused as an unknown
// schema at every sync. An attribute named by such an extension's URN goes
// into its object, with the case it was sent in.
func TestListedExtensionWithoutAttributes(t *testing.T) {
	const ext = "urn:ietf:params:scim:schemas:extension:Acme:2.0:User"
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		for i, tc := range []struct {
			name  string
			extra map[string]any
			want  any // the extension's object in the answer
		}{
			{"listed, absent", nil, nil},
			{"listed, null", map[string]any{ext: nil}, nil},
			{"listed, empty", map[string]any{ext: map[string]any{}}, nil},
			{"listed, qualified attribute", map[string]any{ext + ":costCenter": "7"}, map[string]any{"costCenter": "7"}},
			{"a shorter URN listed too", map[string]any{"schemas": []string{scim.SchemaUser, ext, "urn:ietf:params:scim:schemas:extension:Acme:2.0"}, ext: map[string]any{"floor": "3"}},
				map[string]any{"floor": "3"}},
			{"listed in another case, qualified attribute", map[string]any{strings.ToLower(ext) + ":costCenter": "7", ext: map[string]any{"floor": "3"}},
				map[string]any{"costCenter": "7", "floor": "3"}},
		} {
			body := map[string]any{"schemas": []string{scim.SchemaUser, ext}, "userName": fmt.Sprintf("ext%d@acme.com", i), "active": false}
			for k, v := range tc.extra {
				body[k] = v
			}
			r := e.do("POST", "/Users", body).want(t, http.StatusCreated)
			if !reflect.DeepEqual(r.body[ext], tc.want) {
				t.Fatalf("%s: extension %v, want %v: %s", tc.name, r.body[ext], tc.want, r.raw)
			}
			wantSchemas := []any{scim.SchemaUser}
			if tc.want != nil {
				wantSchemas = append(wantSchemas, ext)
			}
			if !reflect.DeepEqual(r.body["schemas"], wantSchemas) {
				t.Fatalf("%s: schemas %v, want %v", tc.name, r.body["schemas"], wantSchemas)
			}
			// The same body again by PUT, deactivating: accepted too.
			body["active"] = false
			e.do("PUT", "/Users/"+r.str("id"), body).want(t, http.StatusOK)
		}
	})
}
