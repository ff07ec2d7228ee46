package scim_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/idbroker/scim"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// TestOtherClientsDeprovision: every way the IdPs beyond Okta and Entra ID
// deprovision a user (a PUT of the whole user with active false, as
// OneLogin and JumpCloud suspend; PATCH replace or add of active, as
// PingOne, Rippling and scripts send it, with or without If-Match taken
// from meta.version; DELETE) ends the user's sessions. The same request
// sent with another tenant's directory token to its own directory is 404
// and ends nothing.
func TestOtherClientsDeprovision(t *testing.T) {
	patch := func(ops ...map[string]any) func(string) any {
		return func(string) any { return map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": ops} }
	}
	put := func(active any) func(string) any {
		return func(u string) any {
			return map[string]any{"schemas": []string{scim.SchemaUser, scim.SchemaEnterpriseUser}, "userName": u,
				"name":                    map[string]any{"givenName": "Given", "familyName": "Family"},
				"emails":                  []any{map[string]any{"value": u, "type": "work", "primary": true}},
				scim.SchemaEnterpriseUser: map[string]any{"department": "Ops"}, "active": active}
		}
	}
	tests := []struct {
		client, form string
		method       string
		body         func(userName string) any
		ifMatch      bool
		status       int
	}{
		{"OneLogin", "PUT active false", http.MethodPut, put(false), false, http.StatusOK},
		{"JumpCloud", "PUT active false with If-Match", http.MethodPut, put(false), true, http.StatusOK},
		{"scripts", `PUT active "false"`, http.MethodPut, put("false"), false, http.StatusOK},
		{"PingOne", "PATCH replace active", http.MethodPatch, patch(map[string]any{"op": "replace", "path": "active", "value": false}), false, http.StatusOK},
		{"Rippling", "PATCH replace active with If-Match", http.MethodPatch, patch(map[string]any{"op": "replace", "path": "active", "value": false}), true, http.StatusOK},
		{"scripts", `PATCH "Replace" active "False"`, http.MethodPatch, patch(map[string]any{"op": "Replace", "path": "active", "value": "False"}), false, http.StatusOK},
		{"scripts", "PATCH add active", http.MethodPatch, patch(map[string]any{"op": "add", "path": "active", "value": false}), false, http.StatusOK},
		{"scripts", "PATCH with the qualified path", http.MethodPatch, patch(map[string]any{"op": "replace", "path": scim.SchemaUser + ":active", "value": false}), false, http.StatusOK},
		{"PingFederate", "PATCH no path", http.MethodPatch, patch(map[string]any{"op": "replace", "value": map[string]any{"active": false, "title": "Gone"}}), false, http.StatusOK},
		{"every client", "DELETE", http.MethodDelete, func(string) any { return nil }, false, http.StatusNoContent},
		{"every client", "DELETE with If-Match", http.MethodDelete, func(string) any { return nil }, true, http.StatusNoContent},
	}
	eachBackend(t, func(t *testing.T, st *store.DB) {
		ss := sessions.NewMemory()
		e := newEnv(t, st, ss)
		_, otherDir, otherToken := e.newDirectory("Other")
		for _, tc := range tests {
			t.Run(tc.client+": "+tc.form, func(t *testing.T) {
				userName := "d" + store.NewID("") + "@acme.com"
				created := e.do("POST", "/Users", userBody(userName, nil)).want(t, http.StatusCreated)
				id := created.str("id")
				sess := sessions.Session{ID: store.NewID(store.PrefixSession), TenantID: e.tenant, UserID: id, ExpiresAt: time.Now().Add(time.Hour)}
				if err := ss.Create(context.Background(), sess); err != nil {
					t.Fatal(err)
				}
				var hdr []string
				if tc.ifMatch {
					hdr = []string{"If-Match", created.str("meta.version")}
				}
				// Another tenant's token, on its own directory: 404, nothing ends.
				e.doAs(otherDir, otherToken, tc.method, "/Users/"+id, tc.body(userName), hdr...).want(t, http.StatusNotFound)
				if _, err := ss.Get(context.Background(), sess.ID); err != nil {
					t.Fatalf("another tenant's request ended the session: %v", err)
				}
				if got := e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK); got.body["active"] != true {
					t.Fatalf("another tenant's request changed the user: %s", got.raw)
				}

				r := e.do(tc.method, "/Users/"+id, tc.body(userName), hdr...).want(t, tc.status)
				if _, err := ss.Get(context.Background(), sess.ID); !errors.Is(err, sessions.ErrNotFound) {
					t.Fatalf("session after %s: %v", tc.form, err)
				}
				if tc.method == http.MethodDelete {
					e.do("GET", "/Users/"+id, nil).want(t, http.StatusNotFound)
					return
				}
				if r.body["active"] != false {
					t.Fatalf("answer: %s", r.raw)
				}
				// A stale If-Match afterwards is 412 in the error schema.
				e.do(tc.method, "/Users/"+id, tc.body(userName), "If-Match", created.str("meta.version")).want(t, http.StatusPreconditionFailed)
			})
		}
	})
}

// TestPatchNullAtAPath: add or replace with "value": null at a path
// unassigns what it names, as a null inside a no-path value does (RFC 7643
// §2.5); they were refused with 400. Without a value at all they are still
// refused, and so is a null that would unassign a required attribute.
func TestPatchNullAtAPath(t *testing.T) {
	op := func(kind, path string, value ...any) map[string]any {
		o := map[string]any{"op": kind, "path": path}
		if len(value) > 0 {
			o["value"] = value[0]
		}
		return map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": []any{o}}
	}
	tests := []struct {
		name   string
		body   map[string]any
		status int
		gone   string // the attribute no longer returned
		kept   string // one still returned
	}{
		{"replace title null", op("replace", "title", nil), http.StatusOK, "title", "externalId"},
		{"Replace externalId null", op("Replace", "externalId", nil), http.StatusOK, "externalId", "title"},
		{"add name.givenName null", op("add", "name.givenName", nil), http.StatusOK, "name.givenName", "name.familyName"},
		{"replace an extension attribute null", op("replace", scim.SchemaEnterpriseUser+":department", nil), http.StatusOK, scim.SchemaEnterpriseUser, "title"},
		{"replace the home email null", op("replace", `emails[type eq "home"]`, nil), http.StatusOK, "emails.1", "emails.0"},
		{"replace active null keeps it", op("replace", "active", nil), http.StatusOK, "", "active"},
		{"replace without a value", op("replace", "title"), http.StatusBadRequest, "", "title"},
		{"replace userName null", op("replace", "userName", nil), http.StatusBadRequest, "", "userName"},
	}
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				u := "n" + store.NewID("") + "@acme.com"
				id := e.do("POST", "/Users", userBody(u, map[string]any{
					"schemas": []string{scim.SchemaUser, scim.SchemaEnterpriseUser},
					"title":   "Engineer", "externalId": "x-1",
					"emails":                  []any{map[string]any{"value": u, "type": "work", "primary": true}, map[string]any{"value": "home-" + u, "type": "home"}},
					scim.SchemaEnterpriseUser: map[string]any{"department": "Ops"},
				})).want(t, http.StatusCreated).str("id")
				e.do("PATCH", "/Users/"+id, tc.body).want(t, tc.status)
				got := e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK)
				if tc.gone != "" && lookup(got.body, tc.gone) != nil {
					t.Errorf("%s is still returned: %s", tc.gone, got.raw)
				}
				if lookup(got.body, tc.kept) == nil {
					t.Errorf("%s is gone: %s", tc.kept, got.raw)
				}
			})
		}
	})
}

// TestPatchOneBareValue: one value of a multi-valued attribute sent bare,
// not in an array, is a list of one for replace as it was for add; replace
// refused it with 400 and add did too on a user without the attribute.
func TestPatchOneBareValue(t *testing.T) {
	op := func(kind, path string, value any) map[string]any {
		return map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": []any{map[string]any{"op": kind, "path": path, "value": value}}}
	}
	email := func(v string) map[string]any { return map[string]any{"value": v, "type": "work", "primary": true} }
	tests := []struct {
		name      string
		noEmails  bool
		body      map[string]any
		status    int
		wantCount int
		wantFirst string
	}{
		{"replace emails with one object", false, op("replace", "emails", email("new@acme.com")), http.StatusOK, 1, "new@acme.com"},
		{"add one object to a user without emails", true, op("add", "emails", email("new@acme.com")), http.StatusOK, 1, "new@acme.com"},
		{"add one object to emails", false, op("Add", "emails", map[string]any{"value": "home@acme.com", "type": "home"}), http.StatusOK, 2, ""},
		{"replace phoneNumbers with one object", false, op("replace", "phoneNumbers", map[string]any{"value": "+1 555 0100"}), http.StatusOK, 1, ""},
		{"a bare string is still refused", false, op("replace", "emails", "new@acme.com"), http.StatusBadRequest, 1, ""},
	}
	eachBackend(t, func(t *testing.T, st *store.DB) {
		e := newEnv(t, st, nil)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				u := "b" + store.NewID("") + "@acme.com"
				body := userBody(u, nil)
				if tc.noEmails {
					delete(body, "emails")
				}
				id := e.do("POST", "/Users", body).want(t, http.StatusCreated).str("id")
				e.do("PATCH", "/Users/"+id, tc.body).want(t, tc.status)
				got := e.do("GET", "/Users/"+id, nil).want(t, http.StatusOK)
				if tc.status != http.StatusOK {
					if got.str("emails.0.value") != u {
						t.Errorf("refused PATCH changed the user: %s", got.raw)
					}
					return
				}
				attr := "emails"
				if tc.name == "replace phoneNumbers with one object" {
					attr = "phoneNumbers"
				}
				if list, _ := got.body[attr].([]any); len(list) != tc.wantCount {
					t.Errorf("%s: %s", attr, got.raw)
				}
				if tc.wantFirst != "" && got.str("emails.0.value") != tc.wantFirst {
					t.Errorf("emails: %s", got.raw)
				}
			})
		}
	})
}
