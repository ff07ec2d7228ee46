package adminportal_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

func storePage() store.Page { return store.Page{Limit: 100} }

// newSessionEnv is newEnv with a session store behind the API.
func newSessionEnv(t *testing.T, st *store.DB, ss sessions.Store) *env {
	t.Helper()
	return mountedEnv(t, st, adminportal.APIConfig{Sessions: ss})
}

func TestRevokeUserSessions(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ss := sessions.NewMemory()
			e := newSessionEnv(t, st, ss)
			bg := context.Background()
			user := func(tenant string) (string, string) {
				tn, err := st.CreateTenant(bg, store.Tenant{Name: tenant})
				if err != nil {
					t.Fatal(err)
				}
				u, err := st.CreateUser(store.WithTenant(bg, tn.ID), store.User{Email: "u@" + tenant + ".test", Active: true})
				if err != nil {
					t.Fatal(err)
				}
				for range 2 {
					if err := ss.Create(bg, sessions.Session{ID: store.NewID(store.PrefixSession), TenantID: tn.ID, UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
						t.Fatal(err)
					}
				}
				return tn.ID, u.ID
			}
			ta, ua := user("a")
			tb, ub := user("b")

			e.must(http.StatusNoContent, "POST", "/users/"+ua+"/revoke_sessions", nil)
			if left, _ := ss.ListUser(bg, ta, ua); len(left) != 0 {
				t.Fatalf("%d sessions left", len(left))
			}
			// Another tenant's user is untouched.
			if left, _ := ss.ListUser(bg, tb, ub); len(left) != 2 {
				t.Fatalf("cross-tenant: %d sessions of user b left, want 2", len(left))
			}
			if rows := e.audits(ta, "user.sessions_revoked"); len(rows) != 1 || rows[0].Resource.ID != ua {
				t.Fatalf("audit %+v", rows)
			} else if raw, _ := json.Marshal(rows[0]); strings.Contains(string(raw), "u@a.test") {
				// The audit chain cannot forget: a person erased later
				// would stay in it by name. It holds the user's id.
				t.Errorf("the audit row holds the user's email: %s", raw)
			}
			evs := e.events(ta, "session.revoked")
			if len(evs) != 1 {
				t.Fatalf("session.revoked events %+v, want one", evs)
			}
			var ev struct {
				UserID     string   `json:"user_id"`
				SessionIDs []string `json:"session_ids"`
				Reason     string   `json:"reason"`
			}
			if err := json.Unmarshal(evs[0].Data, &ev); err != nil || ev.UserID != ua || len(ev.SessionIDs) != 2 || ev.Reason != "operator" {
				t.Fatalf("session.revoked %s (%v), want user %s, its 2 session ids, reason operator", evs[0].Data, err, ua)
			}
			// Idempotent, and unknown or garbage ids are 404.
			e.must(http.StatusNoContent, "POST", "/users/"+ua+"/revoke_sessions", nil)
			for _, id := range []string{store.NewID(store.PrefixUser), "usr_x", "tnt_" + ua[4:], "%27--"} {
				if r := e.call("POST", "/users/"+id+"/revoke_sessions", nil); r.status != http.StatusNotFound {
					t.Errorf("%s: status %d", id, r.status)
				}
			}
			if r := e.call("POST", "/users/"+ub+"/revoke_sessions", nil, "Authorization", "Bearer idb_sk_wrong"); r.status != http.StatusUnauthorized {
				t.Fatalf("bad key: %d", r.status)
			}
			if left, _ := ss.ListUser(bg, tb, ub); len(left) != 2 {
				t.Fatal("unauthenticated call revoked sessions")
			}
		})
	}
}

// TestDeleteUser: an SSO user is erased with their IdP identities and
// sessions (a later sign-in is a new user), audited by id; a directory's
// user is 409 (its SCIM client owns it); another tenant's user, unknown
// ids and a bad key change nothing.
func TestDeleteUser(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ss := sessions.NewMemory()
			e := newSessionEnv(t, st, ss)
			bg := context.Background()
			ssoUser := func(tenant string) (context.Context, string, string, string) {
				t.Helper()
				tn, err := st.CreateTenant(bg, store.Tenant{Name: tenant})
				if err != nil {
					t.Fatal(err)
				}
				tctx := store.WithTenant(bg, tn.ID)
				conn, err := st.CreateConnection(tctx, store.Connection{Type: "oidc", Name: "idp", Status: store.ConnectionActive,
					Config: json.RawMessage(`{}`), Secrets: map[string]string{"client_secret": "s"}})
				if err != nil {
					t.Fatal(err)
				}
				u, err := st.UpsertSSOUser(tctx, conn.ID, "sub-1", store.User{Email: "u@" + tenant + ".test", Active: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := ss.Create(bg, sessions.Session{ID: store.NewID(store.PrefixSession), TenantID: tn.ID, UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				return tctx, tn.ID, conn.ID, u.ID
			}
			actx, ta, conn, ua := ssoUser("a")
			_, tb, _, ub := ssoUser("b")

			if r := e.call("DELETE", "/users/"+ua, nil, "Authorization", "Bearer idb_sk_wrong"); r.status != http.StatusUnauthorized {
				t.Fatalf("bad key: %d", r.status)
			}
			if _, err := st.User(actx, ua); err != nil {
				t.Fatalf("an unauthenticated call deleted the user: %v", err)
			}
			e.must(http.StatusNoContent, "DELETE", "/users/"+ua, nil)
			if _, err := st.User(actx, ua); err == nil {
				t.Fatal("the user is still there")
			}
			if left, _ := ss.ListUser(bg, ta, ua); len(left) != 0 {
				t.Fatalf("%d sessions left", len(left))
			}
			if rows := e.audits(ta, "user.deleted"); len(rows) != 1 || rows[0].Resource.ID != ua {
				t.Fatalf("audit %+v", rows)
			} else if raw, _ := json.Marshal(rows[0]); strings.Contains(string(raw), "u@a.test") {
				t.Errorf("the audit row holds the user's email: %s", raw)
			}
			// The identity went with the user: the same person signing in
			// again is someone new.
			again, err := st.UpsertSSOUser(actx, conn, "sub-1", store.User{Email: "u@a.test", Active: true})
			if err != nil || again.ID == ua {
				t.Fatalf("sign-in after deletion: %s, %v; want a new user", again.ID, err)
			}
			// Another tenant's user is untouched; gone and garbage ids are 404.
			if left, _ := ss.ListUser(bg, tb, ub); len(left) != 1 {
				t.Fatalf("cross-tenant: %d sessions of user b left, want 1", len(left))
			}
			for _, id := range []string{ua, store.NewID(store.PrefixUser), "usr_x", "tnt_" + ua[4:]} {
				if r := e.call("DELETE", "/users/"+id, nil); r.status != http.StatusNotFound {
					t.Errorf("%s: status %d, want 404", id, r.status)
				}
			}

			// A directory's user belongs to its SCIM client.
			h := [32]byte{1}
			d, err := st.CreateDirectory(actx, store.Directory{Name: "okta", TokenHash: h[:]})
			if err != nil {
				t.Fatal(err)
			}
			du, err := st.CreateUser(actx, store.User{DirectoryID: d.ID, UserName: "d@a.test", Email: "d@a.test", Active: true})
			if err != nil {
				t.Fatal(err)
			}
			r := e.call("DELETE", "/users/"+du.ID, nil)
			if r.status != http.StatusConflict || !strings.Contains(string(r.body), "managed_by_directory") {
				t.Fatalf("directory user: %d %s, want 409 managed_by_directory", r.status, r.body)
			}
			if _, err := st.User(actx, du.ID); err != nil {
				t.Fatalf("the directory's user was deleted: %v", err)
			}
		})
	}
}
