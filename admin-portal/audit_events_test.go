package adminportal_test

import (
	"encoding/csv"
	"net/http"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/store"
)

func TestAuditEventsAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		a := e.createTenant(map[string]any{"name": "Acme"})
		b := e.createTenant(map[string]any{"name": "Beta"})
		// A hostile user agent lands in the audit row's actor.
		if r := e.call("POST", "/tenants/"+a.ID+"/domains", map[string]any{"domain": "acme.com"}, "User-Agent", "=HYPERLINK(\"http://evil\")"); r.status != http.StatusCreated {
			t.Fatalf("add domain: %d %s", r.status, r.body)
		}
		e.must(http.StatusOK, "PATCH", "/tenants/"+a.ID, map[string]any{"name": "Acme Inc"})

		var page struct {
			Data []struct {
				ID       string      `json:"id"`
				TenantID string      `json:"tenant_id"`
				Action   string      `json:"action"`
				Actor    store.Actor `json:"actor"`
			}
			NextCursor *string `json:"next_cursor"`
		}
		e.must(http.StatusOK, "GET", "/audit_events?tenant_id="+a.ID+"&limit=2", nil).decode(t, &page)
		if len(page.Data) != 2 || page.Data[0].Action != "tenant.updated" || page.NextCursor == nil {
			t.Fatalf("page 1 %+v", page)
		}
		e.must(http.StatusOK, "GET", "/audit_events?tenant_id="+a.ID+"&after="+*page.NextCursor, nil).decode(t, &page)
		if len(page.Data) != 1 || page.Data[0].Action != "tenant.created" || page.NextCursor != nil {
			t.Fatalf("page 2 %+v", page)
		}
		e.must(http.StatusOK, "GET", "/audit_events?tenant_id="+a.ID+"&action=domain.added", nil).decode(t, &page)
		if len(page.Data) != 1 || page.Data[0].Actor.Type != "operator" {
			t.Fatalf("filtered %+v", page)
		}
		// Tenant B's log holds only B's creation.
		e.must(http.StatusOK, "GET", "/audit_events?tenant_id="+b.ID, nil).decode(t, &page)
		if len(page.Data) != 1 || page.Data[0].TenantID != b.ID {
			t.Fatalf("tenant B %+v", page)
		}

		r := e.must(http.StatusOK, "GET", "/audit_events?tenant_id="+a.ID+"&format=csv", nil)
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Fatalf("content type %q", ct)
		}
		recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil || len(recs) != 4 || recs[0][0] != "id" {
			t.Fatalf("csv %v %q", err, r.body)
		}
		for _, rec := range recs[1:] {
			for _, cell := range rec {
				if strings.HasPrefix(cell, "=") {
					t.Fatalf("formula cell exported as is: %q", cell)
				}
			}
		}

		for _, tc := range []struct {
			query string
			want  int
		}{
			{"", http.StatusBadRequest},
			{"?tenant_id=" + store.NewID(store.PrefixTenant), http.StatusNotFound},
			{"?tenant_id=garbage", http.StatusNotFound},
			{"?tenant_id=" + a.ID + "&format=xml", http.StatusBadRequest},
			{"?tenant_id=" + a.ID + "&after=" + b.ID, http.StatusBadRequest},
		} {
			if r := e.call("GET", "/audit_events"+tc.query, nil); r.status != tc.want {
				t.Errorf("%q: status %d, want %d", tc.query, r.status, tc.want)
			}
		}
		if r := e.call("GET", "/audit_events?tenant_id="+a.ID, nil, "Authorization", ""); r.status != http.StatusUnauthorized {
			t.Errorf("no key: %d", r.status)
		}
	})
}
