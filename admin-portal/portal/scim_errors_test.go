package portal

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestDirectoryPageShowsItsLastSCIMErrors: the directory page lists the
// errors kept for it, and only its own: another directory's and another
// tenant's stay out, and another tenant's directory page is 404.
func TestDirectoryPageShowsItsLastSCIMErrors(t *testing.T) {
	h := newHarness(t)
	acme := h.tenant("Acme", "acme.example")
	globex := h.tenant("Globex", "globex.example")
	mine, err := h.store.CreateDirectory(acme, store.Directory{Name: "Okta", TokenHash: []byte("h")})
	if err != nil {
		t.Fatal(err)
	}
	sibling, err := h.store.CreateDirectory(acme, store.Directory{Name: "Entra", TokenHash: []byte("h2")})
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := h.store.CreateDirectory(globex, store.Directory{Name: "Globex Okta", TokenHash: []byte("h3")})
	if err != nil {
		t.Fatal(err)
	}
	record := func(ctx context.Context, dir, detail string) {
		t.Helper()
		if err := h.store.RecordSCIMError(ctx, store.SCIMError{DirectoryID: dir, Status: 400, ScimType: "invalidValue", Detail: detail,
			Method: "POST", Path: "/scim/v2/" + dir + "/Users"}); err != nil {
			t.Fatal(err)
		}
	}
	record(acme, mine.ID, "userName is required")
	record(acme, sibling.ID, "sibling's error")
	record(globex, theirs.ID, "Globex's error")

	c := h.open(h.link(acme, store.IntentDSync))
	resp, page := get(t, c, h.url+"/portal/dsync/"+mine.ID)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("directory page: %d", resp.StatusCode)
	}
	for _, want := range []string{`id="scim-errors"`, "userName is required", "invalidValue", "POST /scim/v2/" + mine.ID + "/Users"} {
		if !strings.Contains(page, want) {
			t.Errorf("directory page lacks %q", want)
		}
	}
	for _, other := range []string{"sibling&#39;s error", "sibling's error", "Globex"} {
		if strings.Contains(page, other) {
			t.Errorf("directory page shows %q", other)
		}
	}
	if _, page := get(t, c, h.url+"/portal/dsync/"+sibling.ID); strings.Contains(page, "userName is required") || !strings.Contains(page, "sibling") {
		t.Error("the sibling directory's page shows the wrong errors")
	}
	if resp, page := get(t, c, h.url+"/portal/dsync/"+theirs.ID); resp.StatusCode != http.StatusNotFound || strings.Contains(page, "Globex&#39;s error") {
		t.Errorf("another tenant's directory page = %d", resp.StatusCode)
	}
}
