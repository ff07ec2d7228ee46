package console_test

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/idbroker/idbroker/admin-portal/console"
	"github.com/idbroker/idbroker/internal/browsertest"
	"github.com/idbroker/idbroker/store"
)

// operatorSession signs the dev operator in by the store and returns the
// session cookie's value.
func operatorSession(t *testing.T, h *harness) string {
	t.Helper()
	return h.signIn(t).token
}

// seedAudit gives the tenant n audit rows an hour apart from base (actions
// alternating, actors key_0…key_4), written by the store directly.
func seedAudit(t *testing.T, h *harness, tenantID string, n int, base time.Time) {
	t.Helper()
	ctx := storeCtx(tenantID)
	for i := range n {
		if _, err := h.db.AppendAudit(ctx, store.AuditEvent{TS: base.Add(time.Duration(i) * time.Hour),
			Action: []string{"domain.added", "directory.created"}[i%2],
			Actor:  store.Actor{Type: "operator", ID: fmt.Sprint("key_", i%5)}, Resource: store.Resource{Type: "domain", ID: fmt.Sprint("row-", i)}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditPageFiltersAndPagesTheWholeChainInBrowser: with more than 1000
// rows, the console's filters find the oldest ones, Older walks every row
// once to the first, Newer comes back, the CSV export holds the whole
// filtered chain, and another tenant's rows and cursors reach nothing.
func TestAuditPageFiltersAndPagesTheWholeChainInBrowser(t *testing.T) {
	h := start(t, "")
	acme, globex := newTenant(t, h.db, "Acme"), newTenant(t, h.db, "Globex")
	const n = 1100
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	seedAudit(t, h, acme.ID, n, base)
	seedAudit(t, h, globex.ID, 3, base)
	tok := operatorSession(t, h)

	shots := t.TempDir()
	tab := browsertest.NewTab(t, browsertest.New(t))
	fail := func(what string, err error) {
		t.Helper()
		t.Fatalf("%s: %v (screenshot %s)", what, err, browsertest.Screenshot(t, tab, shots, "audit.png"))
	}
	if _, err := chromedp.Call(tab, network.SetCookie, network.SetCookieParams{Name: console.SessionCookie, Value: tok, URL: h.url + "/console"}); err != nil {
		t.Fatal(err)
	}
	rowIDs := func() []string {
		t.Helper()
		ids, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`[...document.querySelectorAll("tr[data-id]")].map(r => r.dataset.id)`))
		if err != nil {
			fail("read rows", err)
		}
		return ids
	}

	// Key_0 adding domains on the first day: hours 0, 10 and 20, the
	// oldest rows of the chain.
	if err := browsertest.Do(tab,
		chromedp.Navigate(h.url+"/console/audit"),
		chromedp.SendKeys(chromedp.CSS("#tenant_id"), acme.ID),
		chromedp.SendKeys(chromedp.CSS("#actor"), "operator key_0"),
		chromedp.SendKeys(chromedp.CSS("#action"), "domain.added"),
		chromedp.SetValue(chromedp.CSS("#from"), "2025-01-01"),
		chromedp.SetValue(chromedp.CSS("#to"), "2025-01-01"),
		chromedp.Submit(chromedp.CSS("#action")),
		// Only the answer has the tenant in the value attribute.
		chromedp.WaitVisible(chromedp.CSS(`#tenant_id[value="`+acme.ID+`"]`)),
	); err != nil {
		fail("filter", err)
	}
	if ids := rowIDs(); len(ids) != 3 {
		fail("filtered rows", fmt.Errorf("%d rows, want 3", len(ids)))
	}
	body, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("tbody")))
	if err != nil || !strings.Contains(body, "row-10") || strings.Contains(body, "directory.created") || strings.Contains(body, "key_1") {
		fail("filtered rows", errors.Join(err, errors.New("wrong rows: "+body)))
	}

	// Older, page after page, reaches the first row; none twice.
	seen := map[string]bool{}
	var pages [][]string
	next := h.url + "/console/audit?tenant_id=" + acme.ID
	for next != "" {
		if err := browsertest.Do(tab, chromedp.Navigate(next), chromedp.WaitReady(chromedp.CSS("tbody"))); err != nil {
			fail("older", err)
		}
		ids := rowIDs()
		for _, id := range ids {
			if seen[id] {
				fail("older", errors.New("row "+id+" on two pages"))
			}
			seen[id] = true
		}
		pages = append(pages, ids)
		next = ""
		if href, err := chromedp.Run(tab, chromedp.Evaluate[string](`(document.querySelector("#page-older") || {}).href || ""`)); err != nil {
			fail("older link", err)
		} else {
			next = href
		}
	}
	if len(seen) != n || len(pages) != (n+49)/50 {
		t.Fatalf("walked %d rows in %d pages, want %d", len(seen), len(pages), n)
	}
	// Newer, clicked, shows the page before the last again.
	prev := pages[len(pages)-2]
	if err := browsertest.Do(tab,
		chromedp.Click(chromedp.CSS("#page-newer")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-id="`+prev[0]+`"]`)),
	); err != nil {
		fail("newer", err)
	}
	if ids := rowIDs(); strings.Join(ids, ",") != strings.Join(prev, ",") {
		fail("newer", errors.New("not the page before"))
	}

	// Another tenant's cursor is no way in: the page starts over at
	// Acme's newest rows.
	gRows, _ := h.db.AuditLog(storeCtx(globex.ID), store.LogQuery{})
	if err := browsertest.Do(tab,
		chromedp.Navigate(h.url+"/console/audit?tenant_id="+acme.ID+"&after="+gRows.Rows[0].ID),
		chromedp.WaitReady(chromedp.CSS("tbody")),
	); err != nil {
		fail("foreign cursor", err)
	}
	if ids := rowIDs(); strings.Join(ids, ",") != strings.Join(pages[0], ",") {
		fail("foreign cursor", errors.New("not Acme's newest page"))
	}
	t.Logf("screenshot: %s", browsertest.Screenshot(t, tab, shots, "audit.png"))

	// The export: every directory.created row of Acme, the oldest included.
	resp, b := h.get(t, tok, "/console/audit?tenant_id="+acme.ID+"&action=directory.created&format=csv")
	recs, err := csv.NewReader(strings.NewReader(b)).ReadAll()
	if err != nil || resp.StatusCode != http.StatusOK || len(recs) != n/2+1 || recs[len(recs)-1][7] != "row-1" {
		t.Fatalf("csv: %d, %d lines, %v", resp.StatusCode, len(recs), err)
	}
	for _, rec := range recs[1:] {
		if rec[5] != "directory.created" || len(rec[12]) != 64 {
			t.Fatalf("csv row %v", rec)
		}
	}
}

// TestDeletedTenantsAuditLogInConsole: the operator API answers 404 for a
// deleted tenant's audit log, as for its other objects; the console is
// where an operator still reads what happened before the delete, until
// the erasure.
func TestDeletedTenantsAuditLogInConsole(t *testing.T) {
	h := start(t, "")
	tok := operatorSession(t, h)
	tn := newTenant(t, h.db, "Acme")
	seedAudit(t, h, tn.ID, 3, time.Now().Add(-5*time.Hour))
	if _, err := h.db.SoftDeleteTenant(storeCtx(tn.ID)); err != nil {
		t.Fatal(err)
	}
	resp, body := h.get(t, tok, "/console/audit?tenant_id="+tn.ID)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "directory.created") {
		t.Errorf("console audit of a deleted tenant: %d\n%s", resp.StatusCode, body)
	}
}

// TestAuditPageRefusesADateThatDoesNotParse: a from or to date that is
// not one is answered 400 with the form and the error beside that field,
// and no rows, rather than the whole chain as if it were the range asked
// for; the CSV export is refused alike.
func TestAuditPageRefusesADateThatDoesNotParse(t *testing.T) {
	h := start(t, "")
	acme := newTenant(t, h.db, "Acme")
	seedAudit(t, h, acme.ID, 3, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	tok := operatorSession(t, h)
	rows := func(page string) int { return strings.Count(page, `<tr data-id="`) }
	for _, tc := range []struct {
		query, field, other string
	}{
		{"tenant_id=" + acme.ID + "&from=2025-13-01", "from-error", "to-error"},
		{"tenant_id=" + acme.ID + "&from=2025-01-01&to=yesterday", "to-error", "from-error"},
		{"tenant_id=" + acme.ID + "&to=2025-02-30&format=csv", "to-error", "from-error"},
		{"from=01%2F02%2F2025", "from-error", "to-error"}, // the operators' own trail
	} {
		resp, page := h.get(t, tok, "/console/audit?"+tc.query)
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s, want 400 HTML", tc.query, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		if !strings.Contains(page, `id="`+tc.field+`"`) || !strings.Contains(page, "YYYY-MM-DD") || strings.Contains(page, `id="`+tc.other+`"`) {
			t.Errorf("%s: the error is not beside its field alone:\n%s", tc.query, page)
		}
		if n := rows(page); n != 0 {
			t.Errorf("%s: %d rows shown", tc.query, n)
		}
	}
	if _, page := h.get(t, tok, "/console/audit?tenant_id="+acme.ID+"&from=2025-13-01"); !strings.Contains(page, `value="2025-13-01"`) {
		t.Error("the refused date is not kept in the form")
	}
	// Dates that parse filter as before.
	if resp, page := h.get(t, tok, "/console/audit?tenant_id="+acme.ID+"&from=2025-01-01&to=2025-01-01"); resp.StatusCode != http.StatusOK || rows(page) != 3 {
		t.Errorf("valid dates: %d, %d rows, want 200 and 3", resp.StatusCode, rows(page))
	}
}
