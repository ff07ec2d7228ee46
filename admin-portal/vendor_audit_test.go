package adminportal_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestVendorChangesAudited: creating, changing and deleting an application
// and creating a webhook — the vendor's own objects, no tenant's — each
// append a row to the operators' trail naming the API key, with the
// redirect URIs before and after a change, and never a secret.
func TestVendorChangesAudited(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		var app appOut
		e.must(http.StatusCreated, "POST", "/applications", map[string]any{
			"name": "App", "redirect_uris": []string{"https://app.example/cb"},
		}).decode(t, &app)
		e.must(http.StatusOK, "PATCH", "/applications/"+app.ID, map[string]any{
			"redirect_uris": []string{"https://app.example/cb", "https://evil.example/cb"},
		})
		e.must(http.StatusNoContent, "DELETE", "/applications/"+app.ID, nil)
		var hook struct {
			ID     string `json:"id"`
			Secret string `json:"secret"`
		}
		e.must(http.StatusCreated, "POST", "/webhooks", map[string]any{
			"url": "https://hooks.example/services/T0/B0/s3cr3t", "events": []string{"connection.activated"},
		}).decode(t, &hook)

		rows, _, err := e.st.OperatorAudit(context.Background(), "", store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]store.OperatorAuditEvent{}
		for _, r := range rows {
			got[r.Action] = r
			raw := string(r.Context)
			if (app.ClientSecret != nil && strings.Contains(raw, *app.ClientSecret)) || strings.Contains(raw, hook.Secret) || strings.Contains(raw, "s3cr3t") {
				t.Errorf("%s row carries a secret: %s", r.Action, raw)
			}
		}
		for action, id := range map[string]string{"application.created": app.ID, "application.updated": app.ID,
			"application.deleted": app.ID, "webhook.created": hook.ID} {
			r, ok := got[action]
			if !ok {
				t.Errorf("no %s row in %v", action, rows)
				continue
			}
			if r.Actor.Type != "operator" || r.Actor.ID != e.keyID || r.Resource.ID != id || r.RequestID == "" {
				t.Errorf("%s row %+v, want key %s on %s", action, r, e.keyID, id)
			}
		}
		var upd struct{ From, To map[string]any }
		if err := json.Unmarshal(got["application.updated"].Context, &upd); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(toJSON(upd.To["redirect_uris"]), "evil.example") || strings.Contains(toJSON(upd.From["redirect_uris"]), "evil.example") {
			t.Errorf("application.updated context %s, want the redirect URIs before and after", got["application.updated"].Context)
		}
	})
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
