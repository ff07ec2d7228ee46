package portal

import (
	"bytes"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/internal/secrets"
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

// TestRotatingTwiceFromOnePageIsRefused: the page that shows a rotated
// token answers the Rotate form, so reloading it sends that form again.
// That second rotation would stop the token the admin has just pasted
// into the IdP: it is refused (409, saying nothing changed) and the token
// keeps working. A Rotate from the page that shows the current token
// still rotates, as does a form without the page's mark.
func TestRotatingTwiceFromOnePageIsRefused(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentDSync))
	_, page := get(t, c, h.url+"/portal/dsync")
	resp, page := post(t, c, h.url+"/portal/dsync", url.Values{"csrf_token": {csrfOf(t, page)}, "name": {"Okta"}, "provider": {"okta"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create = %d\n%s", resp.StatusCode, page)
	}
	dirID := regexp.MustCompile(`/portal/dsync/(dir_[0-9A-Z]+)/token`).FindStringSubmatch(page)[1]
	rotate := h.url + "/portal/dsync/" + dirID + "/token"
	form := func(page string) url.Values {
		t.Helper()
		m := regexp.MustCompile(`name="replaces" value="([0-9a-f]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("the rotate form names no token:\n%s", page)
		}
		return url.Values{"csrf_token": {csrfOf(t, page)}, "idp": {"okta"}, "replaces": {m[1]}}
	}
	tokenOf := func(page string) string {
		t.Helper()
		m := regexp.MustCompile(`value="(idb_scim_[^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no token shown:\n%s", page)
		}
		return m[1]
	}
	current := func() []byte {
		t.Helper()
		d, err := h.store.Directory(ctx, dirID)
		if err != nil {
			t.Fatal(err)
		}
		return d.TokenHash
	}

	sent := form(page) // the form of the page that showed the first token
	resp, page = post(t, c, rotate, sent)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rotate = %d\n%s", resp.StatusCode, page)
	}
	pasted := tokenOf(page)
	// The browser's resubmit of the same form.
	resp, again := post(t, c, rotate, sent)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(again, "rotated already") || strings.Contains(again, "idb_scim_") {
		t.Fatalf("the same rotate form again = %d, want 409 showing no token\n%s", resp.StatusCode, again)
	}
	if !bytes.Equal(current(), secrets.HashToken(pasted)) {
		t.Fatal("the token the admin copied was replaced")
	}
	// From the page as it is now, Rotate works; so does a bare form.
	resp, page = post(t, c, rotate, form(again))
	if resp.StatusCode != http.StatusOK || tokenOf(page) == pasted {
		t.Fatalf("rotate from the current page = %d\n%s", resp.StatusCode, page)
	}
	if resp, page = post(t, c, rotate, url.Values{"csrf_token": {csrfOf(t, page)}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("rotate without the mark = %d\n%s", resp.StatusCode, page)
	}
	if !bytes.Equal(current(), secrets.HashToken(tokenOf(page))) {
		t.Fatal("the token shown is not the token in use")
	}
}

// TestDirectoryInstructionsPointAtTheToken: the instructions say where the
// token is: at the top of the page, once. They said "the token below",
// and below them there is none (nor anywhere on a later visit).
func TestDirectoryInstructionsPointAtTheToken(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	dir, err := h.store.CreateDirectory(ctx, store.Directory{Name: "Okta", TokenHash: secrets.HashToken("t")})
	if err != nil {
		t.Fatal(err)
	}
	c := h.open(h.link(ctx, store.IntentDSync))
	for _, idp := range []string{"okta", "entra", "scim"} {
		_, page := get(t, c, h.url+"/portal/dsync/"+dir.ID+"?idp="+idp)
		if strings.Contains(page, "token below") {
			t.Errorf("%s instructions point at a token below them", idp)
		}
	}
}

// TestCreatingTwiceFromOnePageIsRefused: the page that shows a new
// directory's token answers the create form, so reloading it sends that
// form again, which made a second directory (and a second token). The same
// form again is refused (409, nothing made); a new form, or another name,
// or a form without the page's mark, creates.
func TestCreatingTwiceFromOnePageIsRefused(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	c := h.open(h.link(ctx, store.IntentDSync))
	count := func() int {
		t.Helper()
		dirs, err := h.store.Directories(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(dirs)
	}
	formOf := func(page, name string) url.Values {
		t.Helper()
		m := regexp.MustCompile(`name="seen" value="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("the create form names no directory it saw:\n%s", page)
		}
		return url.Values{"csrf_token": {csrfOf(t, page)}, "name": {name}, "provider": {"okta"}, "seen": {m[1]}}
	}
	create := func(what string, form url.Values, want int) {
		t.Helper()
		resp, body := post(t, c, h.url+"/portal/dsync", form)
		if want == http.StatusOK && (resp.StatusCode != http.StatusOK || !strings.Contains(body, "idb_scim_")) ||
			want == http.StatusConflict && (resp.StatusCode != http.StatusConflict || !strings.Contains(body, "created already") || strings.Contains(body, "idb_scim_")) {
			t.Fatalf("%s = %d, want %d\n%s", what, resp.StatusCode, want, body)
		}
	}
	_, list := get(t, c, h.url+"/portal/dsync")
	sent := formOf(list, "Okta")
	create("create", sent, http.StatusOK)
	create("the same form again", sent, http.StatusConflict)
	if got := count(); got != 1 {
		t.Fatalf("%d directories, want 1", got)
	}
	// Another name from the same old page is a new directory; so is a
	// form without the mark.
	create("another name", formOf(list, "Entra"), http.StatusOK)
	create("a bare form", url.Values{"csrf_token": {csrfOf(t, list)}, "name": {"Okta"}}, http.StatusOK)
	// From a fresh page, "Okta" again is wanted, and made.
	_, list = get(t, c, h.url+"/portal/dsync")
	create("the same name from a fresh page", formOf(list, "Okta"), http.StatusOK)
	if got := count(); got != 4 {
		t.Fatalf("%d directories, want 4", got)
	}
}
