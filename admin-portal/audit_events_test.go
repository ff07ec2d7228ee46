package adminportal_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

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
			// Text PostgreSQL refuses as an argument: 400 on both backends.
			{"?tenant_id=" + a.ID + "&action=%ff", http.StatusBadRequest},
			{"?tenant_id=" + a.ID + "&actor=a%00b", http.StatusBadRequest},
			{"?tenant_id=" + a.ID + "&actor=%c3%28&format=csv", http.StatusBadRequest},
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

// TestAuditEventsAPIFiltersTheWholeLog: with more than 1000 rows, each
// filter (actor, action, dates) finds rows far past the newest page, next
// cursors walk the whole log once, the CSV holds the whole filtered log,
// and nothing of another tenant is reachable.
func TestAuditEventsAPIFiltersTheWholeLog(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		// Made in the store, without the tenant.created row of today the
		// API writes: a chain's rows are never older than the row before,
		// and these are written in 2025.
		mk := func(name string) store.Tenant {
			tn, err := e.st.CreateTenant(context.Background(), store.Tenant{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			return tn
		}
		a, b := mk("Acme"), mk("Beta")
		base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		seed := func(tenantID string, n int) {
			ctx := store.WithTenant(context.Background(), tenantID)
			for i := range n {
				if _, err := e.st.AppendAudit(ctx, store.AuditEvent{TS: base.Add(time.Duration(i) * time.Hour),
					Action: []string{"domain.added", "directory.created"}[i%2],
					Actor:  store.Actor{Type: "operator", ID: fmt.Sprint("key_", i%5)}, Resource: store.Resource{Type: "domain", ID: fmt.Sprint("row-", i)}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		const n = 1100
		seed(a.ID, n)
		seed(b.ID, 3)

		type page struct {
			Data []struct {
				ID       string         `json:"id"`
				TenantID string         `json:"tenant_id"`
				Action   string         `json:"action"`
				Actor    store.Actor    `json:"actor"`
				Resource store.Resource `json:"resource"`
				TS       time.Time      `json:"ts"`
			}
			NextCursor *string `json:"next_cursor"`
		}
		list := func(query string) page {
			t.Helper()
			var p page
			e.must(http.StatusOK, "GET", "/audit_events?tenant_id="+a.ID+"&"+query, nil).decode(t, &p)
			return p
		}

		// Hours 0, 10 and 20 of the first day: key_0 adding domains, the
		// oldest rows of a log of 1100.
		p := list("actor=key_0&action=domain.added&from=2025-01-01&to=2025-01-02")
		if len(p.Data) != 3 || p.NextCursor != nil {
			t.Fatalf("filtered: %+v", p)
		}
		for i, want := range []string{"row-20", "row-10", "row-0"} {
			if r := p.Data[i]; r.Resource.ID != want || r.TenantID != a.ID || r.Actor.ID != "key_0" || r.Action != "domain.added" {
				t.Errorf("row %d = %+v, want %s", i, r, want)
			}
		}
		// An RFC 3339 time is a bound to the second: from included, to not.
		if p := list("from=2025-01-01T10:00:00Z&to=2025-01-01T12:00:00Z"); len(p.Data) != 2 || p.Data[0].Resource.ID != "row-11" {
			t.Errorf("hours 10 and 11: %+v", p)
		}

		// Pages of 100 walk every row of A once, newest first.
		seen := map[string]bool{}
		var last time.Time
		for q := "limit=100"; ; {
			p := list(q)
			for _, r := range p.Data {
				if seen[r.ID] || r.TenantID != a.ID || (!last.IsZero() && r.TS.After(last)) {
					t.Fatalf("row %+v twice, out of order or another tenant's", r)
				}
				seen[r.ID], last = true, r.TS
			}
			if p.NextCursor == nil {
				break
			}
			q = "limit=100&after=" + *p.NextCursor
		}
		if len(seen) != n {
			t.Fatalf("walked %d rows, want %d", len(seen), n)
		}

		// The CSV holds every filtered row, not a first page.
		r := e.must(http.StatusOK, "GET", "/audit_events?tenant_id="+a.ID+"&action=directory.created&format=csv", nil)
		recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil || len(recs) != n/2+1 {
			t.Fatalf("csv: %d lines, %v", len(recs), err)
		}

		// Another tenant: its cursor is refused, its actors' rows are its own.
		pb := page{}
		e.must(http.StatusOK, "GET", "/audit_events?tenant_id="+b.ID+"&actor=key_0", nil).decode(t, &pb)
		if len(pb.Data) != 1 || pb.Data[0].TenantID != b.ID {
			t.Fatalf("tenant B's key_0: %+v", pb)
		}
		for _, tc := range []struct {
			query string
			want  int
		}{
			{"?tenant_id=" + a.ID + "&after=" + pb.Data[0].ID, http.StatusBadRequest},
			{"?tenant_id=" + a.ID + "&after=" + pb.Data[0].ID + "&format=csv", http.StatusBadRequest},
			{"?tenant_id=" + a.ID + "&from=yesterday", http.StatusBadRequest},
			{"?tenant_id=" + a.ID + "&from=2025-01-02&to=2025-01-01", http.StatusBadRequest},
			{"?tenant_id=" + a.ID + "&actor=" + strings.Repeat("x", 400), http.StatusBadRequest},
		} {
			if r := e.call("GET", "/audit_events"+tc.query, nil); r.status != tc.want {
				t.Errorf("%q: status %d, want %d", tc.query, r.status, tc.want)
			}
		}
	})
}
