package adminportal_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// TestRotateApplicationSecret: POST /applications/{app}/secret mints a new
// secret shown once (no-store); with previous_secret_expires_in the old
// one is kept for that long, without it not at all; a public application
// has none to rotate (409), an unknown one is 404, a bad overlap 400; the
// vendor trail gets a row naming the key and no secret.
func TestRotateApplicationSecret(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var app, rot, again appOut
		e.must(http.StatusCreated, "POST", "/applications", map[string]any{
			"name": "App", "redirect_uris": []string{"https://app.example/cb"},
		}).decode(t, &app)
		old := *app.ClientSecret
		matches := func(secret string) bool {
			t.Helper()
			a, err := e.st.Application(ctx, app.ID)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(secret))
			return a.SecretMatches(sum[:], time.Now())
		}

		r := e.must(http.StatusOK, "POST", "/applications/"+app.ID+"/secret", map[string]any{"previous_secret_expires_in": 3600})
		r.decode(t, &rot)
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", r.header.Get("Cache-Control"))
		}
		if rot.ClientSecret == nil || *rot.ClientSecret == old || !strings.HasPrefix(*rot.ClientSecret, "idb_cs_") {
			t.Fatalf("rotation answer %s", r.body)
		}
		if !strings.Contains(string(r.body), `"previous_secret_expires_at":"`) {
			t.Errorf("rotation answer without previous_secret_expires_at: %s", r.body)
		}
		if !matches(old) || !matches(*rot.ClientSecret) {
			t.Fatal("during the overlap both secrets should work")
		}
		// Shown once: a read has neither secret, but the overlap's end.
		got := e.must(http.StatusOK, "GET", "/applications/"+app.ID, nil)
		if strings.Contains(string(got.body), "client_secret") || !strings.Contains(string(got.body), `"previous_secret_expires_at":"`) {
			t.Errorf("GET after rotation: %s", got.body)
		}

		// No body: the replaced secret stops at once, and so does the one
		// kept from before.
		e.must(http.StatusOK, "POST", "/applications/"+app.ID+"/secret", nil).decode(t, &again)
		if matches(old) || matches(*rot.ClientSecret) || !matches(*again.ClientSecret) {
			t.Fatal("a rotation without overlap left an old secret working")
		}
		if got := e.must(http.StatusOK, "GET", "/applications/"+app.ID, nil); !strings.Contains(string(got.body), `"previous_secret_expires_at":null`) {
			t.Errorf("GET after rotation without overlap: %s", got.body)
		}

		for _, bad := range []any{`{"previous_secret_expires_in": -1}`, `{"previous_secret_expires_in": 604801}`,
			`{"previous_secret_expires_in": "1h"}`, `{"expires_in": 5}`} {
			if r := e.call("POST", "/applications/"+app.ID+"/secret", bad); r.status != http.StatusBadRequest {
				t.Errorf("body %s: status %d, want 400: %s", bad, r.status, r.body)
			}
		}
		if r := e.call("POST", "/applications/"+app.ID+"/secret", "{}", "Content-Type", "text/plain"); r.status != http.StatusUnsupportedMediaType {
			t.Errorf("text/plain body: %d, want 415", r.status)
		}
		if !matches(*again.ClientSecret) {
			t.Fatal("a refused rotation changed the secret")
		}

		var spa appOut
		e.must(http.StatusCreated, "POST", "/applications", map[string]any{
			"name": "SPA", "public": true, "redirect_uris": []string{"https://spa.example/cb"},
		}).decode(t, &spa)
		if r := e.call("POST", "/applications/"+spa.ID+"/secret", nil); r.status != http.StatusConflict {
			t.Errorf("public application: %d, want 409: %s", r.status, r.body)
		}
		for _, id := range []string{"app_01KBX6A1B2C3D4E5F6G7H8J9KM", "tnt_01KBX6A1B2C3D4E5F6G7H8J9KM"} {
			if r := e.call("POST", "/applications/"+id+"/secret", nil); r.status != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", id, r.status)
			}
		}
		if r := e.call("POST", "/applications/"+app.ID+"/secret", nil, "Authorization", "Bearer idb_nope"); r.status != http.StatusUnauthorized {
			t.Errorf("wrong API key: %d, want 401", r.status)
		}

		rows, _, err := e.st.OperatorAudit(ctx, "", store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, row := range rows {
			if row.Action != "application.secret_rotated" {
				continue
			}
			n++
			if row.Actor.ID != e.keyID || row.Resource.ID != app.ID {
				t.Errorf("row %+v", row)
			}
			for _, s := range []string{old, *rot.ClientSecret, *again.ClientSecret} {
				if strings.Contains(string(row.Context), s) {
					t.Errorf("audit row carries a secret: %s", row.Context)
				}
			}
		}
		if n != 2 {
			t.Errorf("%d application.secret_rotated rows, want 2 (refused calls leave none)", n)
		}
	})
}
