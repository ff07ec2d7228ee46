package scim_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestListPages: a list answer of Users and of Groups carries the page
// startIndex and count ask for with the total of all matches; count=0 is
// the total alone (RFC 7644 §3.4.2.4); a group lists its members unless
// they are excluded.
func TestListPages(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		var members []any
		for i := range 3 {
			id := e.do("POST", "/Users", userBody(fmt.Sprintf("u%d@acme.com", i), nil)).want(t, http.StatusCreated).str("id")
			members = append(members, map[string]any{"value": id})
		}
		e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Everyone", "members": members}).
			want(t, http.StatusCreated)

		for _, tc := range []struct {
			path        string
			total, page int
			attr, want  string // an attribute of the first resource and its value
		}{
			{"/Users", 3, 3, "userName", "u0@acme.com"},
			{"/Users?startIndex=2&count=1", 3, 1, "userName", "u1@acme.com"},
			{"/Users?count=0", 3, 0, "", ""},
			{"/Groups", 1, 1, "members.2.value", members[2].(map[string]any)["value"].(string)},
			{"/Groups?excludedAttributes=members", 1, 1, "members.0.value", ""},
			{"/Groups?count=0", 1, 0, "", ""},
		} {
			r := e.do("GET", tc.path, nil).want(t, http.StatusOK)
			resources, _ := r.body["Resources"].([]any)
			if lookup(r.body, "totalResults") != float64(tc.total) || lookup(r.body, "itemsPerPage") != float64(tc.page) || len(resources) != tc.page {
				t.Errorf("GET %s: want %d in all and %d here: %s", tc.path, tc.total, tc.page, r.raw)
				continue
			}
			if tc.attr == "" {
				continue
			}
			if got, _ := lookup(resources[0], tc.attr).(string); got != tc.want {
				t.Errorf("GET %s: first resource's %s = %q, want %q: %s", tc.path, tc.attr, got, tc.want, r.raw)
			}
		}
	})
}

// TestListedMembersAreBounded: a Groups list whose groups hold more
// members in all than one answer may carry is refused with tooMany (never
// cut short, which a client would take for the whole membership); the
// same page without members, or a page of fewer groups, is answered.
func TestListedMembersAreBounded(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		scim.SetMaxListedMembers(e.srv, 3)
		for g := range 2 {
			var members []any
			for i := range 2 {
				id := e.do("POST", "/Users", userBody(fmt.Sprintf("g%du%d@acme.com", g, i), nil)).want(t, http.StatusCreated).str("id")
				members = append(members, map[string]any{"value": id})
			}
			e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": fmt.Sprint("G", g), "members": members}).
				want(t, http.StatusCreated)
		}
		r := e.do("GET", "/Groups", nil).want(t, http.StatusBadRequest)
		if lookup(r.body, "scimType") != "tooMany" || !strings.Contains(fmt.Sprint(lookup(r.body, "detail")), "more than 3 members") {
			t.Errorf("4 members listed under a bound of 3: %s, want scimType tooMany naming the bound", r.raw)
		}
		for _, path := range []string{"/Groups?excludedAttributes=members", "/Groups?count=1", "/Groups?startIndex=2"} {
			r := e.do("GET", path, nil).want(t, http.StatusOK)
			if n := len(r.body["Resources"].([]any)); path == "/Groups?excludedAttributes=members" && n != 2 || path != "/Groups?excludedAttributes=members" && n != 1 {
				t.Errorf("GET %s: %d groups: %s", path, n, r.raw)
			}
		}

		// One group larger than the bound is still answered whole when
		// it comes first on its page: Okta looks the group it pushes up
		// by displayName, and GET /Groups/{id} answers it too.
		var members []any
		for i := range 5 {
			id := e.do("POST", "/Users", userBody(fmt.Sprintf("big%d@acme.com", i), nil)).want(t, http.StatusCreated).str("id")
			members = append(members, map[string]any{"value": id})
		}
		e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Big", "members": members}).want(t, http.StatusCreated)
		for _, path := range []string{"/Groups?filter=" + url.QueryEscape(`displayName eq "Big"`), "/Groups?startIndex=3", "/Groups?startIndex=3&count=5"} {
			r := e.do("GET", path, nil).want(t, http.StatusOK)
			if rs := r.body["Resources"].([]any); len(rs) != 1 || len(lookup(rs[0], "members").([]any)) != 5 {
				t.Errorf("GET %s: %s, want the group Big with its 5 members", path, r.raw)
			}
		}
		// Behind it, a group with members goes past the bound.
		r = e.do("GET", "/Groups?sortBy=displayName&filter="+url.QueryEscape(`displayName eq "Big" or displayName eq "G0"`), nil).want(t, http.StatusBadRequest)
		if lookup(r.body, "scimType") != "tooMany" {
			t.Errorf("Big then G0 under a bound of 3: %s, want tooMany", r.raw)
		}
	})
}

// TestFilterEveryAttribute: each attribute the reference lists as
// filterable answers a filter on it with the users it names, on both
// backends: a filter on one of them was a 500 (a User's displayName), and
// a userName with non-ASCII capitals was not found by its own value on
// SQLite, so Okta and Entra, which look a user up before creating it, got
// 409 on the create that followed.
func TestFilterEveryAttribute(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		alice := e.do("POST", "/Users", userBody("alice@acme.com", map[string]any{
			"displayName": "Alice Smith", "externalId": "ext-1",
			"name":   map[string]any{"givenName": "Alice", "familyName": "Smith"},
			"emails": []any{map[string]any{"value": "alice@acme.com", "type": "work", "primary": true}},
		})).want(t, http.StatusCreated).str("id")
		emile := e.do("POST", "/Users", userBody("ÉMILE@acme.com", map[string]any{"displayName": "Émile"})).
			want(t, http.StatusCreated).str("id")
		for _, tc := range []struct {
			filter string
			want   []string
		}{
			{`id eq "` + alice + `"`, []string{alice}},
			{`externalId eq "ext-1"`, []string{alice}},
			{`userName eq "ALICE@acme.com"`, []string{alice}},
			{`userName eq "ÉMILE@acme.com"`, []string{emile}},
			{`userName sw "ÉMI"`, []string{emile}},
			{`emails eq "alice@acme.com"`, []string{alice}},
			{`emails.value co "ALICE"`, []string{alice}},
			{`emails[type eq "work"].value eq "alice@acme.com"`, []string{alice}},
			{`name.givenName eq "alice"`, []string{alice}},
			{`name.familyName sw "sm"`, []string{alice}},
			{`displayName eq "alice smith"`, []string{alice}},
			{`displayName co "MIL"`, []string{emile}},
			{`displayName ew "SMITH" and active eq true`, []string{alice}},
			{`active eq true`, []string{alice, emile}},
			{`meta.created gt "2000-01-01T00:00:00Z"`, []string{alice, emile}},
			{`meta.lastModified lt "2000-01-01T00:00:00Z"`, nil},
		} {
			r := e.do("GET", "/Users?filter="+url.QueryEscape(tc.filter), nil)
			if r.status != http.StatusOK {
				t.Errorf("filter %s: %d %s", tc.filter, r.status, r.raw)
				continue
			}
			var got []string
			for _, res := range r.body["Resources"].([]any) {
				got = append(got, lookup(res, "id").(string))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("filter %s: got %v, want %v", tc.filter, got, tc.want)
			}
		}
	})
}
