package adminportal_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// TestLogoutDeadLetters: a tenant's dead back-channel logouts are listed
// and redelivered through its own routes only; another tenant's route
// neither sees nor touches them.
func TestLogoutDeadLetters(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		acme := e.createTenant(map[string]any{"name": "Acme"})
		globex := e.createTenant(map[string]any{"name": "Globex"})
		app, err := e.st.CreateApplication(ctx, store.Application{Name: "CRM", Public: true,
			RedirectURIs: []string{"https://crm.example/cb"}, BackchannelLogoutURI: "https://crm.example/bcl"})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.EnqueueLogouts(ctx, []store.Logout{
			{SessionID: "ses_a1", TenantID: acme.ID, UserID: "usr_a", ApplicationID: app.ID},
			{SessionID: "ses_a2", TenantID: acme.ID, UserID: "usr_a", ApplicationID: app.ID},
			{SessionID: "ses_g1", TenantID: globex.ID, UserID: "usr_g", ApplicationID: app.ID},
		}); err != nil {
			t.Fatal(err)
		}
		claimed, err := e.st.ClaimLogouts(ctx, time.Now().Add(time.Second), time.Minute, 10)
		if err != nil || len(claimed) != 3 {
			t.Fatalf("claim: %d, %v", len(claimed), err)
		}
		var deadID string
		for _, l := range claimed {
			res := store.DeliveryResult{Status: store.DeliverySucceeded, StatusCode: 200}
			if l.SessionID != "ses_a2" {
				res = store.DeliveryResult{Status: store.DeliveryDead, StatusCode: 500, Error: "HTTP 500"}
			}
			if l.SessionID == "ses_a1" {
				deadID = l.ID
			}
			if err := e.st.RecordLogout(ctx, l.ID, res); err != nil {
				t.Fatal(err)
			}
		}

		type logoutList struct {
			Data []struct {
				ID, TenantID, Status string
				LastStatusCode       *int `json:"last_status_code"`
			}
		}
		var dead logoutList
		e.must(http.StatusOK, "GET", "/tenants/"+acme.ID+"/logouts?status=dead", nil).decode(t, &dead)
		if len(dead.Data) != 1 || dead.Data[0].ID != deadID || dead.Data[0].LastStatusCode == nil || *dead.Data[0].LastStatusCode != 500 {
			t.Fatalf("acme's dead letters: %+v", dead)
		}
		var all logoutList
		e.must(http.StatusOK, "GET", "/tenants/"+acme.ID+"/logouts?application_id="+app.ID, nil).decode(t, &all)
		if len(all.Data) != 2 {
			t.Fatalf("acme's logouts: %+v", all)
		}
		var other logoutList
		e.must(http.StatusOK, "GET", "/tenants/"+globex.ID+"/logouts?status=dead", nil).decode(t, &other)
		if len(other.Data) != 1 || other.Data[0].ID == deadID {
			t.Fatalf("globex's dead letters: %+v", other)
		}

		// Another tenant's route: 404, nothing queued again.
		for _, path := range []string{
			"/tenants/" + globex.ID + "/logouts/" + deadID + "/redeliver",
			"/tenants/" + acme.ID + "/logouts/blo_unknown/redeliver",
			"/tenants/" + acme.ID + "/logouts/not-a-logout/redeliver",
		} {
			if r := e.call("POST", path, nil); r.status != http.StatusNotFound || r.err(t).Code != "not_found" {
				t.Fatalf("POST %s: %d %s", path, r.status, r.body)
			}
		}
		if due, err := e.st.DueLogouts(ctx, time.Now().Add(time.Hour)); err != nil || due {
			t.Fatalf("a refused redeliver queued a logout: %v, %v", due, err)
		}
		if r := e.call("GET", "/tenants/"+acme.ID+"/logouts", nil, "Authorization", "Bearer idb_wrong"); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong key: %d", r.status)
		}

		var again struct{ ID, Status string }
		e.must(http.StatusOK, "POST", "/tenants/"+acme.ID+"/logouts/"+deadID+"/redeliver", nil).decode(t, &again)
		if again.ID != deadID || again.Status != "pending" {
			t.Fatalf("redelivered: %+v", again)
		}
		if due, err := e.st.DueLogouts(ctx, time.Now().Add(time.Second)); err != nil || !due {
			t.Fatalf("the redelivered logout is not due: %v, %v", due, err)
		}
		if rows := e.audits(acme.ID, "logout.redelivered"); len(rows) != 1 || rows[0].Resource.ID != deadID {
			t.Fatalf("audit rows: %+v", rows)
		}
		if r := e.call("POST", "/tenants/"+acme.ID+"/logouts/"+deadID+"/redeliver", nil); r.status != http.StatusConflict {
			t.Fatalf("redeliver a pending logout: %d %s", r.status, r.body)
		}
		if r := e.call("GET", "/tenants/"+acme.ID+"/logouts?status=lost", nil); r.status != http.StatusBadRequest {
			t.Fatalf("bad status filter: %d", r.status)
		}
	})
}
