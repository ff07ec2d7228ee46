package scim_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestFilterStringWithNUL: a filter whose string literal escapes a NUL
// ("\u0000") is refused as invalidFilter, on Users and Groups and in a
// PATCH path, never a 500: PostgreSQL refuses NUL in a text argument, and
// no stored value holds one (bodies with one are refused).
func TestFilterStringWithNUL(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		uid := e.do("POST", "/Users", userBody("nul@acme.com", nil)).want(t, http.StatusCreated).str("id")
		gid := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "eng",
			"members": []any{map[string]any{"value": uid}}}).want(t, http.StatusCreated).str("id")
		for _, path := range []string{
			"/Users?filter=" + url.QueryEscape(`userName eq "\u0000"`),
			"/Users?filter=" + url.QueryEscape(`externalId co "a\u0000"`),
			"/Users?filter=" + url.QueryEscape(`emails[type eq "work"].value sw "\u0000"`),
			"/Users?filter=" + url.QueryEscape(`id eq "usr_\u0000"`),
			"/Groups?filter=" + url.QueryEscape(`displayName eq "\u0000"`),
			"/Groups?filter=" + url.QueryEscape(`members[value eq "\u0000"]`),
		} {
			r := e.do("GET", path, nil).want(t, http.StatusBadRequest)
			if r.str("scimType") != "invalidFilter" {
				t.Errorf("GET %s: scimType %q, want invalidFilter: %s", path, r.str("scimType"), r.raw)
			}
		}
		r := e.do("PATCH", "/Groups/"+gid, map[string]any{"schemas": []string{scim.SchemaPatchOp},
			"Operations": []any{map[string]any{"op": "remove", "path": `members[value eq "\u0000"]`}}}).want(t, http.StatusBadRequest)
		if r.str("scimType") != "invalidPath" {
			t.Errorf("PATCH remove members[value eq NUL]: scimType %q, want invalidPath: %s", r.str("scimType"), r.raw)
		}
		if g := e.do("GET", "/Groups/"+gid, nil).want(t, http.StatusOK); lookup(g.body, "members.0.value") != uid {
			t.Errorf("the refused PATCH changed the group: %s", g.raw)
		}
	})
}
