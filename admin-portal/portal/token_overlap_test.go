package portal

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// TestRotateKeepingTheOldToken: the portal's Rotate form can keep the
// current token working for an hour, so that the IT admin pastes the new
// one into the IdP without a failed push in between; the page says until
// when. The default stops it at once, an unknown choice changes nothing
// (400), and another tenant's portal session cannot rotate the directory.
func TestRotateKeepingTheOldToken(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentDSync))
	_, page := get(t, c, h.url+"/portal/dsync")
	resp, page := post(t, c, h.url+"/portal/dsync", url.Values{"csrf_token": {csrfOf(t, page)}, "name": {"Okta"}, "provider": {"okta"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create = %d\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, `name="keep_old"`) {
		t.Fatalf("the rotate form offers no choice for the current token:\n%s", page)
	}
	dirID := regexp.MustCompile(`/portal/dsync/(dir_[0-9A-Z]+)/token`).FindStringSubmatch(page)[1]
	tokenOf := func(page string) string {
		t.Helper()
		m := regexp.MustCompile(`value="(idb_scim_[^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no token shown:\n%s", page)
		}
		return m[1]
	}
	opens := func(tok string) bool {
		_, _, err := h.store.AuthenticateDirectory(context.Background(), dirID, secrets.HashToken(tok))
		return err == nil
	}
	first := tokenOf(page)
	rotate := h.url + "/portal/dsync/" + dirID + "/token"

	if resp, body := post(t, c, rotate, url.Values{"csrf_token": {csrfOf(t, page)}, "keep_old": {"31536000"}}); resp.StatusCode != http.StatusBadRequest || strings.Contains(body, "idb_scim_") {
		t.Fatalf("an unknown choice = %d, want 400 showing no token\n%s", resp.StatusCode, body)
	}
	if !opens(first) {
		t.Fatal("a refused rotation changed the token")
	}
	resp, page = post(t, c, rotate, url.Values{"csrf_token": {csrfOf(t, page)}, "keep_old": {"3600"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="previous-token"`) {
		t.Fatalf("rotate keeping the old token = %d\n%s", resp.StatusCode, page)
	}
	second := tokenOf(page)
	if !opens(first) || !opens(second) {
		t.Fatal("during the hour both tokens should open the directory")
	}
	// A later visit still says until when.
	if _, show := get(t, c, h.url+"/portal/dsync/"+dirID); !strings.Contains(show, `id="previous-token"`) {
		t.Errorf("the directory page does not say the previous token still works:\n%s", show)
	}

	// Another tenant's portal session: not found, nothing changed.
	other := h.tenant("Globex", "globex.example")
	oc := h.open(h.link(other, store.IntentDSync))
	_, opage := get(t, oc, h.url+"/portal/dsync")
	if resp, _ := post(t, oc, rotate, url.Values{"csrf_token": {csrfOf(t, opage)}, "keep_old": {"3600"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("Globex rotating Acme's directory = %d, want 404", resp.StatusCode)
	}
	if !opens(second) {
		t.Fatal("another tenant's request changed the token")
	}

	// The default: both older tokens stop at once.
	resp, page = post(t, c, rotate, url.Values{"csrf_token": {csrfOf(t, page)}})
	if resp.StatusCode != http.StatusOK || strings.Contains(page, `id="previous-token"`) {
		t.Fatalf("rotate at once = %d\n%s", resp.StatusCode, page)
	}
	if opens(first) || opens(second) || !opens(tokenOf(page)) {
		t.Fatal("a rotation at once left an old token working")
	}
}
