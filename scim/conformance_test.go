package scim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// TestConformance is an outside-in sweep of the SCIM 2.0 server: each row
// is one requirement of RFC 7643 or RFC 7644 (named in the row), checked
// with a real HTTP request against a running server over a real store, as
// a SCIM client would see it. docs/reference/scim.md says what we promise;
// where the RFCs leave the choice to us, the row checks our choice as
// documented there. Every answer with a body must be application/scim+json
// and every error a SCIM error document with the row's scimType.
//
// Rows run in order against one fixture per backend: the reading rows
// come first, and they see only alice, bob and carol (and the group eng);
// a writing row works on a user or group of its own ({new}, {newgroup}).
func TestConformance(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		f := newSCIMConformance(t, st)
		for _, c := range scimConformanceRows {
			t.Run(c.name, func(t *testing.T) {
				f.row(t, c)
			})
		}
	})
}

type scimRow struct {
	name         string // "RFC 7644 §x.y: what"
	method, path string // path under the directory's base URL, with {placeholders}
	body         string // JSON with {placeholders}, sent as application/scim+json
	hdr          []string
	status       int
	scimType     string // of an error
	check        func(t *testing.T, f *scimConformance, r resp)
}

type scimConformance struct {
	e    *env
	ids  map[string]string // alice, bob, carol, eng, and the row's new, newgroup
	etag string            // alice's ETag at the start
}

func newSCIMConformance(t *testing.T, st *store.DB) *scimConformance {
	e := newEnv(t, st, nil)
	f := &scimConformance{e: e, ids: map[string]string{}}
	mk := func(key string, body map[string]any) {
		f.ids[key] = e.do("POST", "/Users", body).want(t, http.StatusCreated).str("id")
	}
	mk("alice", map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "Alice@acme.com", "externalId": "Ext-A",
		"name": map[string]any{"givenName": "Alice", "familyName": "Smith"}, "displayName": "Alice Smith", "active": true,
		"emails": []any{map[string]any{"value": "alice@acme.com", "type": "work", "primary": true}}})
	mk("bob", map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "bob@acme.com", "externalId": "ext-b",
		"name": map[string]any{"givenName": "Bob", "familyName": "Jones"}, "displayName": "Bob Jones", "active": false,
		"emails": []any{map[string]any{"value": "bob@acme.com", "type": "work", "primary": true}}})
	mk("carol", map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "carol@example.org",
		"name": map[string]any{"givenName": "Carol", "familyName": "Smithers"}, "active": true,
		"emails": []any{map[string]any{"value": "carol@example.org", "type": "home"}}})
	f.ids["eng"] = e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng",
		"externalId": "G-1", "members": []any{map[string]any{"value": f.ids["alice"]}, map[string]any{"value": f.ids["bob"]}}}).
		want(t, http.StatusCreated).str("id")
	f.etag = e.do("GET", "/Users/"+f.ids["alice"], nil).want(t, http.StatusOK).header.Get("ETag")
	return f
}

// expand replaces {alice}, {new}, {newgroup}, {etag}, … in s; {new} and
// {newgroup} are made for the row when it names them.
func (f *scimConformance) expand(t *testing.T, s string) string {
	if strings.Contains(s, "{new}") && f.ids["new"] == "" {
		f.ids["new"] = f.e.do("POST", "/Users", userBody("n"+store.NewID("")+"@new.example", map[string]any{"externalId": "x-new",
			"emails": []any{map[string]any{"value": "n@new.example", "type": "work", "primary": true},
				map[string]any{"value": "n@home.example", "type": "home"}}})).want(t, http.StatusCreated).str("id")
	}
	if strings.Contains(s, "{newgroup}") && f.ids["newgroup"] == "" {
		f.ids["newgroup"] = f.e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "New " + store.NewID(""),
			"members": []any{map[string]any{"value": f.ids["alice"]}, map[string]any{"value": f.ids["bob"]}}}).
			want(t, http.StatusCreated).str("id")
	}
	for k, v := range f.ids {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
		s = strings.ReplaceAll(s, "%7B"+k+"%7D", v) // in a query, escaped
	}
	return strings.ReplaceAll(s, "{etag}", f.etag)
}

func (f *scimConformance) row(t *testing.T, c scimRow) {
	delete(f.ids, "new")
	delete(f.ids, "newgroup")
	body := f.expand(t, c.body)
	path := f.expand(t, c.path)
	var hdr []string
	for _, h := range c.hdr {
		hdr = append(hdr, f.expand(t, h))
	}
	var b any
	if body != "" {
		b = body
	}
	r := f.e.do(c.method, path, b, hdr...)
	if r.status != c.status {
		t.Fatalf("%s %s: status %d, want %d: %s", c.method, path, r.status, c.status, r.raw)
	}
	if r.raw != "" && !strings.HasPrefix(r.header.Get("Content-Type"), scim.MediaType) {
		t.Errorf("Content-Type %q, want %s (RFC 7644 §3.1)", r.header.Get("Content-Type"), scim.MediaType)
	}
	if c.status >= 400 {
		r.want(t, c.status) // the error schema, status as a string (RFC 7644 §3.12)
		if got, _ := r.body["scimType"].(string); got != c.scimType {
			t.Errorf("scimType %q, want %q: %s", got, c.scimType, r.raw)
		}
	}
	if c.check != nil {
		c.check(t, f, r)
	}
}

// userNames is what a list answered, lower-cased and sorted.
func userNames(r resp) []string {
	names := []string{}
	rs, _ := r.body["Resources"].([]any)
	for _, x := range rs {
		m, _ := x.(map[string]any)
		n, _ := m["userName"].(string)
		names = append(names, strings.ToLower(n))
	}
	sort.Strings(names)
	return names
}

// finds checks a list answered exactly these fixture users (any order).
func finds(who ...string) func(*testing.T, *scimConformance, resp) {
	return func(t *testing.T, f *scimConformance, r resp) {
		want := []string{}
		for _, w := range who {
			want = append(want, map[string]string{"alice": "alice@acme.com", "bob": "bob@acme.com", "carol": "carol@example.org"}[w])
		}
		sort.Strings(want)
		if got := userNames(r); !reflect.DeepEqual(got, want) {
			t.Fatalf("found %v, want %v: %s", got, want, r.raw)
		}
		if n, _ := r.body["totalResults"].(float64); int(n) != len(who) {
			t.Fatalf("totalResults %v, want %d", r.body["totalResults"], len(who))
		}
	}
}

func filter(f string) string { return "/Users?filter=" + url.QueryEscape(f) }

// inOrder checks a list's userNames in the order answered.
func inOrder(names ...string) func(*testing.T, *scimConformance, resp) {
	return func(t *testing.T, _ *scimConformance, r resp) {
		var got []string
		for _, x := range r.body["Resources"].([]any) {
			got = append(got, strings.ToLower(x.(map[string]any)["userName"].(string)))
		}
		if !reflect.DeepEqual(got, names) {
			t.Fatalf("order %v, want %v", got, names)
		}
	}
}

// page checks a ListResponse's paging members.
func page(total, startIndex, itemsPerPage int) func(*testing.T, *scimConformance, resp) {
	return func(t *testing.T, _ *scimConformance, r resp) {
		if !reflect.DeepEqual(r.body["schemas"], []any{scim.SchemaListResponse}) {
			t.Errorf("schemas %v", r.body["schemas"])
		}
		rs, _ := r.body["Resources"].([]any)
		got := [4]any{r.body["totalResults"], r.body["startIndex"], r.body["itemsPerPage"], float64(len(rs))}
		if want := [4]any{float64(total), float64(startIndex), float64(itemsPerPage), float64(itemsPerPage)}; got != want {
			t.Fatalf("totalResults, startIndex, itemsPerPage, len(Resources) = %v, want %v: %s", got, want, r.raw)
		}
	}
}

// keys checks the answer's top-level members are exactly these.
func keys(want ...string) func(*testing.T, *scimConformance, resp) {
	return func(t *testing.T, _ *scimConformance, r resp) {
		var got []string
		for k := range r.body {
			got = append(got, k)
		}
		sort.Strings(got)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("members %v, want %v: %s", got, want, r.raw)
		}
	}
}

// then reads a resource after a write and checks what path holds.
func then(get, path string, want any) func(*testing.T, *scimConformance, resp) {
	return func(t *testing.T, f *scimConformance, _ resp) {
		r := f.e.do("GET", f.expand(t, get), nil).want(t, http.StatusOK)
		if got := lookup(r.body, path); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s after the write: %v, want %v: %s", path, got, want, r.raw)
		}
	}
}

// members checks a group's members after a write, as fixture names.
func members(who ...string) func(*testing.T, *scimConformance, resp) {
	return func(t *testing.T, f *scimConformance, _ resp) {
		r := f.e.do("GET", "/Groups/"+f.ids["newgroup"], nil).want(t, http.StatusOK)
		got := []string{}
		ms, _ := r.body["members"].([]any)
		for _, m := range ms {
			for k, id := range f.ids {
				if m.(map[string]any)["value"] == id {
					got = append(got, k)
				}
			}
		}
		sort.Strings(got)
		sort.Strings(who)
		if !reflect.DeepEqual(got, append([]string{}, who...)) {
			t.Fatalf("members %v, want %v: %s", got, who, r.raw)
		}
	}
}

// findsGroup checks a group list holds the fixture's group (rows that
// run after the writing rows see their groups too).
func findsGroup(key string) func(*testing.T, *scimConformance, resp) {
	return func(t *testing.T, f *scimConformance, r resp) {
		rs, _ := r.body["Resources"].([]any)
		for _, g := range rs {
			if g.(map[string]any)["id"] == f.ids[key] {
				return
			}
		}
		t.Fatalf("%s not found: %s", key, r.raw)
	}
}

func patchOps(ops string) string {
	return `{"schemas":["` + scim.SchemaPatchOp + `"],"Operations":[` + ops + `]}`
}

var scimConformanceRows = []scimRow{
	// Filters (RFC 7644 §3.4.2.2).
	{name: "§3.4.2.2 eq on a caseExact=false attribute ignores case", method: "GET", path: filter(`userName eq "alice@ACME.com"`), status: 200, check: finds("alice")},
	{name: "§3.4.2.2 attribute names and operators are case-insensitive", method: "GET", path: filter(`USERNAME EQ "bob@acme.com"`), status: 200, check: finds("bob")},
	{name: "§3.4.2.2 ne", method: "GET", path: filter(`userName ne "alice@acme.com"`), status: 200, check: finds("bob", "carol")},
	{name: "§3.4.2.2 co", method: "GET", path: filter(`userName co "ACME"`), status: 200, check: finds("alice", "bob")},
	{name: "§3.4.2.2 sw", method: "GET", path: filter(`userName sw "bo"`), status: 200, check: finds("bob")},
	{name: "§3.4.2.2 ew", method: "GET", path: filter(`userName ew ".ORG"`), status: 200, check: finds("carol")},
	{name: "§3.4.2.2 pr", method: "GET", path: filter(`externalId pr`), status: 200, check: finds("alice", "bob")},
	{name: "§3.4.2.2 pr of a complex multi-valued attribute", method: "GET", path: filter(`emails pr`), status: 200, check: finds("alice", "bob", "carol")},
	{name: "§3.4.2.2 gt on a string, lexicographic", method: "GET", path: filter(`userName gt "bob@acme.com"`), status: 200, check: finds("carol")},
	{name: "§3.4.2.2 ge", method: "GET", path: filter(`userName ge "BOB@acme.com"`), status: 200, check: finds("bob", "carol")},
	{name: "§3.4.2.2 lt", method: "GET", path: filter(`userName lt "bob"`), status: 200, check: finds("alice")},
	{name: "§3.4.2.2 le", method: "GET", path: filter(`userName le "bob@acme.com"`), status: 200, check: finds("alice", "bob")},
	{name: "§3.4.2.2 gt on a dateTime", method: "GET", path: filter(`meta.created gt "2000-01-01T00:00:00Z"`), status: 200, check: finds("alice", "bob", "carol")},
	{name: "§3.4.2.2 lt on a dateTime", method: "GET", path: filter(`meta.lastModified lt "2000-01-01T00:00:00Z"`), status: 200, check: finds()},
	{name: "§3.4.2.2 gt on a boolean is invalidFilter", method: "GET", path: filter(`active gt false`), status: 400, scimType: "invalidFilter"},
	{name: "§3.4.2.2 eq on a boolean", method: "GET", path: filter(`active eq false`), status: 200, check: finds("bob")},
	{name: "§3.4.2.2 and", method: "GET", path: filter(`active eq true and name.familyName sw "smith"`), status: 200, check: finds("alice", "carol")},
	{name: "§3.4.2.2 or", method: "GET", path: filter(`userName eq "bob@acme.com" or userName eq "carol@example.org"`), status: 200, check: finds("bob", "carol")},
	{name: "§3.4.2.2 not", method: "GET", path: filter(`not (userName sw "alice")`), status: 200, check: finds("bob", "carol")},
	{name: "§3.4.2.2 and binds tighter than or", method: "GET", path: filter(`userName sw "alice" or userName sw "bob" and active eq true`), status: 200, check: finds("alice")},
	{name: "§3.4.2.2 parentheses group", method: "GET", path: filter(`(userName sw "alice" or userName sw "bob") and active eq false`), status: 200, check: finds("bob")},
	{name: "§3.4.2.2 sub-attribute path name.familyName", method: "GET", path: filter(`name.familyName eq "SMITH"`), status: 200, check: finds("alice")},
	{name: "§3.4.2.2 value path with and", method: "GET", path: filter(`emails[type eq "work" and value co "@acme.com"]`), status: 200, check: finds("alice", "bob")},
	{name: "§3.4.2.2 value path then sub-attribute (Entra)", method: "GET", path: filter(`emails[type eq "work"].value eq "bob@acme.com"`), status: 200, check: finds("bob")},
	{name: "§3.4.2.2 emails.value", method: "GET", path: filter(`emails.value ew "example.org"`), status: 200, check: finds("carol")},
	{name: "§3.10 attribute path with its schema URN", method: "GET", path: filter(scim.SchemaUser + `:userName eq "bob@acme.com"`), status: 200, check: finds("bob")},
	{name: "RFC 7643 §3.1 externalId is caseExact", method: "GET", path: filter(`externalId eq "ext-a"`), status: 200, check: finds()},
	{name: "RFC 7643 §3.1 externalId eq in its case", method: "GET", path: filter(`externalId eq "Ext-A"`), status: 200, check: finds("alice")},
	{name: "§3.4.2.2 id eq", method: "GET", path: "/Users?filter=" + url.QueryEscape(`id eq "{carol}"`), status: 200, check: finds("carol")},
	{name: "§3.4.2.2 a filter that does not parse is invalidFilter", method: "GET", path: filter(`userName eq`), status: 400, scimType: "invalidFilter"},
	{name: "§3.4.2.2 an unknown operator is invalidFilter", method: "GET", path: filter(`userName xx "a"`), status: 400, scimType: "invalidFilter"},
	{name: "§3.4.2.2 an unbalanced parenthesis is invalidFilter", method: "GET", path: filter(`(userName eq "a"`), status: 400, scimType: "invalidFilter"},
	{name: "§3.4.2.2 an attribute we cannot filter on is invalidFilter, never an empty list", method: "GET", path: filter(`title eq "CEO"`), status: 400, scimType: "invalidFilter"},
	{name: "§3.4.2.2 Groups: displayName eq ignores case", method: "GET", path: "/Groups?filter=" + url.QueryEscape(`displayName eq "ENG"`), status: 200,
		check: func(t *testing.T, f *scimConformance, r resp) {
			if r.body["totalResults"] != float64(1) || r.str("Resources.0.id") != f.ids["eng"] {
				t.Fatalf("%s", r.raw)
			}
		}},
	{name: "§3.4.2.2 Groups: members[value eq …]", method: "GET", path: "/Groups?excludedAttributes=members&filter=" + url.QueryEscape(`members[value eq "{bob}"]`), status: 200,
		check: func(t *testing.T, f *scimConformance, r resp) {
			if r.body["totalResults"] != float64(1) || r.str("Resources.0.id") != f.ids["eng"] || lookup(r.body, "Resources.0.members") != nil {
				t.Fatalf("%s", r.raw)
			}
		}},
	{name: "§3.4.2.2 Groups: members eq a non-member", method: "GET", path: "/Groups?filter=" + url.QueryEscape(`members eq "{carol}"`), status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if r.body["totalResults"] != float64(0) {
				t.Fatalf("%s", r.raw)
			}
		}},

	{name: "§3.4.2.2 our choice: a boolean written as a string compares as that boolean", method: "GET", path: filter(`active eq "true"`), status: 200, check: finds("alice", "carol")},
	{name: "§3.4.2.2 our choice: emails[type eq …] holds for every user with an address", method: "GET", path: filter(`emails[type eq "home"]`), status: 200, check: finds("alice", "bob", "carol")},
	{name: "§3.4.2.3 resources without the sortBy attribute come last", method: "GET", path: "/Users?sortBy=displayName", status: 200, check: inOrder("alice@acme.com", "bob@acme.com", "carol@example.org")},
	{name: "§3.4.2.2 ne holds where the attribute is absent", method: "GET", path: filter(`displayName ne "Bob Jones"`), status: 200, check: finds("alice", "carol")},
	{name: "§3.4.2.2 pr and not pr", method: "GET", path: filter(`name.givenName pr and not (displayName pr)`), status: 200, check: finds("carol")},
	{name: "§3.4.2.3 sortBy meta.created descending", method: "GET", path: "/Users?sortBy=meta.created&sortOrder=descending", status: 200, check: inOrder("carol@example.org", "bob@acme.com", "alice@acme.com")},

	{name: "§3.4.2.2 and, or, not in upper case", method: "GET", path: filter(`userName sw "alice" OR userName sw "bob" AND NOT (active eq true)`), status: 200, check: finds("alice", "bob")},
	{name: "§3.4.2.2 true and false in any case (RFC 5234 §2.3)", method: "GET", path: filter(`active eq False`), status: 200, check: finds("bob")},
	{name: "§3.4.2.2 eq null is not pr (RFC 7643 §2.5)", method: "GET", path: filter(`displayName eq null`), status: 200, check: finds("carol")},
	{name: "§3.4.2.3 sortBy names an attribute in any case", method: "GET", path: "/Users?sortBy=USERNAME&sortOrder=descending", status: 200, check: inOrder("carol@example.org", "bob@acme.com", "alice@acme.com")},
	{name: "§3.4.2.4 a startIndex that is no number is invalidValue", method: "GET", path: "/Users?startIndex=abc", status: 400, scimType: "invalidValue"},
	{name: "§3.12 a group's id under /Users is 404", method: "GET", path: "/Users/{eng}", status: 404},
	{name: "§3.4.2.2 not around a value path", method: "GET", path: filter(`not (emails[value ew "acme.com"])`), status: 200, check: finds("carol")},
	{name: "§3.4.2.2 ne null is pr (RFC 7643 §2.5)", method: "GET", path: filter(`displayName ne null`), status: 200, check: finds("alice", "bob")},
	{name: "§3.4.2.2 our choice: a number compared with a string attribute is its digits", method: "GET", path: filter(`externalId eq 5`), status: 200, check: finds()},
	{name: "§4 a filter on /ResourceTypes is 403", method: "GET", path: "/ResourceTypes?filter=" + url.QueryEscape(`id eq "User"`), status: 403},
	{name: "§4 /ServiceProviderConfig has no sub-resources: 404", method: "GET", path: "/ServiceProviderConfig/x", status: 404},

	{name: "RFC 7643 §3.1 a group's externalId is caseExact", method: "GET", path: "/Groups?filter=" + url.QueryEscape(`externalId eq "g-1"`), status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if r.body["totalResults"] != float64(0) {
				t.Fatalf("%s", r.raw)
			}
		}},
	{name: "§3.4.2.4 count=0 on groups answers totalResults alone", method: "GET", path: "/Groups?count=0", status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if r.body["totalResults"] != float64(1) || r.body["itemsPerPage"] != float64(0) || len(r.body["Resources"].([]any)) != 0 {
				t.Fatalf("%s", r.raw)
			}
		}},
	{name: "§3.4.2.3 groups sort by displayName", method: "GET", path: "/Groups?sortBy=displayName&sortOrder=descending&attributes=displayName", status: 200, check: findsGroup("eng")},

	{name: "§3.4.2.2 our choice: emails.type outside a value path is invalidFilter", method: "GET", path: filter(`emails.type eq "work"`), status: 400, scimType: "invalidFilter"},
	{name: "§3.4.2.2 our choice: pr of name, which we cannot filter on, is invalidFilter", method: "GET", path: filter(`name pr`), status: 400, scimType: "invalidFilter"},
	{name: "§3.4.2.2 our choice: emails[primary eq true] holds for every user with an address", method: "GET", path: filter(`emails[primary eq true]`), status: 200, check: finds("alice", "bob", "carol")},

	// Pagination (RFC 7644 §3.4.2.4).
	{name: "§3.4.2.4 startIndex below 1 is 1", method: "GET", path: "/Users?startIndex=0&count=2", status: 200, check: page(3, 1, 2)},
	{name: "§3.4.2.4 negative startIndex is 1", method: "GET", path: "/Users?startIndex=-5&count=1", status: 200, check: page(3, 1, 1)},
	{name: "§3.4.2.4 count=0 answers totalResults alone", method: "GET", path: "/Users?count=0", status: 200, check: page(3, 1, 0)},
	{name: "§3.4.2.4 negative count is 0", method: "GET", path: "/Users?count=-1", status: 200, check: page(3, 1, 0)},
	{name: "§3.4.2.4 count above the maximum is the maximum", method: "GET", path: "/Users?count=100000", status: 200, check: page(3, 1, 3)},
	{name: "§3.4.2.4 startIndex within the list", method: "GET", path: "/Users?startIndex=3&count=10", status: 200, check: page(3, 3, 1)},
	{name: "§3.4.2.4 startIndex past the end is an empty page", method: "GET", path: "/Users?startIndex=10", status: 200, check: page(3, 10, 0)},
	{name: "§3.4.2.4 pages follow creation order without sortBy", method: "GET", path: "/Users?startIndex=2&count=1", status: 200, check: inOrder("bob@acme.com")},

	// Sorting (RFC 7644 §3.4.2.3; /ServiceProviderConfig says sort is supported).
	{name: "§3.4.2.3 sortBy ascending by default", method: "GET", path: "/Users?sortBy=name.familyName", status: 200, check: inOrder("bob@acme.com", "alice@acme.com", "carol@example.org")},
	{name: "§3.4.2.3 sortOrder descending", method: "GET", path: "/Users?sortBy=userName&sortOrder=descending", status: 200, check: inOrder("carol@example.org", "bob@acme.com", "alice@acme.com")},
	{name: "§3.4.2.3 sortBy an attribute we cannot sort by is invalidValue", method: "GET", path: "/Users?sortBy=title", status: 400, scimType: "invalidValue"},

	// attributes and excludedAttributes (RFC 7644 §3.4.2.5, §3.9).
	{name: "§3.9 attributes: only those, with id and schemas", method: "GET", path: "/Users/{alice}?attributes=userName", status: 200, check: keys("id", "schemas", "meta", "userName")},
	{name: "§3.9 attributes names are case-insensitive", method: "GET", path: "/Users/{alice}?attributes=USERNAME", status: 200, check: keys("id", "schemas", "meta", "userName")},
	{name: "§3.9 attributes: a sub-attribute", method: "GET", path: "/Users/{alice}?attributes=name.familyName", status: 200,
		check: func(t *testing.T, f *scimConformance, r resp) {
			keys("id", "schemas", "meta", "name")(t, f, r)
			if !reflect.DeepEqual(r.body["name"], map[string]any{"familyName": "Smith"}) {
				t.Fatalf("name %v", r.body["name"])
			}
		}},
	{name: "§3.9 attributes: with its schema URN", method: "GET", path: "/Users/{alice}?attributes=" + scim.SchemaUser + ":displayName", status: 200, check: keys("id", "schemas", "meta", "displayName")},
	{name: "§3.9 excludedAttributes never removes id or schemas", method: "GET", path: "/Users/{alice}?excludedAttributes=id,schemas,emails,name", status: 200,
		check: func(t *testing.T, f *scimConformance, r resp) {
			if r.body["id"] != f.ids["alice"] || r.body["schemas"] == nil || r.body["emails"] != nil || r.body["name"] != nil || r.body["userName"] == nil {
				t.Fatalf("%s", r.raw)
			}
		}},
	{name: "§3.4.2.5 attributes on a list", method: "GET", path: filter(`userName eq "alice@acme.com"`) + "&attributes=userName", status: 200,
		check: func(t *testing.T, f *scimConformance, r resp) {
			res := lookup(r.body, "Resources.0").(map[string]any)
			if len(res) != 4 || res["id"] != f.ids["alice"] || res["userName"] == nil || res["schemas"] == nil {
				t.Fatalf("%v", res)
			}
		}},
	{name: "§3.4.2.5 excludedAttributes=members on groups (Entra)", method: "GET", path: "/Groups/{eng}?excludedAttributes=members", status: 200, check: keys("id", "schemas", "meta", "displayName", "externalId")},

	{name: "§3.9 attributes: a sub-attribute of a multi-valued attribute", method: "GET", path: "/Users/{alice}?attributes=emails.value", status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if !reflect.DeepEqual(r.body["emails"], []any{map[string]any{"value": "alice@acme.com"}}) {
				t.Fatalf("emails %v", r.body["emails"])
			}
		}},
	{name: "§3.9 excludedAttributes: a sub-attribute", method: "GET", path: "/Users/{alice}?excludedAttributes=name.givenName", status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if !reflect.DeepEqual(r.body["name"], map[string]any{"familyName": "Smith"}) || r.body["emails"] == nil {
				t.Fatalf("%s", r.raw)
			}
		}},
	{name: "§3.8 Accept: application/json is answered", method: "GET", path: "/Users/{alice}", hdr: []string{"Accept", "application/json"}, status: 200},

	// Resources: meta, Location, ETag (RFC 7643 §3.1, RFC 7644 §3.1, §3.14).
	{name: "RFC 7643 §3.1 meta of a user, ETag is meta.version", method: "GET", path: "/Users/{alice}", status: 200,
		check: func(t *testing.T, f *scimConformance, r resp) {
			m, _ := r.body["meta"].(map[string]any)
			if m["resourceType"] != "User" || m["location"] != f.e.srv.BaseURL(f.e.dir)+"/Users/"+f.ids["alice"] ||
				m["created"] == nil || m["lastModified"] == nil || m["version"] != r.header.Get("ETag") || r.header.Get("ETag") == "" {
				t.Fatalf("meta %v, ETag %q", m, r.header.Get("ETag"))
			}
		}},
	{name: "RFC 7643 §3.1 meta of a group", method: "GET", path: "/Groups/{eng}", status: 200,
		check: func(t *testing.T, f *scimConformance, r resp) {
			m, _ := r.body["meta"].(map[string]any)
			if m["resourceType"] != "Group" || m["location"] != f.e.srv.BaseURL(f.e.dir)+"/Groups/"+f.ids["eng"] || m["version"] != r.header.Get("ETag") {
				t.Fatalf("meta %v", m)
			}
		}},
	{name: "§3.14 If-None-Match of the current version is 304", method: "GET", path: "/Users/{alice}", hdr: []string{"If-None-Match", "{etag}"}, status: 304},
	{name: "§3.14 If-None-Match of another version is 200", method: "GET", path: "/Users/{alice}", hdr: []string{"If-None-Match", `W/"999"`}, status: 200},
	{name: "§3.14 If-Match of another version is 412", method: "PATCH", path: "/Users/{alice}", hdr: []string{"If-Match", `W/"999"`},
		body: patchOps(`{"op":"replace","path":"displayName","value":"X"}`), status: 412, check: then("/Users/{alice}", "displayName", "Alice Smith")},
	{name: "§3.14 If-Match: * matches any version (RFC 9110 §13.1.1)", method: "PUT", path: "/Users/{new}", hdr: []string{"If-Match", "*"},
		body: `{"schemas":["` + scim.SchemaUser + `"],"userName":"star@new.example"}`, status: 200},
	{name: "§3.14 If-Match in the strong form of the version matches", method: "PATCH", path: "/Users/{new}", hdr: []string{"If-Match", `"1"`},
		body: patchOps(`{"op":"replace","path":"displayName","value":"S"}`), status: 200},
	{name: "§3.14 If-Match with a list matches any of its versions (RFC 9110 §13.1.1)", method: "PATCH", path: "/Users/{new}", hdr: []string{"If-Match", `W/"7", W/"1"`},
		body: patchOps(`{"op":"replace","path":"displayName","value":"S"}`), status: 200, check: then("/Users/{new}", "displayName", "S")},
	{name: "§3.14 If-Match with a list of stale versions is 412", method: "DELETE", path: "/Groups/{newgroup}", hdr: []string{"If-Match", `W/"7", W/"8"`}, status: 412},
	{name: "§3.14 If-Match with a list on a group PATCH", method: "GET", path: "/Groups/{newgroup}", status: 200,
		check: func(t *testing.T, f *scimConformance, r resp) {
			f.e.do("PATCH", "/Groups/"+f.ids["newgroup"], patchOps(`{"op":"remove","path":"members[value eq \"`+f.ids["bob"]+`\"]"}`), "If-Match", `W/"99", `+r.header.Get("ETag")).
				want(t, http.StatusNoContent)
			f.e.do("PUT", "/Groups/"+f.ids["newgroup"], map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "L"}, "If-Match", `W/"99", `+r.header.Get("ETag")).
				want(t, http.StatusPreconditionFailed)
		}},
	{name: "§3.14 If-None-Match: * on a GET is 304 (RFC 9110 §13.1.2)", method: "GET", path: "/Users/{alice}", hdr: []string{"If-None-Match", "*"}, status: 304},
	{name: "§3.14 If-Match of no version of ours is 412", method: "PATCH", path: "/Users/{new}", hdr: []string{"If-Match", `junk`},
		body: patchOps(`{"op":"replace","path":"displayName","value":"S"}`), status: 412},
	{name: "§3.14 If-Match of the current version applies", method: "DELETE", path: "/Users/{new}", hdr: []string{"If-Match", `W/"1"`}, status: 204},

	// Discovery (RFC 7644 §4, RFC 7643 §5-7).
	{name: "§4 ServiceProviderConfig says what the server does", method: "GET", path: "/ServiceProviderConfig", status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			for path, want := range map[string]any{"patch.supported": true, "bulk.supported": false, "filter.supported": true,
				"filter.maxResults": float64(1000), "changePassword.supported": false, "sort.supported": true, "etag.supported": true,
				"meta.resourceType": "ServiceProviderConfig", "authenticationSchemes.0.type": "oauthbearertoken"} {
				if got := lookup(r.body, path); got != want {
					t.Errorf("%s is %v, want %v", path, got, want)
				}
			}
		}},
	{name: "§4 ResourceTypes lists User and Group", method: "GET", path: "/ResourceTypes", status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if r.body["totalResults"] != float64(2) || r.str("Resources.0.endpoint") != "/Users" || r.str("Resources.1.endpoint") != "/Groups" ||
				r.str("Resources.0.schema") != scim.SchemaUser || r.str("Resources.0.schemaExtensions.0.schema") != scim.SchemaEnterpriseUser {
				t.Fatalf("%s", r.raw)
			}
		}},
	{name: "§4 ResourceTypes/User", method: "GET", path: "/ResourceTypes/User", status: 200, check: then("/ResourceTypes/Group", "endpoint", "/Groups")},
	{name: "§4 Schemas lists the three schemas we serve", method: "GET", path: "/Schemas", status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			var ids []string
			for _, s := range r.body["Resources"].([]any) {
				ids = append(ids, s.(map[string]any)["id"].(string))
			}
			if !reflect.DeepEqual(ids, []string{scim.SchemaUser, scim.SchemaEnterpriseUser, scim.SchemaGroup}) {
				t.Fatalf("%v", ids)
			}
		}},
	{name: "§4 Schemas/{id}: userName is required, unique, caseExact false", method: "GET", path: "/Schemas/" + scim.SchemaUser, status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			a := lookup(r.body, "attributes.0").(map[string]any)
			if a["name"] != "userName" || a["required"] != true || a["uniqueness"] != "server" || a["caseExact"] != false {
				t.Fatalf("%v", a)
			}
		}},
	{name: "§4 Schemas/{id} of an unknown schema is 404", method: "GET", path: "/Schemas/urn:example:nope", status: 404},
	{name: "§4 a filter on a discovery endpoint is 403", method: "GET", path: "/Schemas?filter=" + url.QueryEscape(`id eq "x"`), status: 403},

	// Errors and unknown resources (RFC 7644 §3.12).
	{name: "§3.12 an unknown user is 404", method: "GET", path: "/Users/usr_nope", status: 404},
	{name: "§3.12 an unknown group is 404", method: "GET", path: "/Groups/grp_nope", status: 404},
	{name: "§3.12 an unknown endpoint is 404", method: "GET", path: "/Devices", status: 404},
	{name: "§3.12 a body that is not JSON is invalidSyntax", method: "POST", path: "/Users", body: `{"userName":`, status: 400, scimType: "invalidSyntax"},
	{name: "§3.12 a value not of its attribute's type is invalidValue", method: "POST", path: "/Users", body: `{"schemas":["` + scim.SchemaUser + `"],"userName":7}`, status: 400, scimType: "invalidValue"},
	{name: "§3.12 a message of the wrong structure is invalidSyntax", method: "PATCH", path: "/Users/{alice}", body: `{"schemas":["` + scim.SchemaPatchOp + `"],"Operations":{"op":"add"}}`, status: 400, scimType: "invalidSyntax"},
	{name: "RFC 7643 §4.1 userName is required", method: "POST", path: "/Users", body: `{"schemas":["` + scim.SchemaUser + `"]}`, status: 400, scimType: "invalidValue"},
	{name: "§3.3 a userName taken, in another case, is 409 uniqueness", method: "POST", path: "/Users", body: `{"schemas":["` + scim.SchemaUser + `"],"userName":"ALICE@acme.com"}`, status: 409, scimType: "uniqueness"},
	{name: "§3.12 no token is 401", method: "GET", path: "/Users", hdr: []string{"Authorization", "Bearer nope"}, status: 401},
	{name: "§3.7 /Bulk is not implemented", method: "POST", path: "/Bulk", body: `{}`, status: 501},
	{name: "§3.12 a method a path does not take is 405", method: "DELETE", path: "/Users", status: 405},

	// Creating (RFC 7644 §3.3).
	{name: "§3.3 POST answers 201, Location is meta.location", method: "POST", path: "/Users",
		body: `{"schemas":["` + scim.SchemaUser + `"],"userName":"post@new.example","id":"usr_mine","meta":{"version":"W/\"77\""}}`, status: 201,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if r.header.Get("Location") == "" || r.header.Get("Location") != r.str("meta.location") || r.str("id") == "usr_mine" ||
				r.str("meta.version") != r.header.Get("ETag") || r.str("meta.created") == "" || r.str("meta.created") != r.str("meta.lastModified") {
				t.Fatalf("Location %q: %s", r.header.Get("Location"), r.raw)
			}
		}},
	{name: "RFC 7643 §2.1 attribute names in a body are case-insensitive", method: "POST", path: "/Users",
		body: `{"SCHEMAS":["` + scim.SchemaUser + `"],"USERNAME":"caps@new.example","Name":{"GIVENNAME":"Caps"},"Active":false}`, status: 201,
		check: func(t *testing.T, f *scimConformance, r resp) {
			g := f.e.do("GET", filter(`userName eq "caps@new.example"`)+"&attributes=name.givenName,active", nil).want(t, http.StatusOK)
			if g.body["totalResults"] != float64(1) || lookup(g.body, "Resources.0.active") != false || g.str("Resources.0.name.givenName") != "Caps" {
				t.Fatalf("%s", g.raw)
			}
		}},
	{name: "RFC 7643 §2.1 one attribute given twice in two cases is refused", method: "POST", path: "/Users",
		body: `{"schemas":["` + scim.SchemaUser + `"],"userName":"a@new.example","USERNAME":"b@new.example"}`, status: 400, scimType: "invalidSyntax"},
	{name: "§3.1 a request as application/json is taken", method: "POST", path: "/Groups", hdr: []string{"Content-Type", "application/json"},
		body: `{"schemas":["` + scim.SchemaGroup + `"],"displayName":"Json"}`, status: 201},
	{name: "§3.1 a request in another media type is 415", method: "POST", path: "/Groups", hdr: []string{"Content-Type", "text/plain"},
		body: `{"schemas":["` + scim.SchemaGroup + `"],"displayName":"Text"}`, status: 415},

	{name: "§3.3 our choice: an attribute outside the schemas is kept as sent", method: "POST", path: "/Users",
		body: `{"schemas":["` + scim.SchemaUser + `"],"userName":"badge@new.example","badgeColour":"red"}`, status: 201,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if r.body["badgeColour"] != "red" {
				t.Fatalf("%s", r.raw)
			}
		}},
	{name: "§3.4.2.2 an attribute outside the schemas cannot be filtered on", method: "GET", path: filter(`badgeColour eq "red"`), status: 400, scimType: "invalidFilter"},
	{name: "§3.4.2.2 sw on a boolean is invalidFilter", method: "GET", path: filter(`active sw "t"`), status: 400, scimType: "invalidFilter"},

	// Replacing (RFC 7644 §3.5.1).
	{name: "§3.5.1 PUT replaces: what it leaves out is gone", method: "PUT", path: "/Users/{new}",
		body: `{"schemas":["` + scim.SchemaUser + `"],"userName":"put@new.example","displayName":"Put"}`, status: 200,
		check: func(t *testing.T, f *scimConformance, r resp) {
			if r.body["name"] != nil || r.body["emails"] != nil || r.body["externalId"] != nil || r.str("displayName") != "Put" {
				t.Fatalf("%s", r.raw)
			}
		}},
	{name: "§3.5.1 PUT ignores readOnly attributes (groups, meta)", method: "PUT", path: "/Users/{new}",
		body: `{"schemas":["` + scim.SchemaUser + `"],"userName":"ro@new.example","groups":[{"value":"{eng}"}],"meta":{"created":"2000-01-01T00:00:00Z"}}`, status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if r.body["groups"] != nil || strings.HasPrefix(r.str("meta.created"), "2000") {
				t.Fatalf("%s", r.raw)
			}
		}},
	{name: "§3.3 POST ignores readOnly groups", method: "POST", path: "/Users",
		body: `{"schemas":["` + scim.SchemaUser + `"],"userName":"ro2@new.example","groups":[{"value":"{eng}"}]}`, status: 201, check: func(t *testing.T, f *scimConformance, r resp) {
			g := f.e.do("GET", "/Groups/"+f.ids["eng"], nil).want(t, http.StatusOK)
			if strings.Contains(g.raw, r.str("id")) || r.body["groups"] != nil {
				t.Fatalf("%s / %s", r.raw, g.raw)
			}
		}},
	{name: "§3.4.2.2 a user's groups cannot be filtered on", method: "GET", path: "/Users?filter=" + url.QueryEscape(`groups.value eq "{eng}"`), status: 400, scimType: "invalidFilter"},
	{name: "§3.5.1 PUT to a userName another user has is 409", method: "PUT", path: "/Users/{new}",
		body: `{"schemas":["` + scim.SchemaUser + `"],"userName":"bob@acme.com"}`, status: 409, scimType: "uniqueness"},
	{name: "§3.5.1 PUT of an unknown user is 404", method: "PUT", path: "/Users/usr_nope",
		body: `{"schemas":["` + scim.SchemaUser + `"],"userName":"nope@new.example"}`, status: 404},

	// Modifying (RFC 7644 §3.5.2).
	{name: "§3.5.2 Okta: replace without a path", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"replace","value":{"active":false}}`), status: 200, check: then("/Users/{new}", "active", false)},
	{name: "§3.5.2 Entra: op names in any case, booleans as strings", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"Replace","path":"active","value":"False"},{"op":"ADD","path":"displayName","value":"Up"}`), status: 200,
		check: then("/Users/{new}", "displayName", "Up")},
	{name: "§3.5.2 Entra: the manager as a bare id at its qualified path", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"Add","path":"` + scim.SchemaEnterpriseUser + `:manager","value":"{alice}"}`), status: 200,
		check: func(t *testing.T, f *scimConformance, _ resp) {
			r := f.e.do("GET", "/Users/"+f.ids["new"], nil).want(t, http.StatusOK)
			ext, _ := r.body[scim.SchemaEnterpriseUser].(map[string]any)
			if m, _ := ext["manager"].(map[string]any); m["value"] != f.ids["alice"] {
				t.Fatalf("manager %v: %s", ext["manager"], r.raw)
			}
		}},
	{name: "§3.5.2 Entra: removing the manager", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"Add","path":"` + scim.SchemaEnterpriseUser + `:manager","value":"{alice}"},{"op":"Remove","path":"` + scim.SchemaEnterpriseUser + `:manager"}`), status: 200,
		check: then("/Users/{new}", scim.SchemaEnterpriseUser, nil)},
	{name: "§3.5.2.1 add to a multi-valued attribute appends", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"add","path":"emails","value":[{"value":"third@new.example","type":"other"}]}`), status: 200,
		check: then("/Users/{new}", "emails.2.value", "third@new.example")},
	{name: "§3.5.2.1 add of a value already there changes nothing, version included", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"add","path":"emails","value":[{"value":"n@home.example","type":"home"}]}`), status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if n := len(r.body["emails"].([]any)); n != 2 || r.header.Get("ETag") != `W/"1"` {
				t.Fatalf("%d emails, ETag %s: %s", n, r.header.Get("ETag"), r.raw)
			}
		}},
	{name: "§3.5.2.1 add of a member already there changes nothing", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"add","path":"members","value":[{"value":"{alice}"}]}`), status: 204, check: members("alice", "bob")},
	{name: "§3.1 a request in application/scim+json with a charset is taken", method: "POST", path: "/Groups", hdr: []string{"Content-Type", "application/scim+json; charset=utf-8"},
		body: `{"schemas":["` + scim.SchemaGroup + `"],"displayName":"Charset"}`, status: 201},
	{name: "§3.1 our choice: a body without Content-Type is read as JSON", method: "POST", path: "/Groups", hdr: []string{"Content-Type", ""},
		body: `{"schemas":["` + scim.SchemaGroup + `"],"displayName":"None"}`, status: 201},
	{name: "§3.14 DELETE of a group with a stale If-Match is 412", method: "DELETE", path: "/Groups/{newgroup}", hdr: []string{"If-Match", `W/"99"`}, status: 412},
	{name: "§3.5.2.1 add without a path, a sub-attribute", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"add","value":{"name.middleName":"M"}}`), status: 200, check: then("/Users/{new}", "name.middleName", "M")},
	{name: "§3.5.2.3 replace of a complex attribute leaves the sub-attributes it does not name", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"replace","path":"name","value":{"givenName":"G2"}}`), status: 200,
		check: then("/Users/{new}", "name", map[string]any{"givenName": "G2", "familyName": "Family"})},
	{name: "§3.5.2.3 replace without a path merges a complex attribute too", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"replace","value":{"name":{"familyName":"F2"}}}`), status: 200,
		check: then("/Users/{new}", "name", map[string]any{"givenName": "Given", "familyName": "F2"})},
	{name: "§3.5.2.3 replace of a multi-valued attribute replaces all its values", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"replace","path":"emails","value":[{"value":"only@new.example","type":"work","primary":true}]}`), status: 200,
		check: then("/Users/{new}", "emails", []any{map[string]any{"value": "only@new.example", "type": "work", "primary": true}})},
	{name: "§3.5.2.2 remove a sub-attribute", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"remove","path":"name.givenName"}`), status: 200, check: then("/Users/{new}", "name.givenName", nil)},
	{name: "§3.5.2.2 remove by a value filter", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"remove","path":"emails[type eq \"home\"]"}`), status: 200, check: then("/Users/{new}", "emails.1", nil)},
	{name: "§3.5.2.2 remove without a path is noTarget", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"remove"}`), status: 400, scimType: "noTarget"},
	{name: "§3.5.2.3 Entra: replace by a value filter and sub-attribute", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"Replace","path":"emails[type eq \"work\"].value","value":"w@new.example"}`), status: 200,
		check: then("/Users/{new}", "emails.0.value", "w@new.example")},
	{name: "§3.5.2.3 our choice (Entra): a value filter of equalities that matches nothing makes the value it describes", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"replace","path":"emails[type eq \"other\"].value","value":"x@new.example"}`), status: 200,
		check: then("/Users/{new}", "emails.2", map[string]any{"type": "other", "value": "x@new.example"})},
	{name: "§3.5.2.3 a value filter that matches nothing and describes no value is noTarget", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"replace","path":"emails[value co \"zz\"].type","value":"home"}`), status: 400, scimType: "noTarget"},
	{name: "§3.5.2.2 our choice (a retried remove): a value filter that matches nothing removes nothing", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"remove","path":"emails[type eq \"other\"]"}`), status: 200, check: then("/Users/{new}", "emails.1.type", "home")},
	{name: "§3.5.2 a path that does not parse is invalidPath", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"replace","path":"emails[type eq","value":"x"}`), status: 400, scimType: "invalidPath"},
	{name: "§3.5.2 an unknown op is refused", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"move","path":"displayName","value":"x"}`), status: 400, scimType: "invalidValue"},
	{name: "§3.5.2 PATCH of an unknown user is 404", method: "PATCH", path: "/Users/usr_nope",
		body: patchOps(`{"op":"replace","path":"displayName","value":"x"}`), status: 404},

	// Groups' members (RFC 7644 §3.5.2).
	{name: "§3.5.2.1 add members", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"add","path":"members","value":[{"value":"{carol}"}]}`), status: 204, check: members("alice", "bob", "carol")},
	{name: "§3.5.2.1 Okta: add members with display", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"add","path":"members","value":[{"value":"{carol}","display":"carol@example.org"}]}`), status: 204, check: members("alice", "bob", "carol")},
	{name: "§3.5.2.2 remove a member by members[value eq …]", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"remove","path":"members[value eq \"{alice}\"]"}`), status: 204, check: members("bob")},
	{name: "§3.5.2.2 remove members by a filter with or", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"remove","path":"members[value eq \"{alice}\" or value eq \"{bob}\"]"}`), status: 204, check: members()},
	{name: "§3.5.2.2 our choice: a members filter other than value eq (or joined by or) is invalidFilter", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"remove","path":"members[value ne \"{alice}\"]"}`), status: 400, scimType: "invalidFilter", check: members("alice", "bob")},
	{name: "§3.5.2.2 remove members by a filter on value with another case", method: "PATCH", path: "/Groups/{newgroup}",
		body: `{"schemas":["` + scim.SchemaPatchOp + `"],"Operations":[{"op":"remove","path":"MEMBERS[VALUE EQ \"{alice}\"]"}]}`, status: 204, check: members("bob")},
	{name: "§3.5.2.2 our choice: members[display eq …] is invalidFilter", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"remove","path":"members[display eq \"Alice\"]"}`), status: 400, scimType: "invalidFilter", check: members("alice", "bob")},
	{name: "§3.5.2.2 Entra: remove members by a value array", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"Remove","path":"members","value":[{"value":"{bob}"}]}`), status: 204, check: members("alice")},
	{name: "§3.5.2.3 Okta: replace without a path, id echoed", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"replace","value":{"id":"{newgroup}","displayName":"Renamed"}}`), status: 204, check: then("/Groups/{newgroup}", "displayName", "Renamed")},
	{name: "§3.5.2.3 replace members", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"replace","path":"members","value":[{"value":"{carol}"}]}`), status: 204, check: members("carol")},
	{name: "§3.5.2 a member who is no user of the directory is invalidValue", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"add","path":"members","value":[{"value":"usr_nope"}]}`), status: 400, scimType: "invalidValue", check: members("alice", "bob")},
	{name: "§3.5.2.2 Okta: removing a member who is not one changes nothing", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"remove","path":"members[value eq \"{carol}\"]"}`), status: 204, check: members("alice", "bob")},
	{name: "§3.5.2 PATCH with attributes answers 200 with the group", method: "PATCH", path: "/Groups/{newgroup}?attributes=displayName",
		body: patchOps(`{"op":"replace","path":"displayName","value":"Shown"}`), status: 200, check: keys("id", "schemas", "meta", "displayName")},

	// More of the same, found by probing.
	{name: "§3.5.2.2 remove of members without a filter or value empties the group", method: "PATCH", path: "/Groups/{newgroup}",
		body: patchOps(`{"op":"remove","path":"members"}`), status: 204, check: members()},
	{name: "§3.5.2 our choice: an attribute outside the schemas is kept as sent", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"replace","path":"fooBar","value":"x"}`), status: 200, check: then("/Users/{new}", "fooBar", "x")},
	{name: "§3.5.2 replacing id is mutability", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"replace","path":"id","value":"usr_x"}`), status: 400, scimType: "mutability"},
	{name: "§3.5.2 replacing userName with another user's is 409 uniqueness", method: "PATCH", path: "/Users/{new}",
		body: patchOps(`{"op":"replace","path":"userName","value":"BOB@acme.com"}`), status: 409, scimType: "uniqueness"},
	{name: "§3.4.2.3 sortOrder in any case", method: "GET", path: "/Users?sortBy=userName&sortOrder=DESCENDING&filter=" + url.QueryEscape(`userName co "acme"`), status: 200, check: inOrder("bob@acme.com", "alice@acme.com")},
	{name: "§3.4.2.4 a count that is no number is invalidValue", method: "GET", path: "/Users?count=abc", status: 400, scimType: "invalidValue"},
	{name: "RFC 7643 §4.2 a group without displayName is invalidValue (as /Schemas says: required)", method: "POST", path: "/Groups", body: `{"schemas":["` + scim.SchemaGroup + `"]}`, status: 400, scimType: "invalidValue"},
	{name: "§4 an unknown ResourceType is 404", method: "GET", path: "/ResourceTypes/Device", status: 404},
	{name: "§3.14 PUT with a stale If-Match is 412", method: "PUT", path: "/Users/{new}", hdr: []string{"If-Match", `W/"99"`}, body: `{"schemas":["` + scim.SchemaUser + `"],"userName":"p9@new.example"}`, status: 412},
	{name: "§3.4.2.2 a dateTime filter value that is no date is invalidFilter", method: "GET", path: filter(`meta.created gt "yesterday"`), status: 400, scimType: "invalidFilter"},
	{name: "§3.4.2.2 co on a boolean is invalidFilter", method: "GET", path: filter(`active co "t"`), status: 400, scimType: "invalidFilter"},
	{name: "RFC 9110 §9.3.2 HEAD of a user", method: "HEAD", path: "/Users/{alice}", status: 200},
	{name: "§3.5.2 our choice: a PatchOp without schemas is applied", method: "PATCH", path: "/Users/{new}", body: `{"Operations":[{"op":"replace","path":"displayName","value":"x"}]}`, status: 200, check: then("/Users/{new}", "displayName", "x")},
	{name: "§3.5.2 our choice: a PatchOp whose schemas does not name PatchOp is applied", method: "PATCH", path: "/Users/{new}", body: `{"schemas":["` + scim.SchemaUser + `"],"Operations":[{"op":"replace","path":"displayName","value":"x"}]}`, status: 200, check: then("/Users/{new}", "displayName", "x")},
	{name: "RFC 7643 §3 a resource without schemas is invalidValue", method: "POST", path: "/Users", body: `{"userName":"p16@new.example"}`, status: 400, scimType: "invalidValue"},
	{name: "§3.4.2.5 attributes on a group list", method: "GET", path: "/Groups?attributes=displayName", status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if g := lookup(r.body, "Resources.0").(map[string]any); len(g) != 4 || g["displayName"] != "Eng" {
				t.Fatalf("%v", g)
			}
		}},
	{name: "§3.9 attributes and excludedAttributes together", method: "GET", path: "/Users/{alice}?attributes=userName&excludedAttributes=name", status: 200, check: keys("id", "schemas", "meta", "userName")},
	{name: "§3.5.2 replacing meta is mutability", method: "PATCH", path: "/Users/{new}", body: patchOps(`{"op":"replace","path":"meta.created","value":"2000-01-01T00:00:00Z"}`), status: 400, scimType: "mutability"},
	{name: "RFC 7643 §4.1.2 a user's groups are readOnly: mutability", method: "PATCH", path: "/Users/{new}", body: patchOps(`{"op":"add","path":"groups","value":[{"value":"{eng}"}]}`), status: 400, scimType: "mutability"},
	{name: "§3.10 a group filter with its schema URN", method: "GET", path: "/Groups?filter=" + url.QueryEscape(scim.SchemaGroup+`:displayName eq "Eng"`), status: 200, check: findsGroup("eng")},
	{name: "§3.4.2.2 not without parentheses is invalidFilter", method: "GET", path: filter(`not userName eq "x"`), status: 400, scimType: "invalidFilter"},
	{name: "RFC 7643 §3.1 co on externalId is caseExact", method: "GET", path: filter(`externalId co "EXT"`), status: 200, check: finds()},
	{name: "§3.5.2 our choice: an empty path is no path", method: "PATCH", path: "/Users/{new}", body: patchOps(`{"op":"replace","path":"","value":{"displayName":"E"}}`), status: 200, check: then("/Users/{new}", "displayName", "E")},
	{name: "RFC 7643 §4.2 members carry value, $ref and type", method: "GET", path: "/Groups/{eng}", status: 200,
		check: func(t *testing.T, f *scimConformance, r resp) {
			want := map[string]any{"value": f.ids["alice"], "type": "User", "$ref": f.e.srv.BaseURL(f.e.dir) + "/Users/" + f.ids["alice"]}
			if got := lookup(r.body, "members.0"); !reflect.DeepEqual(got, want) {
				t.Fatalf("members.0 %v, want %v", got, want)
			}
		}},
	{name: "§3.5.2 a user PATCH answers with excludedAttributes applied", method: "PATCH", path: "/Users/{new}?excludedAttributes=emails", body: patchOps(`{"op":"replace","path":"displayName","value":"x"}`), status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if r.body["emails"] != nil || r.str("displayName") != "x" {
				t.Fatalf("%s", r.raw)
			}
		}},
	{name: "RFC 7643 §3 schema URNs are compared ignoring case", method: "POST", path: "/Users", body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:user"],"userName":"p30@new.example"}`, status: 201,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if !reflect.DeepEqual(r.body["schemas"], []any{scim.SchemaUser}) {
				t.Fatalf("schemas %v", r.body["schemas"])
			}
		}},
	{name: "§3.12 POST to a resource is 405", method: "POST", path: "/Users/{alice}", body: `{}`, status: 405},
	{name: "RFC 7643 §4.1 an empty userName is invalidValue", method: "POST", path: "/Users", body: `{"schemas":["` + scim.SchemaUser + `"],"userName":""}`, status: 400, scimType: "invalidValue"},
	{name: "§3.4.2.2 members.value eq", method: "GET", path: "/Groups?filter=" + url.QueryEscape(`members.value eq "{alice}"`), status: 200, check: findsGroup("eng")},
	{name: "§3.4.2.2 a value path and another condition", method: "GET", path: filter(`emails[type eq "work" and value ew "acme.com"] and active eq true`), status: 200, check: finds("alice")},

	{name: "§3.14 a write answers the new version in ETag and meta.version", method: "PATCH", path: "/Users/{new}", hdr: []string{"If-Match", `W/"1"`},
		body: patchOps(`{"op":"replace","path":"displayName","value":"v2"}`), status: 200,
		check: func(t *testing.T, _ *scimConformance, r resp) {
			if r.header.Get("ETag") != `W/"2"` || r.str("meta.version") != `W/"2"` {
				t.Fatalf("ETag %q: %s", r.header.Get("ETag"), r.raw)
			}
		}},
	{name: "§3.14 If-Match of the current version on a group PATCH", method: "GET", path: "/Groups/{newgroup}", status: 200,
		check: func(t *testing.T, f *scimConformance, r resp) {
			p := f.e.do("PATCH", "/Groups/"+f.ids["newgroup"], patchOps(`{"op":"replace","path":"displayName","value":"v2"}`), "If-Match", r.header.Get("ETag")).
				want(t, http.StatusNoContent)
			if p.header.Get("ETag") == "" || p.header.Get("ETag") == r.header.Get("ETag") {
				t.Fatalf("ETag %q after the PATCH, %q before", p.header.Get("ETag"), r.header.Get("ETag"))
			}
		}},
	{name: "RFC 7643 §3.1 members.value is an id: caseExact, as /Schemas says", method: "GET", path: "/Groups?filter=" + url.QueryEscape(`members[value eq "{alice}"]`), status: 200,
		check: func(t *testing.T, f *scimConformance, r resp) {
			findsGroup("eng")(t, f, r)
			up := f.e.do("GET", "/Groups?filter="+url.QueryEscape(`members[value eq "`+strings.ToUpper(f.ids["alice"])+`"]`), nil).want(t, http.StatusOK)
			if up.body["totalResults"] != float64(0) {
				t.Fatalf("an id in another case found %v groups", up.body["totalResults"])
			}
			sch := f.e.do("GET", "/Schemas/"+scim.SchemaGroup, nil).want(t, http.StatusOK)
			if v := lookup(sch.body, "attributes.1.subAttributes.0"); lookup(v, "name") != "value" || lookup(v, "caseExact") != true {
				t.Fatalf("/Schemas says members.value is %v", v)
			}
			if v := lookup(sch.body, "attributes.1.subAttributes.1"); lookup(v, "name") != "$ref" || lookup(v, "caseExact") != true {
				t.Fatalf("/Schemas says members.$ref is %v", v)
			}
		}},

	{name: "§3.14 every write's ETag is the one a GET answers next, a member's deletion included", method: "POST", path: "/Groups",
		body: `{"schemas":["` + scim.SchemaGroup + `"],"displayName":"Versions","members":[{"value":"{alice}"}]}`, status: 201,
		check: func(t *testing.T, f *scimConformance, r resp) {
			loc := strings.TrimPrefix(r.header.Get("Location"), f.e.srv.BaseURL(f.e.dir))
			current := func(step string, w resp) {
				if g := f.e.do("GET", loc, nil, "If-None-Match", w.header.Get("ETag")); g.status != http.StatusNotModified {
					t.Fatalf("after the %s, its ETag %s: GET answered %d with %s", step, w.header.Get("ETag"), g.status, g.header.Get("ETag"))
				}
			}
			current("POST", r)
			current("PATCH", f.e.do("PATCH", loc, patchOps(`{"op":"add","path":"members","value":[{"value":"`+f.ids["bob"]+`"}]}`)).want(t, http.StatusNoContent))
			current("PUT", f.e.do("PUT", loc, map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "V2",
				"members": []any{map[string]any{"value": f.ids["carol"]}}}).want(t, http.StatusOK))
			// A member's user deleted changes the group's representation,
			// so it must change its version: a 304 would keep the member.
			uid := f.e.do("POST", "/Users", userBody("gone@new.example", nil)).want(t, http.StatusCreated).str("id")
			before := f.e.do("PATCH", loc, patchOps(`{"op":"add","path":"members","value":[{"value":"`+uid+`"}]}`)).want(t, http.StatusNoContent)
			f.e.do("DELETE", "/Users/"+uid, nil).want(t, http.StatusNoContent)
			if g := f.e.do("GET", loc, nil, "If-None-Match", before.header.Get("ETag")); g.status != http.StatusOK || strings.Contains(g.raw, uid) {
				t.Fatalf("after its member's user was deleted, GET with the ETag before: %d %s", g.status, g.raw)
			}
		}},

	// Deleting (RFC 7644 §3.6).
	{name: "§3.6 DELETE answers 204, then the user is 404", method: "DELETE", path: "/Users/{new}", status: 204,
		check: func(t *testing.T, f *scimConformance, _ resp) {
			f.e.do("GET", "/Users/"+f.ids["new"], nil).want(t, http.StatusNotFound)
			f.e.do("DELETE", "/Users/"+f.ids["new"], nil).want(t, http.StatusNotFound)
		}},
	{name: "§3.6 DELETE of a group", method: "DELETE", path: "/Groups/{newgroup}", status: 204,
		check: func(t *testing.T, f *scimConformance, _ resp) {
			f.e.do("GET", "/Groups/"+f.ids["newgroup"], nil).want(t, http.StatusNotFound)
		}},
}

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
