package scim_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/idbroker/idbroker/scim"
)

// TestSchemasMatchAnswers: what /Schemas says of an attribute's returned
// characteristic is what the resource endpoints do, for a client that
// reads /Schemas to decide what to ask for; an attribute that is never
// returned is not listed as returned by default.
func TestSchemasMatchAnswers(t *testing.T) {
	e := newEnv(t, backends[0].open(t), nil)
	user := e.do("POST", "/Users", userBody("alice@acme.com", nil)).want(t, http.StatusCreated).str("id")
	group := e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng",
		"members": []any{map[string]any{"value": user}}}).want(t, http.StatusCreated).str("id")
	returned := func(schema, name string) string {
		s := e.do("GET", "/Schemas/"+schema, nil).want(t, http.StatusOK)
		for _, a := range s.body["attributes"].([]any) {
			if a := a.(map[string]any); a["name"] == name {
				return a["returned"].(string)
			}
		}
		return "" // not listed: nothing promised
	}
	for _, tc := range []struct {
		schema, attr, path string
	}{
		{scim.SchemaGroup, "members", "/Groups/" + group},
		{scim.SchemaGroup, "displayName", "/Groups/" + group},
		{scim.SchemaUser, "userName", "/Users/" + user},
		{scim.SchemaUser, "password", "/Users/" + user},
		{scim.SchemaUser, "groups", "/Users/" + user}, // the user is a member of Eng
	} {
		got := returned(tc.schema, tc.attr)
		_, present := e.do("GET", tc.path, nil).want(t, http.StatusOK).body[tc.attr]
		switch {
		case got == "default" && !present:
			t.Errorf("%s says %s is returned by default; GET %s leaves it out", tc.schema, tc.attr, tc.path)
		case (got == "request" || got == "never") && present:
			t.Errorf("%s says %s is returned %s; GET %s returns it", tc.schema, tc.attr, got, tc.path)
		}
	}
}

// TestDiscoveryRefusesFilters: a filter on a discovery endpoint is
// answered 403 in the error schema (RFC 7644 §4), lest a client take the
// whole list for the resources that match; without one, and with the
// paging and sorting parameters it ignores, they answer as usual.
func TestDiscoveryRefusesFilters(t *testing.T) {
	e := newEnv(t, backends[0].open(t), nil)
	for _, path := range []string{"/ServiceProviderConfig", "/ResourceTypes", "/ResourceTypes/User", "/Schemas", "/Schemas/" + scim.SchemaGroup} {
		e.do("GET", path+"?filter="+url.QueryEscape(`id eq "User"`), nil).want(t, http.StatusForbidden)
		e.do("GET", path+"?startIndex=2&count=1&sortBy=id", nil).want(t, http.StatusOK)
	}
	if r := e.do("GET", "/Schemas?count=1", nil).want(t, http.StatusOK); lookup(r.body, "totalResults") != float64(3) || len(r.body["Resources"].([]any)) != 3 {
		t.Errorf("/Schemas?count=1 pages what it must ignore: %s", r.raw)
	}
}
