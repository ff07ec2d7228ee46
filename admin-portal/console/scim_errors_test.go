package console_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestTenantPageShowsDirectoriesLastSCIMError: an operator sees, beside
// each directory, the newest error its IdP was answered; another tenant's
// page shows none of it.
func TestTenantPageShowsDirectoriesLastSCIMError(t *testing.T) {
	h := start(t, "")
	s := h.signIn(t)
	page := func(tenantID string) string {
		t.Helper()
		resp, b := h.get(t, s.token, "/console/tenants/"+tenantID)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("tenant page: %d", resp.StatusCode)
		}
		return b
	}
	acme, globex := newTenant(t, h.db, "Acme"), newTenant(t, h.db, "Globex")
	dir, err := h.db.CreateDirectory(storeCtx(acme.ID), store.Directory{Name: "Okta", TokenHash: []byte("h")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.CreateDirectory(storeCtx(globex.ID), store.Directory{Name: "Entra", TokenHash: []byte("h2")}); err != nil {
		t.Fatal(err)
	}
	if got := page(acme.ID); !strings.Contains(got, `<td class="scim-error"><span class="muted">none</span>`) {
		t.Errorf("a directory without errors:\n%s", got)
	}
	for _, detail := range []string{"older error", "userName is required"} {
		if err := h.db.RecordSCIMError(storeCtx(acme.ID), store.SCIMError{DirectoryID: dir.ID, Status: 400, ScimType: "invalidValue",
			Detail: detail, Method: "POST", Path: "/scim/v2/" + dir.ID + "/Users"}); err != nil {
			t.Fatal(err)
		}
	}
	got := page(acme.ID)
	for _, want := range []string{"400 invalidValue", "userName is required", "/scim/v2/" + dir.ID + "/Users", "2 errors kept"} {
		if !strings.Contains(got, want) {
			t.Errorf("Acme's page lacks %q", want)
		}
	}
	if strings.Contains(got, "older error") {
		t.Error("Acme's page shows an older error, not the newest")
	}
	if got := page(globex.ID); strings.Contains(got, "userName is required") || strings.Contains(got, dir.ID) {
		t.Error("Globex's page shows Acme's directory error")
	}
}
