package adminportal_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
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
			{"?tenant_id=", http.StatusNotFound}, // as in /events: no tenant has that id
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

// TestVendorAuditEvents: GET /audit_events without tenant_id lists the
// vendor's own rows — API keys, applications, webhooks, console operators —
// in the contract's audit row shape with tenant_id null, newest first,
// with the same filters, cursor and CSV export as a tenant's log, and no
// tenant's row among them.
func TestVendorAuditEvents(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tn := e.createTenant(map[string]any{"name": "Acme"})
		var app appOut
		e.must(http.StatusCreated, "POST", "/applications", map[string]any{
			"name": "App", "redirect_uris": []string{"https://app.example/cb"},
		}).decode(t, &app)
		e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{
			"url": "https://hooks.example/h", "events": []string{"tenant.status_changed"},
		})
		tenantRows := e.audits(tn.ID, "")

		type row struct {
			ID       *string         `json:"id"`
			TenantID *string         `json:"tenant_id"`
			Actor    store.Actor     `json:"actor"`
			Action   string          `json:"action"`
			Resource store.Resource  `json:"resource"`
			Context  json.RawMessage `json:"context"`
			TS       time.Time       `json:"ts"`
			Hash     string          `json:"hash"`
		}
		list := func(query string) listOut[row] {
			t.Helper()
			var p listOut[row]
			e.must(http.StatusOK, "GET", "/audit_events"+query, nil).decode(t, &p)
			return p
		}
		all := list("")
		actions := map[string]bool{}
		for _, r := range all.Data {
			actions[r.Action] = true
			if r.TenantID != nil || r.ID == nil || r.Hash == "" {
				t.Errorf("vendor row %+v: want tenant_id null, an id and a hash", r)
			}
			for _, tr := range tenantRows {
				if *r.ID == tr.ID {
					t.Errorf("tenant row %s in the vendor's log", tr.ID)
				}
			}
		}
		if !actions["application.created"] || !actions["webhook.created"] || all.Data[0].Action != "webhook.created" {
			t.Fatalf("vendor log %+v, want webhook.created first, then application.created", all.Data)
		}

		tests := []struct {
			name    string
			query   string
			actions []string // the page, newest first
			next    bool
		}{
			{"action", "?action=application.created", []string{"application.created"}, false},
			{"actor", "?actor=" + e.keyID + "&action=webhook.created", []string{"webhook.created"}, false},
			{"unknown actor", "?actor=ak_nobody", nil, false},
			{"first page", "?limit=1", []string{"webhook.created"}, true},
			{"future", "?from=" + time.Now().Add(48*time.Hour).Format("2006-01-02"), nil, false},
			{"past", "?to=2000-01-01", nil, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := list(tt.query)
				var got []string
				for _, r := range p.Data {
					got = append(got, r.Action)
				}
				if !slices.Equal(got, tt.actions) || (p.NextCursor != nil) != tt.next {
					t.Errorf("%s: %v next %v, want %v next %v", tt.query, got, p.NextCursor, tt.actions, tt.next)
				}
			})
		}

		// The cursor walks on, to the application.
		p1 := list("?limit=1")
		if p2 := list("?limit=1&after=" + *p1.NextCursor); len(p2.Data) != 1 || p2.Data[0].Action != "application.created" {
			t.Errorf("page 2 %+v", p2)
		}

		r := e.must(http.StatusOK, "GET", "/audit_events?format=csv&action=application.created", nil)
		recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") || err != nil || len(recs) != 2 ||
			recs[0][2] != "tenant_id" || recs[1][2] != "" || recs[1][7] != "application.created" || recs[1][9] != app.ID {
			t.Errorf("csv %q %v %q", ct, err, r.body)
		}

		for _, tc := range []struct {
			query string
			want  int
		}{
			{"?after=" + tenantRows[0].ID, http.StatusBadRequest}, // a tenant's row is no cursor here
			{"?after=bogus", http.StatusBadRequest},
			{"?after=bogus&format=csv", http.StatusBadRequest},
			{"?limit=0", http.StatusBadRequest},
			{"?from=2025-01-02&to=2025-01-01", http.StatusBadRequest},
			{"?format=xml", http.StatusBadRequest},
			{"?action=%ff", http.StatusBadRequest},
			{"?tenant=" + tn.ID, http.StatusBadRequest},
		} {
			if r := e.call("GET", "/audit_events"+tc.query, nil); r.status != tc.want {
				t.Errorf("%q: status %d, want %d: %s", tc.query, r.status, tc.want, r.body)
			} else if tc.want == http.StatusBadRequest && r.err(t).Code != "invalid_request" {
				t.Errorf("%q: %s", tc.query, r.body)
			}
		}
		if r := e.call("GET", "/audit_events", nil, "Authorization", ""); r.status != http.StatusUnauthorized {
			t.Errorf("no key: %d", r.status)
		}
	})
}

// TestAuditRowsKeepTheContractShape: every row the API answers, of a
// tenant's log or the vendor's, has every key of the contract's audit row —
// actor {type, id, ip, user_agent}, resource {type, id, name} — null where
// the row has no value (a job's row has no address, a webhook no name),
// never a missing key.
func TestAuditRowsKeepTheContractShape(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		tn := e.createTenant(map[string]any{"name": "Acme"})
		job := store.Actor{Type: "system", ID: "erase-job"}
		if _, err := e.st.AppendAudit(store.WithTenant(ctx, tn.ID), store.AuditEvent{Actor: job, Action: "connection.certificate_checked",
			Resource: store.Resource{Type: "connection", ID: "conn_x"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.AppendOperatorAudit(ctx, store.OperatorAuditEvent{Actor: job, Action: "api_key.created",
			Resource: store.Resource{Type: "api_key", ID: "ak_x"}}); err != nil {
			t.Fatal(err)
		}
		e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{"url": "https://hooks.example/h", "events": []string{"*"}})

		keys := func(m map[string]any) []string {
			out := make([]string, 0, len(m))
			for k := range m {
				out = append(out, k)
			}
			slices.Sort(out)
			return out
		}
		want := map[string][]string{
			"row":      {"action", "actor", "context", "hash", "id", "prev_hash", "request_id", "resource", "tenant_id", "ts"},
			"actor":    {"id", "ip", "type", "user_agent"},
			"resource": {"id", "name", "type"},
		}
		for _, query := range []string{"?tenant_id=" + tn.ID, ""} {
			t.Run("log"+query, func(t *testing.T) {
				var page struct{ Data []map[string]any }
				e.must(http.StatusOK, "GET", "/audit_events"+query, nil).decode(t, &page)
				if len(page.Data) < 2 {
					t.Fatalf("%d rows", len(page.Data))
				}
				for _, r := range page.Data {
					actor, _ := r["actor"].(map[string]any)
					resource, _ := r["resource"].(map[string]any)
					for name, got := range map[string][]string{"row": keys(r), "actor": keys(actor), "resource": keys(resource)} {
						if !slices.Equal(got, want[name]) {
							t.Errorf("%s of %s row: keys %v, want %v", name, r["action"], got, want[name])
						}
					}
					if r["action"] == "api_key.created" || r["action"] == "connection.certificate_checked" {
						if actor["ip"] != nil || actor["user_agent"] != nil || resource["name"] != nil {
							t.Errorf("job row %v: want ip, user_agent and name null", r)
						}
					}
				}
			})
		}
	})
}
