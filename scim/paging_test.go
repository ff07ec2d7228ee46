package scim_test

import (
	"net/http"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestListIndexesBeyondInt: startIndex and count too large for an int64
// are still integers (RFC 7644 §3.4.2.4): a startIndex past the end is an
// empty page with the true total, a count past maxResults is capped, and
// the negative ones are read as 1 and 0, as small ones are.
func TestListIndexesBeyondInt(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		for _, u := range []string{"a@acme.com", "b@acme.com"} {
			e.do("POST", "/Users", userBody(u, nil)).want(t, http.StatusCreated)
		}
		const huge = "99999999999999999999999"
		for _, tc := range []struct {
			query string
			page  int
		}{
			{"startIndex=" + huge, 0},
			{"count=" + huge, 2},
			{"startIndex=-" + huge, 2},
			{"count=-" + huge, 0},
			{"startIndex=" + huge + "&count=" + huge, 0},
		} {
			r := e.do("GET", "/Users?"+tc.query, nil).want(t, http.StatusOK)
			resources, _ := r.body["Resources"].([]any)
			if lookup(r.body, "totalResults") != float64(2) || lookup(r.body, "itemsPerPage") != float64(tc.page) || len(resources) != tc.page {
				t.Errorf("GET /Users?%s: want 2 in all and %d here: %s", tc.query, tc.page, r.raw)
			}
		}
		e.do("GET", "/Groups?startIndex="+huge, nil).want(t, http.StatusOK)
		for _, q := range []string{"startIndex=1.5", "count=ten", "startIndex=" + huge + "x"} {
			if r := e.do("GET", "/Users?"+q, nil).want(t, http.StatusBadRequest); r.str("scimType") != "invalidValue" {
				t.Errorf("GET /Users?%s: scimType %q, want invalidValue", q, r.str("scimType"))
			}
		}
	})
}
