package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestDirectoryFormKeepsTheInputOnAnError: a directory refused for its
// name comes back with what the admin typed and the identity provider
// they chose, not a blank form.
func TestDirectoryFormKeepsTheInputOnAnError(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentDSync))
	_, page := get(t, c, h.url+"/portal/dsync")
	long := strings.Repeat("x", 201)
	resp, body := post(t, c, h.url+"/portal/dsync", url.Values{"csrf_token": {csrfOf(t, page)}, "name": {long}, "provider": {"entra"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="dir-name-error"`) {
		t.Fatalf("a 201-character name = %d, want 422 with the field's error\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, `value="`+long+`"`) {
		t.Errorf("the name typed is gone from the form")
	}
	if !strings.Contains(body, `<option value="entra" selected>`) {
		t.Errorf("the identity provider chosen is not selected any more:\n%s", body)
	}
}
