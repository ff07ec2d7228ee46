package adminportal_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPortalLinks(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		tn := e.createTenant(map[string]any{"name": "Acme"})
		var out struct {
			URL       string    `json:"url"`
			ExpiresAt time.Time `json:"expires_at"`
		}
		r := e.must(http.StatusCreated, http.MethodPost, "/portal_links", map[string]any{"tenant_id": tn.ID, "intent": "sso", "return_url": "https://app.example/settings/sso"})
		r.decode(t, &out)
		if !strings.HasPrefix(out.URL, "https://id.example/portal/link/idb_pl_") {
			t.Errorf("url %q", out.URL)
		}
		if d := time.Until(out.ExpiresAt); d > 5*time.Minute || d < 4*time.Minute {
			t.Errorf("expires_at %v is not five minutes away", out.ExpiresAt)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Error("a link answer may be cached")
		}
		if a := e.audits(tn.ID, "portal_link.created"); len(a) != 1 || strings.Contains(string(a[0].Context), "idb_pl_") {
			t.Errorf("audit rows %+v", a)
		}

		for _, tc := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"tenant_id": tn.ID, "intent": "everything"}, "intent"},
			{map[string]any{"tenant_id": tn.ID, "intent": "dsync", "return_url": "http://app.example/"}, "return_url"},
			{map[string]any{"tenant_id": "acme", "intent": "sso"}, "tenant_id"},
		} {
			r := e.must(http.StatusBadRequest, http.MethodPost, "/portal_links", tc.body)
			if got := r.err(t); got.Field != tc.field {
				t.Errorf("%v: error %+v, want field %s", tc.body, got, tc.field)
			}
		}
		e.must(http.StatusNotFound, http.MethodPost, "/portal_links", map[string]any{"tenant_id": "tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV", "intent": "sso"})
		if r := e.call(http.MethodPost, "/portal_links", map[string]any{"tenant_id": tn.ID, "intent": "sso"}, "Authorization", ""); r.status != http.StatusUnauthorized {
			t.Errorf("without a key: %d", r.status)
		}
	})
}

// TestPortalLinkReturnURLRefusals: each refused return_url is a 400 on the
// field whose message names what is wrong with it.
func TestPortalLinkReturnURLRefusals(t *testing.T) {
	tests := []struct {
		returnURL, message string
	}{
		{"https://app.example/" + strings.Repeat("a", 2049), "at most 2048 characters"},
		{"//app.example/back", "absolute"},
		{"/settings", "absolute"},
		{"javascript:alert(1)", "absolute"},
		{"https://user:pw@app.example/", "credentials"},
		{"http://app.example/back", "https"},
		{"ftp://app.example/back", "https"},
	}
	eachBackend(t, func(t *testing.T, e *env) {
		tn := e.createTenant(map[string]any{"name": "Acme"})
		for _, tt := range tests {
			r := e.must(http.StatusBadRequest, http.MethodPost, "/portal_links", map[string]any{"tenant_id": tn.ID, "intent": "sso", "return_url": tt.returnURL})
			if got := r.err(t); got.Field != "return_url" || !strings.Contains(got.Message, tt.message) {
				t.Errorf("%.40s: %+v, want a message saying %q", tt.returnURL, got, tt.message)
			}
		}
	})
}
