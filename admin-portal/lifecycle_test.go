package adminportal_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	adminportal "github.com/idbroker/idbroker/admin-portal"
)

// TestDeleteAndRestore: DELETE takes a tenant out of service (404 for it,
// listed only under ?status=deleted), restore brings it back as it was,
// and each step is audited and announced.
func TestDeleteAndRestore(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tn := e.createTenant(map[string]any{"name": "Acme"})
		other := e.createTenant(map[string]any{"name": "Other"})
		e.must(http.StatusOK, "PATCH", "/tenants/"+tn.ID, map[string]any{"status": "paused"})
		// Not deleted: a refused transition, as the lifecycle's others.
		if r := e.must(http.StatusConflict, "POST", "/tenants/"+tn.ID+"/restore", nil); !strings.Contains(string(r.body), "invalid_transition") {
			t.Errorf("restore of a paused tenant: %s, want code invalid_transition", r.body)
		}
		e.must(http.StatusNoContent, "DELETE", "/tenants/"+tn.ID, nil)

		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/tenants/" + tn.ID, nil},
			{"PATCH", "/tenants/" + tn.ID, map[string]any{"status": "active"}},
			{"DELETE", "/tenants/" + tn.ID, nil},
			{"GET", "/tenants/" + tn.ID + "/domains", nil},
			{"GET", "/tenants/" + tn.ID + "/usage", nil},
			// Its audit log is one of its objects too: named in the query.
			{"GET", "/audit_events?tenant_id=" + tn.ID, nil},
			{"GET", "/audit_events?tenant_id=" + tn.ID + "&format=csv", nil},
			// The tenant is named in the body here, not the path: still
			// 404, as for an unknown tenant, not a 409 that confirms it.
			{"POST", "/portal_links", map[string]any{"tenant_id": tn.ID, "intent": "sso"}},
		} {
			if r := e.call(c.method, c.path, c.body); r.status != http.StatusNotFound || r.err(t).Code != "not_found" {
				t.Errorf("%s %s on a deleted tenant: %d %s", c.method, c.path, r.status, r.body)
			}
		}
		ids := func(query string) []string {
			var l listOut[tenantOut]
			e.must(http.StatusOK, "GET", "/tenants"+query, nil).decode(t, &l)
			var out []string
			for _, x := range l.Data {
				out = append(out, x.ID)
			}
			return out
		}
		if live := ids(""); slices.Contains(live, tn.ID) || !slices.Contains(live, other.ID) {
			t.Errorf("live tenants %v", live)
		}
		if del := ids("?status=deleted"); !slices.Equal(del, []string{tn.ID}) {
			t.Errorf("deleted tenants %v, want [%s]", del, tn.ID)
		}
		e.must(http.StatusBadRequest, "GET", "/tenants?status=gone", nil)

		var back tenantOut
		e.must(http.StatusOK, "POST", "/tenants/"+tn.ID+"/restore", nil).decode(t, &back)
		if back.Status != "paused" {
			t.Errorf("restored as %q, want paused", back.Status)
		}
		e.must(http.StatusOK, "GET", "/tenants/"+tn.ID, nil)
		e.must(http.StatusNotFound, "POST", "/tenants/tnt_01JUNKJUNKJUNKJUNKJUNKJUNK/restore", nil)
		if r := e.call("POST", "/tenants/"+tn.ID+"/restore", nil, "Authorization", ""); r.status != http.StatusUnauthorized {
			t.Errorf("restore without a key: %d", r.status)
		}

		for action, n := range map[string]int{"tenant.deleted": 1, "tenant.restored": 1} {
			if got := len(e.audits(tn.ID, action)); got != n {
				t.Errorf("%d %s audit rows, want %d", got, action, n)
			}
		}
		// paused, deleted, restored (paused again).
		if evs := e.events(tn.ID, "tenant.status_changed"); len(evs) != 3 {
			t.Errorf("%d tenant.status_changed events, want 3", len(evs))
		}
	})
}

// TestRestoreWindow: a deleted tenant is restorable for 30 days. Once the
// window has passed, restore is refused (409, saying why) while the
// tenant waits for the erase job, which must not find it back in service.
func TestRestoreWindow(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			now := time.Now()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			e := mountedEnv(t, b.open(t), adminportal.APIConfig{Now: clock})
			in, late := e.createTenant(map[string]any{"name": "In time"}), e.createTenant(map[string]any{"name": "Too late"})
			e.must(http.StatusNoContent, "DELETE", "/tenants/"+in.ID, nil)
			e.must(http.StatusNoContent, "DELETE", "/tenants/"+late.ID, nil)

			mu.Lock()
			now = now.Add(adminportal.RestoreWindow - time.Hour)
			mu.Unlock()
			e.must(http.StatusOK, "POST", "/tenants/"+in.ID+"/restore", nil)

			mu.Lock()
			now = now.Add(2 * time.Hour)
			mu.Unlock()
			r := e.must(http.StatusConflict, "POST", "/tenants/"+late.ID+"/restore", nil)
			if got := r.err(t); got.Code != "invalid_transition" || !strings.Contains(got.Message, "restore window") {
				t.Errorf("restore after the window: %+v", got)
			}
			e.must(http.StatusNotFound, "GET", "/tenants/"+late.ID, nil)
			if n := len(e.audits(late.ID, "tenant.restored")); n != 0 {
				t.Errorf("%d tenant.restored rows after a refused restore", n)
			}
		})
	}
}
