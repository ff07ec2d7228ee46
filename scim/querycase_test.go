package scim_test

import (
	"net/http"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestQueryParameterNamesIgnoreCase: a lookup sent as ?Filter= (or
// ?FILTER=, ?Count=, …) is the lookup, not the whole list: it was answered
// unfiltered, and a client checking whether a user exists took the first
// user for its match. The same parameter twice with different values is
// refused; another directory's user is never found by any spelling.
func TestQueryParameterNamesIgnoreCase(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		status int
		total  float64
		check  func(t *testing.T, r resp)
	}{
		{"Filter", `/Users?Filter=userName%20eq%20%22nobody@acme.com%22`, http.StatusOK, 0, nil},
		{"FILTER matching", `/Users?FILTER=userName%20eq%20%22bo@acme.com%22`, http.StatusOK, 1, nil},
		{"the other directory's user by any spelling", `/Users?fIlTeR=userName%20eq%20%22other@acme.com%22`, http.StatusOK, 0, nil},
		{"StartIndex and Count", `/Users?StartIndex=2&Count=1`, http.StatusOK, 2, func(t *testing.T, r resp) {
			if r.body["startIndex"] != float64(2) || r.body["itemsPerPage"] != float64(1) {
				t.Errorf("paging ignored: %s", r.raw)
			}
		}},
		{"SortBy and SortOrder", `/Users?SortBy=userName&SortOrder=descending`, http.StatusOK, 2, func(t *testing.T, r resp) {
			if r.str("Resources.0.userName") != "bo@acme.com" {
				t.Errorf("sort ignored: %s", r.raw)
			}
		}},
		{"Attributes", `/Users?Attributes=userName`, http.StatusOK, 2, func(t *testing.T, r resp) {
			if lookup(r.body, "Resources.0.emails") != nil {
				t.Errorf("attributes ignored: %s", r.raw)
			}
		}},
		{"ExcludedAttributes", `/Users?excludedattributes=emails`, http.StatusOK, 2, func(t *testing.T, r resp) {
			if lookup(r.body, "Resources.0.emails") != nil {
				t.Errorf("excludedAttributes ignored: %s", r.raw)
			}
		}},
		{"the same value twice", `/Users?filter=userName%20eq%20%22bo@acme.com%22&Filter=userName%20eq%20%22bo@acme.com%22`, http.StatusOK, 1, nil},
		{"two different filters", `/Users?filter=userName%20eq%20%22bo@acme.com%22&Filter=userName%20eq%20%22al@acme.com%22`, http.StatusBadRequest, 0, func(t *testing.T, r resp) {
			if r.str("scimType") != "invalidValue" {
				t.Errorf("scimType: %s", r.raw)
			}
		}},
		{"a discovery endpoint with Filter", `/Schemas?Filter=id%20eq%20%22x%22`, http.StatusForbidden, 0, nil},
	}
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		e.do("POST", "/Users", userBody("al@acme.com", nil)).want(t, http.StatusCreated)
		e.do("POST", "/Users", userBody("bo@acme.com", nil)).want(t, http.StatusCreated)
		_, otherDir, otherToken := e.newDirectory("Other")
		e.doAs(otherDir, otherToken, "POST", "/Users", userBody("other@acme.com", nil)).want(t, http.StatusCreated)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do("GET", tc.path, nil).want(t, tc.status)
				if tc.status == http.StatusOK && tc.path[:7] == "/Users?" {
					if r.body["totalResults"] != tc.total {
						t.Errorf("totalResults %v, want %v: %s", r.body["totalResults"], tc.total, r.raw)
					}
					if sch, _ := r.body["schemas"].([]any); len(sch) != 1 || sch[0] != scim.SchemaListResponse {
						t.Errorf("schemas: %s", r.raw)
					}
				}
				if tc.check != nil {
					tc.check(t, r)
				}
			})
		}
	})
}
