package adminportal_test

import (
	"net/http"
	"testing"
)

// TestTrailingAndRepeatedSlashes: a path with a trailing slash, or a
// doubled one (a base URL configured as ".../api/v1/"), reaches the route
// it names, authentication included; what is not a route stays 404.
func TestTrailingAndRepeatedSlashes(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tn := e.createTenant(map[string]any{"name": "Acme"})
		for _, tc := range []struct {
			method, path string
			body         any
			want         int
		}{
			{"GET", "/tenants/", nil, http.StatusOK},
			{"GET", "//tenants", nil, http.StatusOK},
			{"GET", "/tenants/" + tn.ID + "/", nil, http.StatusOK},
			{"GET", "/tenants//" + tn.ID + "//domains/", nil, http.StatusOK},
			{"POST", "/tenants/", map[string]any{"name": "Beta"}, http.StatusCreated},
			{"PATCH", "/tenants/" + tn.ID + "/", map[string]any{"name": "Acme Inc"}, http.StatusOK},
			{"GET", "/tenants/" + tn.ID + "/nothing/", nil, http.StatusNotFound},
		} {
			r := e.call(tc.method, tc.path, tc.body)
			if r.status != tc.want {
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, r.status, r.body, tc.want)
			}
		}
		if r := e.call("GET", "/tenants/", nil, "Authorization", ""); r.status != http.StatusUnauthorized {
			t.Errorf("GET /tenants/ without a key: %d, want 401", r.status)
		}
	})
}
