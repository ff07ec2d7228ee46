package scim_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestHeadAnswersAsGet: HEAD on every GET endpoint answers what GET does,
// status and headers, without a body, and a path served with GET lists
// HEAD in the Allow of its 405.
func TestHeadAnswersAsGet(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		uid := e.do("POST", "/Users", userBody("ann@acme.com", nil)).want(t, http.StatusCreated).str("id")
		gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng"}).want(t, http.StatusCreated).str("id")
		for _, path := range []string{
			"/ServiceProviderConfig", "/ResourceTypes", "/ResourceTypes/User", "/Schemas", "/Schemas/" + scim.SchemaUser,
			"/Users", "/Users?filter=userName%20eq%20%22ann@acme.com%22", "/Users/" + uid, "/Groups", "/Groups/" + gid,
			"/Users/usr_01JF000000000000000000NONE",
		} {
			get := e.do("GET", path, nil)
			head := e.do("HEAD", path, nil)
			if head.status != get.status || head.raw != "" {
				t.Errorf("HEAD %s: %d %q, GET answered %d", path, head.status, head.raw, get.status)
			}
			for _, h := range []string{"Content-Type", "ETag", "Location"} {
				if head.header.Get(h) != get.header.Get(h) {
					t.Errorf("HEAD %s: %s %q, GET's %q", path, h, head.header.Get(h), get.header.Get(h))
				}
			}
		}
		etag := e.do("GET", "/Users/"+uid, nil).header.Get("ETag")
		if r := e.do("HEAD", "/Users/"+uid, nil, "If-None-Match", etag); r.status != http.StatusNotModified {
			t.Errorf("HEAD with the current ETag: %d", r.status)
		}
		if r := e.doAs(e.dir, "", "HEAD", "/Users", nil); r.status != http.StatusUnauthorized {
			t.Errorf("HEAD without a token: %d", r.status)
		}
		for path, want := range map[string][]string{
			"/Users/" + uid: {"GET", "HEAD", "PUT", "PATCH", "DELETE"},
			"/Users":        {"GET", "HEAD", "POST"},
			"/Schemas":      {"GET", "HEAD"},
		} {
			method := "POST"
			if path == "/Users" {
				method = "DELETE"
			}
			r := e.do(method, path, nil).want(t, http.StatusMethodNotAllowed)
			allow := r.header.Get("Allow")
			for _, m := range want {
				if !strings.Contains(allow, m) {
					t.Errorf("405 on %s: Allow %q lacks %s", path, allow, m)
				}
			}
		}
	})
}
