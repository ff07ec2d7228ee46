package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/slo"
	"github.com/idbroker/idbroker/store"
)

// TestTenantPageShowsServiceLevels: a tenant's page shows its measured
// service levels against its tier's targets, and another tenant's page
// none of them.
func TestTenantPageShowsServiceLevels(t *testing.T) {
	h := start(t, "")
	ctx := context.Background()
	s := h.signIn(t)
	acme, err := h.db.CreateTenant(ctx, store.Tenant{Name: "Acme", Tier: store.TierEnterprise})
	if err != nil {
		t.Fatal(err)
	}
	other := newTenant(t, h.db, "Other")
	rec, err := slo.New(slo.Config{Store: h.db, Node: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rec.Observe(acme.ID, slo.SignIn, http.StatusFound, 80*time.Millisecond)
	}
	rec.Observe(acme.ID, slo.SignIn, http.StatusBadGateway, 2*time.Second)
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	page := func(id string) string {
		t.Helper()
		resp, b := h.get(t, s.token, "/console/tenants/"+id)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET tenant page: %d", resp.StatusCode)
		}
		return b
	}
	body := page(acme.ID)
	_, table, _ := strings.Cut(body, `<table id="slo">`)
	table, _, _ = strings.Cut(table, "</table>")
	if !contains(table, "p99 ≤ 250 ms, 99.95 %", "<td>Sign-in</td><td>1h</td>", "2500 ms", "75 %", "no requests") {
		t.Fatalf("service levels of Acme:\n%s", table)
	}
	if body := page(other.ID); !contains(body, `<table id="slo">`, "p99 ≤ 1500 ms, 99.5 %") || strings.Contains(body, "2500 ms") {
		t.Fatalf("another tenant's page shows Acme's figures:\n%s", body)
	}
}
