package scim_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestDeleteHonoursIfMatch: a DELETE whose If-Match names an older version
// answers 412 and deletes nothing, as PUT and PATCH do (the
// ServiceProviderConfig advertises ETags); the current version, "*" or no
// If-Match deletes.
func TestDeleteHonoursIfMatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		for _, endpoint := range []string{"/Users", "/Groups"} {
			for i, tc := range []struct {
				ifMatch string
				status  int
			}{
				{`W/"7"`, http.StatusPreconditionFailed},
				{`W/"1"`, http.StatusNoContent},
				{`*`, http.StatusNoContent},
				{"", http.StatusNoContent},
			} {
				body := userBody(fmt.Sprintf("u%d@acme.com", i), nil)
				if endpoint == "/Groups" {
					body = map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": fmt.Sprint("G", i)}
				}
				path := endpoint + "/" + e.do("POST", endpoint, body).want(t, http.StatusCreated).str("id")
				before := len(eventTypes(t, st))
				var hdr []string
				if tc.ifMatch != "" {
					hdr = []string{"If-Match", tc.ifMatch}
				}
				e.do("DELETE", path, nil, hdr...).want(t, tc.status)
				after := len(eventTypes(t, st))
				if tc.status == http.StatusPreconditionFailed {
					e.do("GET", path, nil).want(t, http.StatusOK)
					if after != before {
						t.Errorf("DELETE %s with If-Match %s was refused but wrote %d events", path, tc.ifMatch, after-before)
					}
					continue
				}
				e.do("GET", path, nil).want(t, http.StatusNotFound)
			}
		}
	})
}
