package adminportal_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/idbroker/idbroker/sessions"
)

// TestSmallListsPage: a tenant's domains, connections and directories and
// the webhooks are lists like any other: ?limit= bounds a page (1 to 100,
// else 400), next_cursor leads through every entry once in a stable order
// and is null on the last page, and a cursor of another list is a 400.
// Before, these four answered everything in one page whatever the limit,
// and ignored a bad limit or cursor.
func TestSmallListsPage(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			scimEnv := newSCIMEnv(t, st)
			connEnv := newConnEnv(t, st, sessions.NewMemory())
			tn := scimEnv.createTenant(map[string]any{"name": "Acme", "domains": []map[string]any{
				{"domain": "c.example"}, {"domain": "a.example"}, {"domain": "b.example"}}})
			for _, n := range []string{"1", "2", "3"} {
				scimEnv.must(http.StatusCreated, "POST", "/tenants/"+tn.ID+"/directories", map[string]any{"name": "Dir " + n})
				connEnv.must(http.StatusCreated, "POST", "/tenants/"+tn.ID+"/connections", map[string]any{"type": "saml", "name": "IdP " + n})
				scimEnv.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": "https://hooks.example/" + n, "events": []string{"*"}})
			}
			for _, tc := range []struct {
				e    *env
				path string
			}{
				{scimEnv, "/tenants/" + tn.ID + "/domains"},
				{connEnv, "/tenants/" + tn.ID + "/connections"},
				{scimEnv, "/tenants/" + tn.ID + "/directories"},
				{scimEnv, "/webhooks"},
			} {
				e := tc.e
				var all listOut[struct{ ID string }]
				e.must(http.StatusOK, "GET", tc.path, nil).decode(t, &all)
				if len(all.Data) != 3 || all.NextCursor != nil {
					t.Fatalf("%s: %d entries, next %v; want 3 in one page", tc.path, len(all.Data), all.NextCursor)
				}
				var walked []string
				after := ""
				for range 5 {
					var page listOut[struct{ ID string }]
					e.must(http.StatusOK, "GET", tc.path+"?limit=2"+after, nil).decode(t, &page)
					if len(page.Data) > 2 {
						t.Fatalf("%s?limit=2: %d entries", tc.path, len(page.Data))
					}
					for _, x := range page.Data {
						walked = append(walked, x.ID)
					}
					if page.NextCursor == nil {
						break
					}
					after = "&after=" + *page.NextCursor
				}
				var ids []string
				for _, x := range all.Data {
					ids = append(ids, x.ID)
				}
				if !slices.Equal(walked, ids) || !slices.IsSorted(walked) {
					t.Errorf("%s: pages of 2 walked %v, want %v once each, in id order", tc.path, walked, ids)
				}
				for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?after=" + tn.ID} {
					if r := e.call("GET", tc.path+q, nil); r.status != http.StatusBadRequest {
						t.Errorf("%s%s: %d, want 400", tc.path, q, r.status)
					}
				}
			}
		})
	}
}
