package scim_test

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestSortBy: the ServiceProviderConfig advertises sorting, so sortBy and
// sortOrder (RFC 7644 §3.4.2.3) work, the same on both backends: text by
// code point ignoring case where the attribute does (userName) and not
// where it does not (externalId), resources without a value last in
// either order, ties in creation order, pages that neither repeat nor
// skip; an attribute that cannot be sorted on, or a bad sortOrder, is 400.
func TestSortBy(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		if r := e.do("GET", "/ServiceProviderConfig", nil).want(t, http.StatusOK); lookup(r.body, "sort.supported") != true {
			t.Fatalf("sorting is not advertised: %s", r.raw)
		}
		for _, u := range []struct{ userName, externalID, given string }{
			{"carol@acme.com", "b", "Zed"}, {"Alice@acme.com", "B", ""}, {"bob@acme.com", "", "amy"}, {"dave@acme.com", "a", "Émile"},
		} {
			extra := map[string]any{"name": map[string]any{"givenName": u.given}}
			if u.externalID != "" {
				extra["externalId"] = u.externalID
			}
			e.do("POST", "/Users", userBody(u.userName, extra)).want(t, http.StatusCreated)
		}
		names := func(query, attr string) []string {
			t.Helper()
			r := e.do("GET", "/Users?"+query, nil).want(t, http.StatusOK)
			var out []string
			for _, res := range r.body["Resources"].([]any) {
				v, _ := lookup(res, attr).(string)
				out = append(out, v)
			}
			return out
		}
		for _, tc := range []struct {
			query string
			want  []string // userNames
		}{
			{"sortBy=userName", []string{"Alice@acme.com", "bob@acme.com", "carol@acme.com", "dave@acme.com"}},
			{"sortBy=USERNAME&sortOrder=Descending", []string{"dave@acme.com", "carol@acme.com", "bob@acme.com", "Alice@acme.com"}},
			{"sortBy=urn:ietf:params:scim:schemas:core:2.0:User:userName&sortOrder=ascending", []string{"Alice@acme.com", "bob@acme.com", "carol@acme.com", "dave@acme.com"}},
			// Case-exact: "B" before "a" before "b"; no externalId last.
			{"sortBy=externalId", []string{"Alice@acme.com", "dave@acme.com", "carol@acme.com", "bob@acme.com"}},
			{"sortBy=externalId&sortOrder=descending", []string{"carol@acme.com", "dave@acme.com", "Alice@acme.com", "bob@acme.com"}},
			// Code point order, no locale: "É" after "z".
			{"sortBy=name.givenName", []string{"bob@acme.com", "carol@acme.com", "dave@acme.com", "Alice@acme.com"}},
			{"sortBy=meta.created&sortOrder=descending", []string{"dave@acme.com", "bob@acme.com", "Alice@acme.com", "carol@acme.com"}},
			{"sortBy=active", []string{"carol@acme.com", "Alice@acme.com", "bob@acme.com", "dave@acme.com"}},
			{"sortBy=userName&startIndex=2&count=2", []string{"bob@acme.com", "carol@acme.com"}},
			{"sortBy=userName&sortOrder=descending&startIndex=4&count=2", []string{"Alice@acme.com"}},
			{"sortOrder=descending", []string{"carol@acme.com", "Alice@acme.com", "bob@acme.com", "dave@acme.com"}}, // no sortBy: ignored
			{"sortBy=userName&filter=" + url.QueryEscape(`userName ne "bob@acme.com"`), []string{"Alice@acme.com", "carol@acme.com", "dave@acme.com"}},
		} {
			if got := names(tc.query, "userName"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("GET /Users?%s: %v, want %v", tc.query, got, tc.want)
			}
		}

		for _, g := range []string{"ops", "Eng", "design"} {
			e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": g}).want(t, http.StatusCreated)
		}
		r := e.do("GET", "/Groups?sortBy=displayName&sortOrder=descending&excludedAttributes=members", nil).want(t, http.StatusOK)
		var groups []string
		for _, res := range r.body["Resources"].([]any) {
			groups = append(groups, lookup(res, "displayName").(string))
		}
		if want := []string{"ops", "Eng", "design"}; !reflect.DeepEqual(groups, want) {
			t.Errorf("groups by displayName descending: %v, want %v", groups, want)
		}

		for _, path := range []string{
			"/Users?sortBy=title", "/Users?sortBy=userName&sortOrder=up", "/Users?sortBy=emails[type",
			"/Users?sortBy=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
			"/Groups?sortBy=members", "/Groups?sortBy=userName",
		} {
			if r := e.do("GET", path, nil).want(t, http.StatusBadRequest); r.str("scimType") != "invalidValue" {
				t.Errorf("GET %s: scimType %q, want invalidValue", path, r.str("scimType"))
			}
		}
	})
}
