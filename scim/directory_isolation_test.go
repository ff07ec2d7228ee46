package scim_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestDirectoriesOfOneTenantAreApart: a directory's token opens its own
// directory only, even within one tenant (an Okta and an Entra directory,
// say): every Users and Groups verb aimed at the other directory's
// resources is 404, changes nothing and announces nothing, and lists
// never show them.
func TestDirectoriesOfOneTenantAreApart(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		other := e.secondDirectory()
		uid := other("POST", "/Users", userBody("theirs@acme.com", nil)).want(t, http.StatusCreated).str("id")
		gid := other("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "entra-eng",
			"members": []any{map[string]any{"value": uid}}}).want(t, http.StatusCreated).str("id")
		before := len(eventTypes(t, st))

		deactivate := map[string]any{"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}
		for _, tc := range []struct {
			name, method, path string
			body               any
		}{
			{"get user", "GET", "/Users/" + uid, nil},
			{"replace user", "PUT", "/Users/" + uid, userBody("taken@acme.com", map[string]any{"active": false})},
			{"patch user", "PATCH", "/Users/" + uid, deactivate},
			{"delete user", "DELETE", "/Users/" + uid, nil},
			{"get group", "GET", "/Groups/" + gid, nil},
			{"replace group", "PUT", "/Groups/" + gid, map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "taken"}},
			{"patch group", "PATCH", "/Groups/" + gid, map[string]any{"Operations": []any{map[string]any{"op": "remove", "path": "members"}}}},
			{"delete group", "DELETE", "/Groups/" + gid, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e.do(tc.method, tc.path, tc.body).want(t, http.StatusNotFound)
			})
		}
		for _, path := range []string{
			"/Users",
			"/Users?filter=" + url.QueryEscape(`userName eq "theirs@acme.com"`),
			"/Users?filter=" + url.QueryEscape(`id eq "`+uid+`"`),
			"/Groups",
			"/Groups?filter=" + url.QueryEscape(`displayName eq "entra-eng"`),
		} {
			if l := e.do("GET", path, nil).want(t, http.StatusOK); lookup(l.body, "totalResults") != float64(0) {
				t.Errorf("GET %s lists the other directory's resources: %s", path, l.raw)
			}
		}

		// Nothing changed and nothing was announced.
		u := other("GET", "/Users/"+uid, nil).want(t, http.StatusOK)
		if u.str("userName") != "theirs@acme.com" || lookup(u.body, "active") != true {
			t.Errorf("the other directory's user changed: %s", u.raw)
		}
		g := other("GET", "/Groups/"+gid, nil).want(t, http.StatusOK)
		if g.str("displayName") != "entra-eng" || lookup(g.body, "members.0.value") != uid {
			t.Errorf("the other directory's group changed: %s", g.raw)
		}
		if after := len(eventTypes(t, st)); after != before {
			t.Errorf("refused requests wrote %d events", after-before)
		}
	})
}
