package httpserver_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/idbroker/idbroker/internal/httpserver"
)

// TestCookie: on https the cookie is __Host- prefixed, Secure and scoped
// to /, and only the prefixed name is read back; on http the bare name is
// written and read, scoped to its path.
func TestCookie(t *testing.T) {
	for _, tc := range []struct {
		secure     bool
		name, path string
	}{{false, "idb_x", "/x"}, {true, "__Host-idb_x", "/"}} {
		ck := httpserver.Cookie("idb_x", "v", "/x", 60, tc.secure, http.SameSiteLaxMode)
		if ck.Name != tc.name || ck.Path != tc.path || ck.Secure != tc.secure || !ck.HttpOnly || ck.MaxAge != 60 || ck.SameSite != http.SameSiteLaxMode {
			t.Errorf("secure %v: %+v", tc.secure, ck)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: "idb_x", Value: "planted"})
		got, err := httpserver.ReadCookie(r, "idb_x", tc.secure)
		if tc.secure != (err != nil) || !tc.secure && got.Value != "planted" {
			t.Errorf("secure %v: bare cookie read as %v, %v", tc.secure, got, err)
		}
		r.AddCookie(&http.Cookie{Name: "__Host-idb_x", Value: "real"})
		if got, err := httpserver.ReadCookie(r, "idb_x", true); tc.secure && (err != nil || got.Value != "real") {
			t.Errorf("prefixed cookie read as %v, %v", got, err)
		}
	}
}
