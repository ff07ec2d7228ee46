package scim_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestTenantStatusGatesSCIM: a paused or cancelled tenant's directory is
// read-only (writes 403 in the SCIM error schema); a deleted tenant's token
// no longer works at all (401).
func TestTenantStatusGatesSCIM(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		id := e.do("POST", "/Users", userBody("alice@acme.com", nil)).want(t, http.StatusCreated).str("id")
		for _, status := range []store.TenantStatus{store.TenantPaused, store.TenantCancelled} {
			s := status
			if _, err := st.UpdateTenant(e.ctx(), store.TenantUpdate{Status: &s}); err != nil {
				t.Fatal(err)
			}
			e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK)
			e.do("GET", "/Users", nil).want(t, http.StatusOK)
			for _, w := range []struct {
				method, path string
				body         any
			}{
				{"POST", "/Users", userBody("bob@acme.com", nil)},
				{"PUT", "/Users/" + id, userBody("alice@acme.com", nil)},
				{"PATCH", "/Users/" + id, map[string]any{"schemas": []string{scim.SchemaPatchOp},
					"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}},
				{"DELETE", "/Users/" + id, nil},
			} {
				r := e.do(w.method, w.path, w.body).want(t, http.StatusForbidden)
				if r.str("status") != "403" || !strings.HasPrefix(r.header.Get("Content-Type"), scim.MediaType) {
					t.Fatalf("%s %s of a %s tenant: %s %s", w.method, w.path, status, r.header.Get("Content-Type"), r.raw)
				}
			}
		}
		if _, err := st.SoftDeleteTenant(e.ctx()); err != nil {
			t.Fatal(err)
		}
		e.do("GET", "/Users/"+id, nil).want(t, http.StatusUnauthorized)
	})
}
