package adminportal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	adminportal "github.com/idbroker/idbroker/admin-portal"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// newSCIMEnv is newEnv with the real SCIM server mounted beside the API on
// one HTTP server, as cmd/idbroker mounts them.
func newSCIMEnv(t *testing.T, st *store.DB) *env {
	t.Helper()
	srv := httpserver.New(httpserver.Config{BodyLimit: testBodyLimit})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	dirs, err := scim.New(scim.Config{Issuer: ts.URL, Store: st, Sessions: sessions.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	dirs.Mount(srv.Echo())
	adminportal.NewAPI(adminportal.APIConfig{Store: st, Resolver: &fakeDNS{records: map[string][]string{}}, SCIMBaseURL: dirs.BaseURL}).Mount(srv.Echo())
	return keyedEnv(t, st, ts.URL)
}

func eachSCIMBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newSCIMEnv(t, b.open(t)))
		})
	}
}

type directoryOut struct {
	ID          string  `json:"id"`
	TenantID    string  `json:"tenant_id"`
	Name        string  `json:"name"`
	SCIMBaseURL string  `json:"scim_base_url"`
	BearerToken *string `json:"bearer_token"`
}

type directoryUserOut struct {
	ID          string  `json:"id"`
	DirectoryID string  `json:"directory_id"`
	TenantID    string  `json:"tenant_id"`
	ExternalID  *string `json:"external_id"`
	UserName    string  `json:"user_name"`
	Email       *string `json:"email"`
	Emails      []struct {
		Value   string `json:"value"`
		Type    string `json:"type"`
		Primary bool   `json:"primary"`
	} `json:"emails"`
	FirstName *string  `json:"first_name"`
	LastName  *string  `json:"last_name"`
	State     string   `json:"state"`
	Groups    []string `json:"groups"`
}

// scimCall sends one SCIM request to a directory's base URL.
func scimCall(t *testing.T, base, token, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", scim.MediaType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out)
	}
	return res.StatusCode, out
}

func scimUser(userName, given string) map[string]any {
	return map[string]any{
		"schemas": []string{scim.SchemaUser}, "userName": userName, "externalId": "ext-" + given, "active": true,
		"name":   map[string]any{"givenName": given, "familyName": "Doe"},
		"emails": []any{map[string]any{"value": userName, "type": "work", "primary": "True"}},
	}
}

// provision creates users through a directory's SCIM endpoint and
// returns their ids.
func provision(t *testing.T, base, token string, users ...map[string]any) []string {
	t.Helper()
	var ids []string
	for _, u := range users {
		st, body := scimCall(t, base, token, "POST", "/Users", u)
		if st != http.StatusCreated {
			t.Fatalf("SCIM create: %d %v", st, body)
		}
		ids = append(ids, body["id"].(string))
	}
	return ids
}

func TestDirectories(t *testing.T) {
	eachSCIMBackend(t, func(t *testing.T, e *env) {
		ta := e.createTenant(map[string]any{"name": "Acme"})
		tb := e.createTenant(map[string]any{"name": "Globex"})

		var d directoryOut
		e.must(http.StatusCreated, "POST", "/tenants/"+ta.ID+"/directories", map[string]any{"name": " Okta "}).decode(t, &d)
		if !store.HasPrefix(d.ID, store.PrefixDirectory) || d.TenantID != ta.ID || d.Name != "Okta" ||
			d.BearerToken == nil || !strings.HasPrefix(*d.BearerToken, adminportal.DirectoryTokenPrefix+"_") ||
			!strings.HasSuffix(d.SCIMBaseURL, "/scim/v2/"+d.ID) {
			t.Fatalf("created %+v", d)
		}
		stored, err := e.st.Directory(store.WithTenant(context.Background(), ta.ID), d.ID)
		if err != nil || !secrets.Equal(stored.TokenHash, secrets.HashToken(*d.BearerToken)) {
			t.Fatalf("stored hash does not match the token shown (%v)", err)
		}
		if rows := e.audits(ta.ID, "directory.created"); len(rows) != 1 || rows[0].Resource.ID != d.ID {
			t.Fatalf("audit %+v", rows)
		}
		// The token is shown once: reads leave it out.
		var got map[string]any
		e.must(http.StatusOK, "GET", "/directories/"+d.ID, nil).decode(t, &got)
		if _, ok := got["bearer_token"]; ok || got["scim_base_url"] != d.SCIMBaseURL {
			t.Fatalf("GET shows %v", got)
		}
		var dl listOut[directoryOut]
		e.must(http.StatusOK, "GET", "/tenants/"+ta.ID+"/directories", nil).decode(t, &dl)
		if len(dl.Data) != 1 || dl.Data[0].ID != d.ID || dl.Data[0].BearerToken != nil {
			t.Fatalf("list %+v", dl)
		}

		// The token opens the directory's SCIM endpoint: provision two users
		// and a group through it.
		tok := *d.BearerToken
		ids := provision(t, d.SCIMBaseURL, tok, scimUser("ann@acme.test", "Ann"), scimUser("bob@acme.test", "Bob"))
		if st, body := scimCall(t, d.SCIMBaseURL, tok, "POST", "/Groups", map[string]any{
			"schemas": []string{scim.SchemaGroup}, "displayName": "Engineering",
			"members": []any{map[string]any{"value": ids[0]}},
		}); st != http.StatusCreated {
			t.Fatalf("SCIM group: %d %v", st, body)
		}

		// Users, paged.
		var p1, p2 listOut[directoryUserOut]
		e.must(http.StatusOK, "GET", "/directories/"+d.ID+"/users?limit=1", nil).decode(t, &p1)
		if len(p1.Data) != 1 || p1.NextCursor == nil {
			t.Fatalf("page 1 %+v", p1)
		}
		e.must(http.StatusOK, "GET", "/directories/"+d.ID+"/users?limit=1&after="+*p1.NextCursor, nil).decode(t, &p2)
		if len(p2.Data) != 1 || p2.NextCursor != nil || p2.Data[0].ID == p1.Data[0].ID {
			t.Fatalf("page 2 %+v", p2)
		}
		ann := p1.Data[0]
		if ann.ID != ids[0] || ann.DirectoryID != d.ID || ann.TenantID != ta.ID || ann.UserName != "ann@acme.test" ||
			ann.Email == nil || *ann.Email != "ann@acme.test" || ann.FirstName == nil || *ann.FirstName != "Ann" ||
			ann.LastName == nil || *ann.LastName != "Doe" || ann.ExternalID == nil || *ann.ExternalID != "ext-Ann" ||
			ann.State != "active" || len(ann.Groups) != 1 || ann.Groups[0] != "Engineering" ||
			len(ann.Emails) != 1 || !ann.Emails[0].Primary || ann.Emails[0].Type != "work" {
			t.Fatalf("user %+v", ann)
		}
		if bob := p2.Data[0]; bob.State != "active" || len(bob.Groups) != 0 || bob.Groups == nil {
			t.Fatalf("user %+v", bob)
		}
		// Deprovisioned users stay listed, inactive.
		if st, _ := scimCall(t, d.SCIMBaseURL, tok, "PATCH", "/Users/"+ids[1], map[string]any{
			"schemas": []string{scim.SchemaPatchOp}, "Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}},
		}); st != http.StatusOK {
			t.Fatalf("deactivate: %d", st)
		}
		var all listOut[directoryUserOut]
		e.must(http.StatusOK, "GET", "/directories/"+d.ID+"/users", nil).decode(t, &all)
		if len(all.Data) != 2 || all.Data[1].State != "inactive" {
			t.Fatalf("after deactivation %+v", all)
		}

		var groups listOut[struct {
			ID, Name, DirectoryID string
		}]
		e.must(http.StatusOK, "GET", "/directories/"+d.ID+"/groups", nil).decode(t, &groups)
		if len(groups.Data) != 1 || groups.Data[0].Name != "Engineering" || groups.NextCursor != nil {
			t.Fatalf("groups %+v", groups)
		}

		// Rotation: the new token works at once, the old one no longer.
		var rot directoryOut
		e.must(http.StatusOK, "POST", "/directories/"+d.ID+"/token", nil).decode(t, &rot)
		if rot.BearerToken == nil || *rot.BearerToken == tok || rot.ID != d.ID {
			t.Fatalf("rotated %+v", rot)
		}
		if st, _ := scimCall(t, d.SCIMBaseURL, tok, "GET", "/Users", nil); st != http.StatusUnauthorized {
			t.Fatalf("old token after rotation: %d", st)
		}
		if st, _ := scimCall(t, d.SCIMBaseURL, *rot.BearerToken, "GET", "/Users", nil); st != http.StatusOK {
			t.Fatalf("new token: %d", st)
		}
		if rows := e.audits(ta.ID, "directory.token_rotated"); len(rows) != 1 || rows[0].Resource.ID != d.ID {
			t.Fatalf("audit %+v", rows)
		}

		// Another tenant's directory: its token opens only it, and its
		// listings show none of Acme's users.
		var db directoryOut
		e.must(http.StatusCreated, "POST", "/tenants/"+tb.ID+"/directories", map[string]any{"name": "Entra"}).decode(t, &db)
		if st, _ := scimCall(t, d.SCIMBaseURL, *db.BearerToken, "GET", "/Users", nil); st != http.StatusUnauthorized {
			t.Fatalf("tenant B's token on A's directory: %d", st)
		}
		var bl listOut[directoryUserOut]
		e.must(http.StatusOK, "GET", "/directories/"+db.ID+"/users", nil).decode(t, &bl)
		if len(bl.Data) != 0 {
			t.Fatalf("tenant B lists %+v", bl.Data)
		}
		// Cursors of another listing lead nowhere either.
		e.must(http.StatusOK, "GET", "/directories/"+db.ID+"/users?after="+ids[0], nil).decode(t, &bl)
		if len(bl.Data) != 0 {
			t.Fatalf("tenant B lists %+v", bl.Data)
		}

		// Unknown, garbage and other-kind ids are 404; no key is 401.
		for _, p := range []string{
			"/directories/" + store.NewID(store.PrefixDirectory), "/directories/dir_x", "/directories/" + ta.ID,
			"/directories/" + store.NewID(store.PrefixDirectory) + "/users", "/directories/%27--/groups",
		} {
			if r := e.call("GET", p, nil); r.status != http.StatusNotFound || r.err(t).Code != "not_found" {
				t.Errorf("GET %s: %d %s", p, r.status, r.body)
			}
		}
		if r := e.call("POST", "/directories/"+store.NewID(store.PrefixDirectory)+"/token", nil); r.status != http.StatusNotFound {
			t.Errorf("rotate unknown: %d", r.status)
		}
		if r := e.call("POST", "/tenants/"+store.NewID(store.PrefixTenant)+"/directories", map[string]any{"name": "x"}); r.status != http.StatusNotFound {
			t.Errorf("unknown tenant: %d", r.status)
		}
		for _, call := range [][2]string{{"POST", "/directories/" + d.ID + "/token"}, {"GET", "/directories/" + d.ID + "/users"}, {"POST", "/tenants/" + ta.ID + "/directories"}} {
			if r := e.call(call[0], call[1], map[string]any{"name": "x"}, "Authorization", "Bearer idb_sk_wrong"); r.status != http.StatusUnauthorized {
				t.Errorf("%s %s without a valid key: %d", call[0], call[1], r.status)
			}
		}
		if st, _ := scimCall(t, d.SCIMBaseURL, *rot.BearerToken, "GET", "/Users", nil); st != http.StatusOK {
			t.Fatal("an unauthenticated rotation changed the token")
		}

		// Bad input: 400, nothing stored.
		for name, body := range map[string]any{
			"no name":       map[string]any{},
			"blank name":    map[string]any{"name": "  "},
			"unknown field": map[string]any{"name": "x", "token": "mine"},
			"name type":     map[string]any{"name": 5},
			"not an object": "[1]",
		} {
			if r := e.call("POST", "/tenants/"+ta.ID+"/directories", body); r.status != http.StatusBadRequest || r.err(t).Code != "invalid_request" {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
		for _, q := range []string{"limit=0", "limit=101", "limit=x", "after=grp_x", "after=" + ta.ID} {
			if r := e.call("GET", "/directories/"+d.ID+"/users?"+q, nil); r.status != http.StatusBadRequest {
				t.Errorf("users?%s: %d", q, r.status)
			}
		}
		if dirs, _ := e.st.Directories(store.WithTenant(context.Background(), ta.ID)); len(dirs) != 1 {
			t.Fatalf("refused requests stored directories: %d", len(dirs))
		}
	})
}

func TestDirectoryRoutesNeedSCIM(t *testing.T) {
	e := newEnv(t, backends[0].open(t))
	ta := e.createTenant(map[string]any{"name": "Acme"})
	if r := e.call("POST", "/tenants/"+ta.ID+"/directories", map[string]any{"name": "x"}); r.status != http.StatusNotFound {
		t.Fatalf("without SCIMBaseURL: %d", r.status)
	}
}

// TestDeleteDirectory: a deleted directory's token opens nothing (on the
// write path a node has cached too), its groups go, its users stay the
// tenant's with their ids, and the next directory adopts them. Nothing of
// another tenant changes, and no key deletes nothing.
func TestDeleteDirectory(t *testing.T) {
	eachSCIMBackend(t, func(t *testing.T, e *env) {
		// acme.test verified: the directory vouches for its users' emails,
		// which adoption by the next directory needs.
		ta := e.createTenant(map[string]any{"name": "Acme", "domains": []any{map[string]any{"domain": "acme.test", "verified": true}}})
		tb := e.createTenant(map[string]any{"name": "Globex"})
		var d, other directoryOut
		e.must(http.StatusCreated, "POST", "/tenants/"+ta.ID+"/directories", map[string]any{"name": "Okta"}).decode(t, &d)
		e.must(http.StatusCreated, "POST", "/tenants/"+tb.ID+"/directories", map[string]any{"name": "Entra"}).decode(t, &other)
		tok := *d.BearerToken
		ids := provision(t, d.SCIMBaseURL, tok, scimUser("ann@acme.test", "Ann"), scimUser("bob@acme.test", "Bob"))
		if st, _ := scimCall(t, d.SCIMBaseURL, tok, "POST", "/Groups", map[string]any{
			"schemas": []string{scim.SchemaGroup}, "displayName": "Engineering", "members": []any{map[string]any{"value": ids[0]}},
		}); st != http.StatusCreated {
			t.Fatalf("SCIM group: %d", st)
		}
		if st, _ := scimCall(t, other.SCIMBaseURL, *other.BearerToken, "POST", "/Users", scimUser("ann@acme.test", "Ann")); st != http.StatusCreated {
			t.Fatalf("tenant B's SCIM create: %d", st)
		}

		if r := e.call("DELETE", "/directories/"+d.ID, nil, "Authorization", "Bearer idb_sk_wrong"); r.status != http.StatusUnauthorized {
			t.Fatalf("delete without a valid key: %d", r.status)
		}
		if st, _ := scimCall(t, d.SCIMBaseURL, tok, "GET", "/Users", nil); st != http.StatusOK {
			t.Fatalf("an unauthenticated delete stopped the token: %d", st)
		}
		e.must(http.StatusNoContent, "DELETE", "/directories/"+d.ID, nil)

		for _, call := range [][2]string{{"GET", "/directories/" + d.ID}, {"DELETE", "/directories/" + d.ID},
			{"GET", "/directories/" + d.ID + "/users"}, {"POST", "/directories/" + d.ID + "/token"}} {
			if r := e.call(call[0], call[1], nil); r.status != http.StatusNotFound || r.err(t).Code != "not_found" {
				t.Errorf("%s %s after the delete: %d %s", call[0], call[1], r.status, r.body)
			}
		}
		// The token opens nothing, reads or writes (this node had it
		// remembered from the writes above).
		if st, _ := scimCall(t, d.SCIMBaseURL, tok, "GET", "/Users", nil); st != http.StatusUnauthorized {
			t.Errorf("SCIM read with the deleted directory's token: %d", st)
		}
		if st, _ := scimCall(t, d.SCIMBaseURL, tok, "POST", "/Users", scimUser("cy@acme.test", "Cy")); st != http.StatusUnauthorized {
			t.Errorf("SCIM write with the deleted directory's token: %d", st)
		}
		a := store.WithTenant(context.Background(), ta.ID)
		for _, id := range ids {
			u, err := e.st.User(a, id)
			if err != nil || u.DirectoryID != "" || !u.Active {
				t.Fatalf("user %s after the delete: %+v, %v; want kept, active, in no directory", id, u, err)
			}
		}
		if users, _, err := e.st.FindUsers(a, store.UserQuery{Limit: 10}); err != nil || len(users) != 2 {
			t.Fatalf("tenant users after the delete: %d, %v; want ann and bob (no cy)", len(users), err)
		}
		evs := e.events(ta.ID, adminportal.EventDirectoryDeleted)
		if len(evs) != 1 {
			t.Fatalf("dsync.deleted events = %d, want 1", len(evs))
		}
		var ev map[string]any
		if err := json.Unmarshal(evs[0].Data, &ev); err != nil || ev["id"] != d.ID || ev["users_released"] != float64(2) || ev["name"] != "Okta" {
			t.Fatalf("dsync.deleted data %s (%v)", evs[0].Data, err)
		}
		if rows := e.audits(ta.ID, "directory.deleted"); len(rows) != 1 || rows[0].Resource.ID != d.ID {
			t.Fatalf("audit %+v", rows)
		}

		// Tenant B's directory, with the same email, is untouched.
		var bl listOut[directoryUserOut]
		e.must(http.StatusOK, "GET", "/directories/"+other.ID+"/users", nil).decode(t, &bl)
		if len(bl.Data) != 1 || bl.Data[0].DirectoryID != other.ID {
			t.Fatalf("tenant B's users %+v", bl.Data)
		}

		// The next directory adopts Ann: same id.
		var next directoryOut
		e.must(http.StatusCreated, "POST", "/tenants/"+ta.ID+"/directories", map[string]any{"name": "Entra"}).decode(t, &next)
		st, body := scimCall(t, next.SCIMBaseURL, *next.BearerToken, "POST", "/Users", scimUser("ann@acme.test", "Ann"))
		if st != http.StatusCreated || body["id"] != ids[0] {
			t.Fatalf("re-provisioned Ann: %d %v; want id %s", st, body, ids[0])
		}
	})
}

// TestDirectoryUserAndGroupLookups: one user or group of a directory by
// id, a group's members as a paged list, and filters the list does not
// know refused rather than ignored. Ids of another directory or tenant
// are 404.
func TestDirectoryUserAndGroupLookups(t *testing.T) {
	eachSCIMBackend(t, func(t *testing.T, e *env) {
		ta := e.createTenant(map[string]any{"name": "Acme"})
		tb := e.createTenant(map[string]any{"name": "Globex"})
		var d, second, other directoryOut
		e.must(http.StatusCreated, "POST", "/tenants/"+ta.ID+"/directories", map[string]any{"name": "Okta"}).decode(t, &d)
		e.must(http.StatusCreated, "POST", "/tenants/"+ta.ID+"/directories", map[string]any{"name": "Second"}).decode(t, &second)
		e.must(http.StatusCreated, "POST", "/tenants/"+tb.ID+"/directories", map[string]any{"name": "Entra"}).decode(t, &other)
		create := func(dir directoryOut, path string, body map[string]any) string {
			t.Helper()
			st, out := scimCall(t, dir.SCIMBaseURL, *dir.BearerToken, "POST", path, body)
			if st != http.StatusCreated {
				t.Fatalf("SCIM create %s: %d %v", path, st, out)
			}
			return out["id"].(string)
		}
		ann := create(d, "/Users", scimUser("ann@acme.test", "Ann"))
		bob := create(d, "/Users", scimUser("bob@acme.test", "Bob"))
		cy := create(d, "/Users", scimUser("cy@acme.test", "Cy"))
		group := func(dir directoryOut, name string, members ...string) string {
			var ms []any
			for _, m := range members {
				ms = append(ms, map[string]any{"value": m})
			}
			return create(dir, "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": name, "members": ms})
		}
		eng := group(d, "Engineering", ann, bob)
		secondUser := create(second, "/Users", scimUser("dee@acme.test", "Dee"))
		secondGroup := group(second, "Ops", secondUser)
		theirUser := create(other, "/Users", scimUser("eve@globex.test", "Eve"))
		theirGroup := group(other, "Sales", theirUser)

		var u directoryUserOut
		e.must(http.StatusOK, "GET", "/directories/"+d.ID+"/users/"+ann, nil).decode(t, &u)
		if u.ID != ann || u.DirectoryID != d.ID || u.UserName != "ann@acme.test" || len(u.Groups) != 1 || u.Groups[0] != "Engineering" {
			t.Fatalf("user %+v", u)
		}
		var g struct{ ID, Name, DirectoryID string }
		e.must(http.StatusOK, "GET", "/directories/"+d.ID+"/groups/"+eng, nil).decode(t, &g)
		if g.ID != eng || g.Name != "Engineering" {
			t.Fatalf("group %+v", g)
		}

		// Members, paged: Ann and Bob, not Cy.
		var p1, p2 listOut[directoryUserOut]
		e.must(http.StatusOK, "GET", "/directories/"+d.ID+"/users?group="+eng+"&limit=1", nil).decode(t, &p1)
		if len(p1.Data) != 1 || p1.NextCursor == nil {
			t.Fatalf("members page 1 %+v", p1)
		}
		e.must(http.StatusOK, "GET", "/directories/"+d.ID+"/users?group="+eng+"&limit=1&after="+*p1.NextCursor, nil).decode(t, &p2)
		if len(p2.Data) != 1 || p2.NextCursor != nil {
			t.Fatalf("members page 2 %+v", p2)
		}
		got := []string{p1.Data[0].ID, p2.Data[0].ID}
		if !(got[0] == ann && got[1] == bob || got[0] == bob && got[1] == ann) {
			t.Fatalf("members %v, want ann and bob (cy is %s)", got, cy)
		}

		// Another directory's, another tenant's, unknown and malformed ids.
		for _, p := range []string{
			"/directories/" + d.ID + "/users/" + secondUser, "/directories/" + d.ID + "/users/" + theirUser,
			"/directories/" + d.ID + "/users/" + store.NewID(store.PrefixUser), "/directories/" + d.ID + "/users/" + eng,
			"/directories/" + d.ID + "/groups/" + secondGroup, "/directories/" + d.ID + "/groups/" + theirGroup,
			"/directories/" + d.ID + "/groups/" + store.NewID(store.PrefixGroup), "/directories/" + d.ID + "/groups/x",
			"/directories/" + d.ID + "/users?group=" + secondGroup, "/directories/" + d.ID + "/users?group=" + theirGroup,
			"/directories/" + d.ID + "/users?group=" + ann,
		} {
			if r := e.call("GET", p, nil); r.status != http.StatusNotFound || r.err(t).Code != "not_found" {
				t.Errorf("GET %s: %d %s", p, r.status, r.body)
			}
		}
		// A filter the list does not know is a 400 naming it, not every user.
		for _, p := range []string{"/directories/" + d.ID + "/users?groups=" + eng, "/directories/" + d.ID + "/users?state=inactive",
			"/directories/" + d.ID + "/groups?user=" + ann} {
			if r := e.call("GET", p, nil); r.status != http.StatusBadRequest || r.err(t).Code != "invalid_request" {
				t.Errorf("GET %s: %d %s", p, r.status, r.body)
			}
		}
	})
}
