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
	"sync"
	"testing"
	"time"

	adminportal "github.com/idbroker/idbroker/admin-portal"
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

// TestUsageExportDefaultEnd: an export without to ends at a settled
// boundary, the start of the last minute that began a minute or more
// ago, not at now. A billing job that exports "up to now" again and
// again, each window starting where the last one ended, then gets every
// record exactly once: one dated just before the end that commits after
// the export read (its transaction still open) is not missed for good,
// as it was with an end at now, and exports within the same minute end
// at the same instant and hold the same records. At the turn of the
// month the default is the whole month before, not an empty window.
func TestUsageExportDefaultEnd(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var apiNow, recordAt time.Time
			at := func(p *time.Time) func() time.Time {
				return func() time.Time { mu.Lock(); defer mu.Unlock(); return *p }
			}
			set := func(p *time.Time, v string) {
				tm, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				*p = tm
				mu.Unlock()
			}
			st := b.open(t)
			m := usage.New(st, at(&recordAt), nil)
			e := mountedEnv(t, st, adminportal.APIConfig{Now: at(&apiNow), Usage: m})
			var tn struct{ ID string }
			e.must(http.StatusCreated, "POST", "/tenants", map[string]any{"name": "Acme"}).decode(t, &tn)
			n := 0
			login := func(when string) {
				set(&recordAt, when)
				n++
				ctx := store.WithTenant(context.Background(), tn.ID)
				if err := st.InTx(ctx, func(ctx context.Context) error { return m.Login(ctx, "usr_1", fmt.Sprint("r", n)) }); err != nil {
					t.Fatal(err)
				}
			}
			// export reads the export at apiNow (from, when given), and
			// the times of its login records.
			export := func(now, from string) []string {
				t.Helper()
				set(&apiNow, now)
				q := ""
				if from != "" {
					q = "?from=" + from
				}
				var times []string
				sc := bufio.NewScanner(bytes.NewReader(e.must(http.StatusOK, "GET", "/usage/export"+q, nil).body))
				for sc.Scan() {
					var ev usage.Event
					if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
						t.Fatal(err)
					}
					if ev.TenantID == tn.ID && ev.EventName == "logins" {
						times = append(times, ev.Time)
					}
				}
				return times
			}
			want := func(what string, got []string, times ...string) {
				t.Helper()
				if strings.Join(got, " ") != strings.Join(times, " ") {
					t.Errorf("%s: logins at %v, want %v", what, got, times)
				}
			}

			login("2026-11-15T10:05:59.5Z")
			login("2026-11-15T10:06:00Z")
			login("2026-11-15T10:07:20Z") // the current minute
			// At 10:07:30 the export ends at 10:06:00 (10:06:30 is a minute
			// ago, in the minute that began at 10:06).
			first := export("2026-11-15T10:07:30Z", "")
			want("at 10:07:30", first, "2026-11-15T10:05:59.5Z")
			// Later in the same minute: the same end, the same records,
			// though one more was recorded meanwhile.
			login("2026-11-15T10:07:50Z")
			want("at 10:07:59", export("2026-11-15T10:07:59Z", ""), first...)
			// A sign-in dated 10:06:59 whose transaction commits only now,
			// after both exports read: an end at now (10:07:30) would have
			// left it out, and the next window, from there, too.
			login("2026-11-15T10:06:59Z")
			// The next window starts where the first ended, and holds
			// every record since, once.
			want("from 10:06 at 10:09:10", export("2026-11-15T10:09:10Z", "2026-11-15T10:06:00Z"),
				"2026-11-15T10:06:00Z", "2026-11-15T10:06:59Z", "2026-11-15T10:07:20Z", "2026-11-15T10:07:50Z")

			// The turn of the month: 30 s into December the export ends at
			// 23:59 on November 30th, 70 s in at midnight, and both read
			// November from its start.
			for _, now := range []string{"2026-12-01T00:00:30Z", "2026-12-01T00:01:10Z"} {
				want("at "+now, export(now, ""), "2026-11-15T10:05:59.5Z", "2026-11-15T10:06:00Z",
					"2026-11-15T10:06:59Z", "2026-11-15T10:07:20Z", "2026-11-15T10:07:50Z")
			}
			// from past the settled end is the client's mistake, named.
			set(&apiNow, "2026-11-15T10:07:30Z")
			if got := e.must(http.StatusBadRequest, "GET", "/usage/export?from=2026-11-15T10:06:30Z", nil).err(t); got.Field != "from" ||
				!strings.Contains(got.Message, "2026-11-15T10:06:00Z") {
				t.Errorf("from after the default end: %+v", got)
			}
			// The report still reads up to now.
			var rep struct {
				To     time.Time    `json:"to"`
				Totals usage.Totals `json:"totals"`
			}
			e.must(http.StatusOK, "GET", "/tenants/"+tn.ID+"/usage", nil).decode(t, &rep)
			if !rep.To.Equal(time.Date(2026, 11, 15, 10, 7, 30, 0, time.UTC)) || rep.Totals.Logins != 4 {
				t.Errorf("the report at 10:07:30: to %s, %d logins; want now and 4", rep.To, rep.Totals.Logins)
			}
			// Vendor-wide: without the operator's key, nothing.
			if r := e.call("GET", "/usage/export", nil, "Authorization", "Bearer nope"); r.status != http.StatusUnauthorized {
				t.Errorf("export with a bad key: %d", r.status)
			}
		})
	}
}
