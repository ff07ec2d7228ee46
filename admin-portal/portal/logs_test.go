package portal

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// seedLogs gives the tenant n audit rows an hour apart from base (actions
// alternating, actors pl_0…pl_4) and n sign-ins (every tenth failed).
func seedLogs(t *testing.T, h *harness, ctx context.Context, n int, base time.Time) {
	t.Helper()
	tenantID, _ := store.TenantFrom(ctx)
	for i := range n {
		if _, err := h.store.AppendAudit(ctx, store.AuditEvent{TS: base.Add(time.Duration(i) * time.Hour), Action: []string{"domain.added", "directory.created"}[i%2],
			Actor: store.Actor{Type: "tenant_admin", ID: fmt.Sprint("pl_", i%5)}, Resource: store.Resource{Type: "domain", ID: fmt.Sprint("row-", i)}}); err != nil {
			t.Fatal(err)
		}
		typ := store.SignInSucceeded
		if i%10 == 0 {
			typ = store.SignInFailed
		}
		data, _ := json.Marshal(map[string]any{"email": fmt.Sprintf("user%d@acme.example", i%7), "reason": fmt.Sprint("reason-", i)})
		if _, err := h.store.AppendEvent(context.Background(), store.Event{TenantID: tenantID, Type: typ, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
}

var rowID = regexp.MustCompile(`<tr data-id="([^"]+)"`)

// TestLogsFilterAndPageTheWholeLog: with more than 1000 rows, a filter
// finds the oldest ones, Older walks every page to the first row ever,
// Newer comes back, and the CSV export holds the whole filtered log.
func TestLogsFilterAndPageTheWholeLog(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	const n = 1200
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	seedLogs(t, h, ctx, n, base)
	// Another tenant's rows never show.
	globex := h.tenant("Globex", "globex.example")
	seedLogs(t, h, globex, 3, base)
	c := h.open(h.link(ctx, store.IntentAuditLogs))

	// Row 5 (hour 5 of day one) is far past the newest 1000.
	_, page := get(t, c, h.url+"/portal/logs?tab=audit&actor=pl_0&action=domain.added&from=2025-01-01&to=2025-01-01")
	if got := rowID.FindAllStringSubmatch(page, -1); len(got) != 3 { // hours 0, 10, 20
		t.Fatalf("%d rows of pl_0 adding domains on the first day, want 3:\n%s", len(got), page)
	}
	if body := tbody(page); !strings.Contains(body, "domain row-10") || strings.Contains(body, "directory.created") {
		t.Error("the filtered page holds the wrong rows")
	}
	// "type id" as shown in the table works as well as the id.
	if _, p2 := get(t, c, h.url+"/portal/logs?tab=audit&actor=tenant_admin+pl_0&action=domain.added&from=2025-01-01&to=2025-01-01"); len(rowID.FindAllString(p2, -1)) != 3 {
		t.Error("the actor as shown does not filter")
	}

	// Older, page after page, reaches the very first row; none twice.
	seen := map[string]bool{}
	next := "/portal/logs?tab=audit"
	var pages []string
	for next != "" {
		_, page := get(t, c, h.url+next)
		pages = append(pages, next)
		for _, m := range rowID.FindAllStringSubmatch(page, -1) {
			if seen[m[1]] {
				t.Fatalf("row %s on two pages", m[1])
			}
			seen[m[1]] = true
		}
		next = ""
		if m := regexp.MustCompile(`href="(/portal/logs\?[^"]*)" id="page-older"`).FindStringSubmatch(page); m != nil {
			next = html.UnescapeString(m[1])
		}
		if len(pages) > n/logPerPage+2 {
			t.Fatal("Older never ends")
		}
	}
	// The seeded rows, and the one that opening the link added.
	if len(seen) != n+1 {
		t.Fatalf("paging saw %d audit rows, want %d", len(seen), n+1)
	}
	// Newer from the second page is the first page again.
	_, first := get(t, c, h.url+pages[0])
	_, second := get(t, c, h.url+pages[1])
	m := regexp.MustCompile(`href="(/portal/logs\?[^"]*)" id="page-newer"`).FindStringSubmatch(second)
	if m == nil {
		t.Fatal("no Newer on the second page")
	}
	_, back := get(t, c, h.url+html.UnescapeString(m[1]))
	if fmt.Sprint(rowID.FindAllString(back, -1)) != fmt.Sprint(rowID.FindAllString(first, -1)) {
		t.Error("Newer from the second page is not the first page")
	}

	// Sign-ins: failures of one user over the whole log, and the CSV of a
	// filter holding all of it.
	_, page = get(t, c, h.url+"/portal/logs?tab=signins&actor=USER0@acme.example&action=failed")
	if got := len(rowID.FindAllString(page, -1)); got != n/70+1 && got != n/70 { // i%70 == 0
		t.Errorf("%d failures of user0", got)
	}
	if !strings.Contains(page, "reason-0") {
		t.Error("the oldest failure of user0 is missing")
	}
	resp, body := get(t, c, h.url+"/portal/logs?tab=signins&action=succeeded&format=csv")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CSV: %d", resp.StatusCode)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + n - n/10; len(recs) != want {
		t.Fatalf("CSV has %d lines, want %d (header and every success)", len(recs), want)
	}
	resp, body = get(t, c, h.url+"/portal/logs?tab=audit&format=csv")
	if recs, _ := csv.NewReader(strings.NewReader(body)).ReadAll(); resp.StatusCode != http.StatusOK || len(recs) != n+2 {
		t.Fatalf("audit CSV: %d, %d lines, want %d", resp.StatusCode, len(recs), n+2)
	}
	// A cursor from elsewhere starts over rather than failing.
	if resp, page := get(t, c, h.url+"/portal/logs?tab=audit&after=aud_unknown"); resp.StatusCode != http.StatusOK || len(rowID.FindAllString(page, -1)) != logPerPage {
		t.Errorf("unknown cursor: %d", resp.StatusCode)
	}
}

// tbody is the log table's rows.
func tbody(page string) string {
	i, j := strings.Index(page, "<tbody>"), strings.Index(page, "</tbody>")
	if i < 0 || j < i {
		return ""
	}
	return page[i:j]
}

// TestAuditActionSuggestionsAreWrittenOnes: what the admin does in the
// portal lands in the audit log under actions the action filter suggests,
// so that choosing a suggestion finds them.
func TestAuditActionSuggestionsAreWrittenOnes(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentSSO))
	_, page := get(t, c, h.url+"/portal/domains")
	if resp, body := post(t, c, h.url+"/portal/domains", url.Values{"csrf_token": {csrfOf(t, page)}, "domain": {"acme.test"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add domain = %d\n%s", resp.StatusCode, body)
	}
	_, page = get(t, c, h.url+"/portal/domains")
	del := regexp.MustCompile(`action="(/portal/domains/dom_[^/"]+/delete)"`).FindAllStringSubmatch(page, -1)
	for _, m := range del {
		if resp, body := post(t, c, h.url+m[1], url.Values{"csrf_token": {csrfOf(t, page)}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("remove domain = %d\n%s", resp.StatusCode, body)
		}
	}
	_, page = get(t, c, h.url+"/portal/sso/new")
	if resp, body := post(t, c, h.url+"/portal/sso/new", url.Values{"csrf_token": {csrfOf(t, page)}, "idp": {"okta"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create connection = %d\n%s", resp.StatusCode, body)
	}
	if resp, body := post(t, c, h.url+"/portal/signout", url.Values{"csrf_token": {csrfOf(t, page)}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign out = %d\n%s", resp.StatusCode, body)
	}

	_, page = get(t, h.open(h.link(ctx, store.IntentAuditLogs)), h.url+"/portal/logs?tab=audit")
	suggested := map[string]bool{}
	for _, m := range regexp.MustCompile(`<option value="([^"]+)">`).FindAllStringSubmatch(page, -1) {
		suggested[m[1]] = true
	}
	rows, _, err := h.store.AuditEvents(ctx, "", store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 6 {
		t.Fatalf("%d audit rows, want the session, the domain added and removed twice over, the connection, the sign-out", len(rows))
	}
	for _, r := range rows {
		if !suggested[r.Action] {
			t.Errorf("audit action %q is not among the filter's suggestions %v", r.Action, suggested)
		}
	}
}

// TestSignInLogNamesTheConnection: the sign-in log's page names the
// connection each sign-in went through, beside its id (which was all it
// showed); the CSV keeps the id.
func TestSignInLogNamesTheConnection(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	conn, err := h.reg.CreateConnection(ctx, "saml", "Acme Okta", connectionsSettingsNone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tenantID, _ := store.TenantFrom(ctx)
	data, _ := json.Marshal(map[string]any{"email": "alice@acme.example", "connection_id": conn.ID})
	if _, err := h.store.AppendEvent(context.Background(), store.Event{TenantID: tenantID, Type: store.SignInSucceeded, Data: data}); err != nil {
		t.Fatal(err)
	}
	c := h.open(h.link(ctx, store.IntentAuditLogs))
	_, page := get(t, c, h.url+"/portal/logs?tab=signins")
	if body := tbody(page); !strings.Contains(body, "Acme Okta") || !strings.Contains(body, conn.ID) {
		t.Errorf("the sign-in row does not name its connection:\n%s", body)
	}
	_, file := get(t, c, h.url+"/portal/logs?tab=signins&format=csv")
	recs, err := csv.NewReader(strings.NewReader(file)).ReadAll()
	if err != nil || len(recs) != 2 || recs[1][3] != conn.ID {
		t.Errorf("CSV %q (%v): want the connection's id as the target", recs, err)
	}
}

// TestLogsRefuseADateThatDoesNotParse: a from or to date that is not one
// is answered 400 with the form and the error beside that field, and no
// rows, rather than the whole log as if it were the range asked for; the
// CSV export is refused alike.
func TestLogsRefuseADateThatDoesNotParse(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	seedLogs(t, h, ctx, 3, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	c := h.open(h.link(ctx, store.IntentAuditLogs))
	for _, tc := range []struct {
		query, field, other string
	}{
		{"tab=audit&from=2025-13-01", "f-from-error", "f-to-error"},
		{"tab=signins&to=yesterday", "f-to-error", "f-from-error"},
		{"tab=audit&from=2025-01-01&to=2025-02-30", "f-to-error", "f-from-error"},
		{"tab=audit&from=01%2F02%2F2025&format=csv", "f-from-error", "f-to-error"},
	} {
		resp, page := get(t, c, h.url+"/portal/logs?"+tc.query)
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s, want 400 HTML", tc.query, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		if !strings.Contains(page, `id="`+tc.field+`"`) || !strings.Contains(page, "YYYY-MM-DD") || strings.Contains(page, `id="`+tc.other+`"`) {
			t.Errorf("%s: the error is not beside its field alone:\n%s", tc.query, page)
		}
		if n := len(rowID.FindAllString(page, -1)); n != 0 {
			t.Errorf("%s: %d rows shown", tc.query, n)
		}
	}
	// What the admin typed stays in the form.
	if _, page := get(t, c, h.url+"/portal/logs?tab=audit&from=2025-13-01"); !strings.Contains(page, `value="2025-13-01"`) {
		t.Error("the refused date is not kept in the form")
	}
	// Dates that parse filter as before.
	if resp, page := get(t, c, h.url+"/portal/logs?tab=audit&from=2025-01-01&to=2025-01-01"); resp.StatusCode != http.StatusOK || len(rowID.FindAllString(page, -1)) != 3 {
		t.Errorf("valid dates: %d, %d rows, want 200 and 3", resp.StatusCode, len(rowID.FindAllString(page, -1)))
	}
}

// TestSignInSearchStaysInTheTenant: the console's support desk reads
// across tenants; the portal's one search, the sign-in log by email,
// never does. Globex's admin searching an Acme user's email, or a
// reference of Acme's failure, finds nothing of Acme's, and the portal
// has no support page.
func TestSignInSearchStaysInTheTenant(t *testing.T) {
	h := newHarness(t)
	acme := h.tenant("Acme", "acme.example")
	data, _ := json.Marshal(map[string]any{"email": "alice@acme.example", "reason": "acme-only failure", "request_id": "ref-acme"})
	acmeID, _ := store.TenantFrom(acme)
	if _, err := h.store.AppendEvent(context.Background(), store.Event{TenantID: acmeID, Type: store.SignInFailed, Data: data}); err != nil {
		t.Fatal(err)
	}
	globex := h.tenant("Globex", "globex.example")
	// The same person signed in at Globex too (a contractor): that row is
	// Globex's own.
	globexID, _ := store.TenantFrom(globex)
	data, _ = json.Marshal(map[string]any{"email": "alice@acme.example", "reason": "globex-own failure"})
	if _, err := h.store.AppendEvent(context.Background(), store.Event{TenantID: globexID, Type: store.SignInFailed, Data: data}); err != nil {
		t.Fatal(err)
	}
	c := h.open(h.link(globex, store.IntentAuditLogs))
	for _, tc := range []struct {
		q    string
		rows int
	}{{"alice@acme.example", 1}, {"ALICE@acme.example", 1}, {"ref-acme", 0}} {
		resp, page := get(t, c, h.url+"/portal/logs?tab=signins&actor="+url.QueryEscape(tc.q))
		if resp.StatusCode != http.StatusOK || len(rowID.FindAllString(page, -1)) != tc.rows || strings.Contains(page, "acme-only") {
			t.Errorf("Globex searching %q: %d, %d rows, want %d of its own", tc.q, resp.StatusCode, len(rowID.FindAllString(page, -1)), tc.rows)
		}
	}
	if resp, _ := get(t, c, h.url+"/portal/support?q=ref-acme"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/portal/support: %d, want 404", resp.StatusCode)
	}
}
