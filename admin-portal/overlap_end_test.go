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

// TestEndApplicationSecretOverlap: DELETE /applications/{app}/secret/previous
// stops the secret a rotation kept working while the new one goes on
// working; it is idempotent (204 again, one vendor audit row); another
// application's overlap is untouched; unknown ids are 404, a wrong key 401.
func TestEndApplicationSecretOverlap(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		matches := func(id, secret string) bool {
			t.Helper()
			a, err := e.st.Application(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(secret))
			return a.SecretMatches(sum[:], time.Now())
		}
		var app, other, rot, otherRot appOut
		for _, a := range []*appOut{&app, &other} {
			e.must(http.StatusCreated, "POST", "/applications", map[string]any{
				"name": "App", "redirect_uris": []string{"https://app.example/cb"},
			}).decode(t, a)
		}
		e.must(http.StatusOK, "POST", "/applications/"+app.ID+"/secret", map[string]any{"previous_secret_expires_in": 3600}).decode(t, &rot)
		e.must(http.StatusOK, "POST", "/applications/"+other.ID+"/secret", map[string]any{"previous_secret_expires_in": 3600}).decode(t, &otherRot)

		for range 2 {
			if r := e.call("DELETE", "/applications/"+app.ID+"/secret/previous", nil); r.status != http.StatusNoContent {
				t.Fatalf("ending the overlap: %d %s", r.status, r.body)
			}
		}
		if matches(app.ID, *app.ClientSecret) || !matches(app.ID, *rot.ClientSecret) {
			t.Error("after ending the overlap the old secret should stop and the new one work")
		}
		if got := e.must(http.StatusOK, "GET", "/applications/"+app.ID, nil); !strings.Contains(string(got.body), `"previous_secret_expires_at":null`) {
			t.Errorf("GET after ending the overlap: %s", got.body)
		}
		if !matches(other.ID, *other.ClientSecret) || !matches(other.ID, *otherRot.ClientSecret) {
			t.Error("another application's overlap ended too")
		}
		for _, id := range []string{"app_01KBX6A1B2C3D4E5F6G7H8J9KM", "dir_01KBX6A1B2C3D4E5F6G7H8J9KM"} {
			if r := e.call("DELETE", "/applications/"+id+"/secret/previous", nil); r.status != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", id, r.status)
			}
		}
		if r := e.call("DELETE", "/applications/"+other.ID+"/secret/previous", nil, "Authorization", "Bearer idb_nope"); r.status != http.StatusUnauthorized {
			t.Errorf("wrong API key: %d, want 401", r.status)
		}
		if !matches(other.ID, *other.ClientSecret) {
			t.Error("a refused call ended the overlap")
		}

		rows, _, err := e.st.OperatorAudit(ctx, "", store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, row := range rows {
			if row.Action == "application.previous_secret_revoked" {
				n++
				if row.Resource.ID != app.ID || row.Actor.ID != e.keyID {
					t.Errorf("row %+v", row)
				}
			}
		}
		if n != 1 {
			t.Errorf("%d application.previous_secret_revoked rows, want 1 (the second call ended nothing)", n)
		}
	})
}

// TestEndDirectoryTokenOverlap: DELETE /directories/{dir}/token/previous
// stops the SCIM token a rotation kept working (401 at once) and leaves the
// new one working; idempotent; another tenant's directory keeps its
// overlap; the row goes to the directory's tenant's trail only.
func TestEndDirectoryTokenOverlap(t *testing.T) {
	eachSCIMBackend(t, func(t *testing.T, e *env) {
		ta := e.createTenant(map[string]any{"name": "Acme"})
		tb := e.createTenant(map[string]any{"name": "Globex"})
		var d, other, rot, otherRot directoryOut
		e.must(http.StatusCreated, "POST", "/tenants/"+ta.ID+"/directories", map[string]any{"name": "Okta"}).decode(t, &d)
		e.must(http.StatusCreated, "POST", "/tenants/"+tb.ID+"/directories", map[string]any{"name": "Entra"}).decode(t, &other)
		old, otherOld := *d.BearerToken, *other.BearerToken
		provision(t, d.SCIMBaseURL, old, scimUser("ann@acme.example", "Ann"))
		e.must(http.StatusOK, "POST", "/directories/"+d.ID+"/token", map[string]any{"previous_token_expires_in": 3600}).decode(t, &rot)
		e.must(http.StatusOK, "POST", "/directories/"+other.ID+"/token", map[string]any{"previous_token_expires_in": 3600}).decode(t, &otherRot)

		for range 2 {
			if r := e.call("DELETE", "/directories/"+d.ID+"/token/previous", nil); r.status != http.StatusNoContent {
				t.Fatalf("ending the overlap: %d %s", r.status, r.body)
			}
		}
		if st, _ := scimCall(t, d.SCIMBaseURL, old, "GET", "/Users", nil); st != http.StatusUnauthorized {
			t.Errorf("old token after ending the overlap: %d, want 401", st)
		}
		if st, _ := scimCall(t, d.SCIMBaseURL, old, "POST", "/Users", scimUser("bob@acme.example", "Bob")); st != http.StatusUnauthorized {
			t.Errorf("old token writing after ending the overlap: %d, want 401", st)
		}
		if st, _ := scimCall(t, d.SCIMBaseURL, *rot.BearerToken, "GET", "/Users", nil); st != http.StatusOK {
			t.Errorf("new token: %d", st)
		}
		if got := e.must(http.StatusOK, "GET", "/directories/"+d.ID, nil); strings.Contains(string(got.body), "previous_token_expires_at") {
			t.Errorf("GET after ending the overlap: %s", got.body)
		}
		for name, tok := range map[string]string{"old": otherOld, "new": *otherRot.BearerToken} {
			if st, _ := scimCall(t, other.SCIMBaseURL, tok, "GET", "/Users", nil); st != http.StatusOK {
				t.Errorf("Globex's %s token: %d, want 200 (its overlap is its own)", name, st)
			}
		}
		if r := e.call("DELETE", "/directories/dir_01KBX6A1B2C3D4E5F6G7H8J9KM/token/previous", nil); r.status != http.StatusNotFound {
			t.Errorf("unknown directory: %d, want 404", r.status)
		}
		if r := e.call("DELETE", "/directories/"+other.ID+"/token/previous", nil, "Authorization", "Bearer idb_sk_wrong"); r.status != http.StatusUnauthorized {
			t.Errorf("wrong API key: %d, want 401", r.status)
		}
		if n := len(e.audits(ta.ID, "directory.previous_token_revoked")); n != 1 {
			t.Errorf("%d directory.previous_token_revoked rows in Acme's trail, want 1", n)
		}
		if n := len(e.audits(tb.ID, "directory.previous_token_revoked")); n != 0 {
			t.Errorf("%d rows in Globex's trail, want 0", n)
		}
	})
}
