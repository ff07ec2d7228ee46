package scim_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/store"
)

// TestDeleteHonoursIfMatch: a DELETE whose If-Match names an older version
// answers 412 and deletes nothing, as PUT and PATCH do (the
// ServiceProviderConfig advertises ETags); the current version, "*" or no
// If-Match deletes.
func TestDeleteHonoursIfMatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		for _, endpoint := range []string{"/Users", "/Groups"} {
			for i, tc := range []struct {
				ifMatch string
				status  int
			}{
				{`W/"7"`, http.StatusPreconditionFailed},
				{`W/"1"`, http.StatusNoContent},
				{`*`, http.StatusNoContent},
				{"", http.StatusNoContent},
			} {
				body := userBody(fmt.Sprintf("u%d@acme.com", i), nil)
				if endpoint == "/Groups" {
					body = map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": fmt.Sprint("G", i)}
				}
				path := endpoint + "/" + e.do("POST", endpoint, body).want(t, http.StatusCreated).str("id")
				before := len(eventTypes(t, st))
				var hdr []string
				if tc.ifMatch != "" {
					hdr = []string{"If-Match", tc.ifMatch}
				}
				e.do("DELETE", path, nil, hdr...).want(t, tc.status)
				after := len(eventTypes(t, st))
				if tc.status == http.StatusPreconditionFailed {
					e.do("GET", path, nil).want(t, http.StatusOK)
					if after != before {
						t.Errorf("DELETE %s with If-Match %s was refused but wrote %d events", path, tc.ifMatch, after-before)
					}
					continue
				}
				e.do("GET", path, nil).want(t, http.StatusNotFound)
			}
		}
	})
}

// TestGetHonoursIfNoneMatch: a GET of a user or group whose If-None-Match
// names its current version answers 304 without a body (RFC 7644 §3.14);
// an older version, or another resource's, gets the resource.
func TestGetHonoursIfNoneMatch(t *testing.T) {
	e := newEnv(t, backends[0].open(t), nil)
	user := "/Users/" + e.do("POST", "/Users", userBody("alice@acme.com", nil)).want(t, http.StatusCreated).str("id")
	group := "/Groups/" + e.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "Eng"}).
		want(t, http.StatusCreated).str("id")
	e.do("PATCH", user, map[string]any{"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": "A"}}}).
		want(t, http.StatusOK)
	for _, tc := range []struct {
		path, ifNoneMatch string
		status            int
	}{
		{user, `W/"2"`, http.StatusNotModified},
		{user, `"2"`, http.StatusNotModified},
		{user, `W/"1", W/"2"`, http.StatusNotModified},
		{user, `*`, http.StatusNotModified},
		{user, `W/"1"`, http.StatusOK},
		{group, `W/"1"`, http.StatusNotModified},
		{group, `W/"2"`, http.StatusOK},
	} {
		r := e.do("GET", tc.path, nil, "If-None-Match", tc.ifNoneMatch)
		if r.status != tc.status {
			t.Errorf("GET %s with If-None-Match %s: %d, want %d: %s", tc.path, tc.ifNoneMatch, r.status, tc.status, r.raw)
			continue
		}
		if tc.status == http.StatusNotModified && (r.raw != "" || r.header.Get("ETag") == "") {
			t.Errorf("GET %s with If-None-Match %s: 304 with body %q and ETag %q, want no body and the ETag", tc.path, tc.ifNoneMatch, r.raw, r.header.Get("ETag"))
		}
	}
}
