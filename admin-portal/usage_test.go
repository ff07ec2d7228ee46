package adminportal_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/usage"
)

func TestUsageAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		var a, b struct{ ID string }
		e.must(http.StatusCreated, "POST", "/tenants", map[string]any{"name": "A"}).decode(t, &a)
		e.must(http.StatusCreated, "POST", "/tenants", map[string]any{"name": "B"}).decode(t, &b)
		m := usage.New(e.st, nil, nil)
		login := func(tenantID, user, req string) {
			ctx := store.WithTenant(context.Background(), tenantID)
			if err := e.st.InTx(ctx, func(ctx context.Context) error { return m.Login(ctx, user, req) }); err != nil {
				t.Fatal(err)
			}
		}
		login(a.ID, "usr_1", "r1")
		login(a.ID, "usr_1", "r2")
		login(a.ID, "usr_2", "r3")
		login(b.ID, "usr_9", "r1")

		day := time.Now().UTC().Format(time.DateOnly)
		tomorrow := time.Now().UTC().Add(24 * time.Hour).Format(time.DateOnly)
		var out struct {
			TenantID string `json:"tenant_id"`
			Totals   usage.Totals
			Data     []usage.Bucket
		}
		e.must(http.StatusOK, "GET", "/tenants/"+a.ID+"/usage?granularity=month&from="+day+"&to="+tomorrow, nil).decode(t, &out)
		if out.TenantID != a.ID || out.Totals.Logins != 3 || out.Totals.MAU != 2 || len(out.Data) != 1 {
			t.Fatalf("A's usage = %+v", out)
		}
		e.must(http.StatusOK, "GET", "/tenants/"+b.ID+"/usage", nil).decode(t, &out)
		if out.Totals.Logins != 1 || out.Totals.MAU != 1 {
			t.Fatalf("B's usage (default range) = %+v", out)
		}

		for _, q := range []string{"granularity=week", "from=yesterday", "from=" + tomorrow + "&to=" + day, "from=2020-01-01&to=2026-01-01"} {
			if r := e.must(http.StatusBadRequest, "GET", "/tenants/"+a.ID+"/usage?"+q, nil); r.err(t).Code != "invalid_request" {
				t.Fatalf("%s: %s", q, r.body)
			}
		}
		// The field blamed is one the client sent, not a default.
		for q, field := range map[string]string{
			"from=2999-01-01": "from", "to=2000-01-01": "to", "from=" + tomorrow + "&to=" + day: "to",
		} {
			for _, path := range []string{"/tenants/" + a.ID + "/usage?", "/usage/export?"} {
				if got := e.must(http.StatusBadRequest, "GET", path+q, nil).err(t); got.Field != field {
					t.Errorf("%s%s: field %q (%s), want %q", path, q, got.Field, got.Message, field)
				}
			}
		}
		// An offset's "+" sent unencoded arrives as a space: read as meant,
		// here and in the audit log's from= and to=.
		var off struct {
			From time.Time `json:"from"`
		}
		e.must(http.StatusOK, "GET", "/tenants/"+a.ID+"/usage?from="+day+"T05:00:00+05:00&to="+tomorrow+"T00:00:00%2B00:00", nil).decode(t, &off)
		if off.From.Format(time.RFC3339) != day+"T00:00:00Z" {
			t.Errorf("from with an unencoded +05:00 offset read as %s", off.From)
		}
		e.must(http.StatusOK, "GET", "/audit_events?tenant_id="+a.ID+"&from="+day+"T05:00:00+05:00", nil)
		e.must(http.StatusNotFound, "GET", "/tenants/tnt_01JUNKJUNKJUNKJUNKJUNKJUNK/usage", nil)
		if r := e.call("GET", "/tenants/"+a.ID+"/usage", nil, "Authorization", "Bearer nope"); r.status != http.StatusUnauthorized {
			t.Fatalf("unauthenticated usage: %d", r.status)
		}
		if r := e.call("GET", "/usage/export", nil, "Authorization", ""); r.status != http.StatusUnauthorized {
			t.Fatalf("unauthenticated export: %d", r.status)
		}

		r := e.must(http.StatusOK, "GET", "/usage/export?from="+day+"&to="+tomorrow, nil)
		if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Fatalf("content type %q", ct)
		}
		tenants := map[string]int{}
		sc := bufio.NewScanner(bytes.NewReader(r.body))
		for sc.Scan() {
			var ev usage.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatal(err)
			}
			tenants[ev.TenantID]++
		}
		if tenants[a.ID] != 5 || tenants[b.ID] != 2 {
			t.Fatalf("export per tenant = %v, want A 5 and B 2", tenants)
		}
		again := e.must(http.StatusOK, "GET", "/usage/export?from="+day+"&to="+tomorrow, nil)
		if !bytes.Equal(r.body, again.body) {
			t.Fatal("re-export differs")
		}
		csv := e.must(http.StatusOK, "GET", "/usage/export?format=csv&from="+day+"&to="+tomorrow, nil)
		if lines := strings.Count(string(csv.body), "\n"); lines != 8 || !strings.HasPrefix(csv.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("csv: %d lines, %s", lines, csv.header.Get("Content-Type"))
		}
		e.must(http.StatusBadRequest, "GET", "/usage/export?format=xml", nil)
	})
}

// TestUsageExportCSVCells: the CSV export holds no text a customer chose,
// so a tenant named to break a row (commas, quotes; POST /tenants refuses
// control characters) or to run as a spreadsheet formula is
// neither in it nor able to shift a cell; and a deleted tenant's records
// stay in the export (its last invoice) while its report is a 404.
func TestUsageExportCSVCells(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		names := []string{"=cmd|' /C calc'!A0", "Acme, \"Inc\"; line two", "+1", "@SUM(A1)", "-2"}
		m := usage.New(e.st, nil, nil)
		ids := map[string]bool{}
		for i, name := range names {
			var tn struct{ ID string }
			e.must(http.StatusCreated, "POST", "/tenants", map[string]any{"name": name}).decode(t, &tn)
			ids[tn.ID] = true
			ctx := store.WithTenant(context.Background(), tn.ID)
			if err := e.st.InTx(ctx, func(ctx context.Context) error { return m.Login(ctx, "usr_1", fmt.Sprint("r", i)) }); err != nil {
				t.Fatal(err)
			}
			if err := m.Snapshot(context.Background(), tn.ID); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				e.must(http.StatusNoContent, "DELETE", "/tenants/"+tn.ID, nil)
				e.must(http.StatusNotFound, "GET", "/tenants/"+tn.ID+"/usage", nil)
			}
		}
		now := time.Now().UTC()
		window := "from=" + now.Add(-time.Hour).Format(time.RFC3339) + "&to=" + now.Add(time.Hour).Format(time.RFC3339)
		r := e.must(http.StatusOK, "GET", "/usage/export?format=csv&"+strings.ReplaceAll(window, "+", "%2B"), nil)
		for _, name := range names {
			if bytes.Contains(r.body, []byte(name)) {
				t.Errorf("the export holds the tenant name %q", name)
			}
		}
		rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		perTenant := map[string]int{}
		for _, row := range rows[1:] {
			if len(row) != len(usage.CSVHeader) {
				t.Fatalf("row of %d cells: %q", len(row), row)
			}
			for _, cell := range row {
				if cell != "" && strings.ContainsAny(cell[:1], "=+-@\t\r") {
					t.Errorf("cell %q starts like a formula", cell)
				}
			}
			perTenant[row[3]]++
		}
		// Each: a login, its user.active, two snapshots; the deleted one's too.
		for id := range ids {
			if perTenant[id] != 4 {
				t.Errorf("tenant %s has %d records in the export, want 4", id, perTenant[id])
			}
		}
	})
}
