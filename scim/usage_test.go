package scim_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestWritesAreMetered: each SCIM write that commits is one scim.operation
// record of the directory's tenant; reads and refused writes are none.
func TestWritesAreMetered(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		id := e.do("POST", "/Users", userBody("alice@acme.com", nil)).want(t, http.StatusCreated).str("id")
		e.do("POST", "/Users", userBody("ALICE@acme.com", nil)).want(t, http.StatusConflict)
		e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK)
		e.do("PATCH", "/Users/"+id, map[string]any{
			"schemas":    []string{scim.SchemaPatchOp},
			"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}},
		}).want(t, http.StatusOK)
		e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "eng"}).want(t, http.StatusCreated)
		e.do("DELETE", "/Users/"+id, nil).want(t, http.StatusNoContent)

		other, _, _ := e.newDirectory("Other")
		now := time.Now()
		for tenant, want := range map[string]int{e.tenant: 4, other: 0} {
			recs, err := st.UsageRecords(store.WithTenant(context.Background(), tenant), now.Add(-time.Hour), now.Add(time.Hour), time.Time{}, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != want {
				t.Fatalf("tenant %s: %d records, want %d: %+v", tenant, len(recs), want, recs)
			}
			for _, r := range recs {
				if r.Meter != store.MeterSCIMOperation {
					t.Fatalf("record %+v", r)
				}
			}
		}
	})
}
