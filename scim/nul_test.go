package scim_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
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

// FuzzListFilter sends each filter to a real SCIM server over PostgreSQL
// (the database that refuses what SQLite lets through) as Okta and Entra
// ID send theirs, on Users and on Groups: the answer is a list or a 400 in
// the error schema, never a 5xx.
func FuzzListFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "alice@acme.com"`, `userName eq "f3a6c2d1-7b0e-4b8c-9e1c-1d6a0b9e3c21"`,
		`externalId eq "00u1abcd"`, `externalId eq 12345`, `emails[type eq "work"].value eq "a@b.c"`,
		`emails[type eq "work" and primary eq true]`, `displayName eq "Eng" and members[value eq "usr_1"]`,
		`id eq "grp_01"`, `meta.lastModified gt "2011-05-13T04:42:34Z"`, `active eq "False"`,
		`not (userName sw "a") or name.familyName ew "z"`, `userName co "%_\\"`, `members eq "usr_\u0000"`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`, `displayName ge "\uffff"`,
	} {
		f.Add(s)
	}
	e := newEnv(f, storetest.Postgres(f), nil)
	uid := e.do("POST", "/Users", userBody("alice@acme.com", map[string]any{"externalId": "00u1abcd"})).want(f, http.StatusCreated).str("id")
	e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng",
		"members": []any{map[string]any{"value": uid}}}).want(f, http.StatusCreated)
	f.Fuzz(func(t *testing.T, filter string) {
		e := *e // reports to t, not to f
		e.t = t
		for _, endpoint := range []string{"/Users", "/Groups"} {
			r := e.do("GET", endpoint+"?excludedAttributes=members&startIndex=1&count=100&filter="+url.QueryEscape(filter), nil)
			if r.status != http.StatusOK {
				r.want(t, http.StatusBadRequest)
			}
		}
	})
}
