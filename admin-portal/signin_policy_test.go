package adminportal_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestTenantSignInPolicy: sign_in_policy is shown on every tenant (any by
// default), set by POST and PATCH, audited as tenant.updated with what
// changed, read by the sign-in's gate at once, refused when unknown or
// null, and changes only the tenant named (another's is 404 by a wrong id,
// 401 without a key).
func TestTenantSignInPolicy(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		type policyOut struct {
			SignInPolicy string `json:"sign_in_policy"`
		}
		gate := func(id string) store.SignInPolicy {
			t.Helper()
			g, err := e.st.SignInGate(store.WithTenant(ctx, id))
			if err != nil {
				t.Fatal(err)
			}
			return g.Policy
		}
		a := e.createTenant(map[string]any{"name": "A"})
		b := e.createTenant(map[string]any{"name": "B"})
		var got policyOut
		e.must(http.StatusOK, "GET", "/tenants/"+a.ID, nil).decode(t, &got)
		if got.SignInPolicy != "any" {
			t.Fatalf("a new tenant's policy = %q, want any", got.SignInPolicy)
		}
		// Set at creation, before the tenant has a directory.
		strict := e.createTenant(map[string]any{"name": "Strict", "sign_in_policy": "directory_users"})
		if gate(strict.ID) != store.SignInDirectoryUsers {
			t.Fatalf("created with directory_users, gate reads %q", gate(strict.ID))
		}

		e.must(http.StatusOK, "PATCH", "/tenants/"+a.ID, map[string]any{"sign_in_policy": "directory_users"}).decode(t, &got)
		if got.SignInPolicy != "directory_users" || gate(a.ID) != store.SignInDirectoryUsers {
			t.Fatalf("PATCH answered %q, gate %q", got.SignInPolicy, gate(a.ID))
		}
		if gate(b.ID) != store.SignInAny {
			t.Fatalf("A's change reached B: %q", gate(b.ID))
		}
		rows := e.audits(a.ID, "tenant.updated")
		var audited struct {
			Changes map[string]struct{ From, To any }
		}
		if len(rows) != 1 || json.Unmarshal(rows[0].Context, &audited) != nil {
			t.Fatalf("audit = %+v", rows)
		}
		if c := audited.Changes["sign_in_policy"]; c.From != "any" || c.To != "directory_users" {
			t.Fatalf("audited changes = %s", rows[0].Context)
		}
		// The same value again is no change: nothing more is audited.
		e.must(http.StatusOK, "PATCH", "/tenants/"+a.ID, map[string]any{"sign_in_policy": "directory_users"})
		if n := len(e.audits(a.ID, "tenant.updated")); n != 1 {
			t.Fatalf("%d tenant.updated rows after a PATCH that changed nothing", n)
		}

		for _, body := range []string{`{"sign_in_policy":"contractors"}`, `{"sign_in_policy":null}`, `{"sign_in_policy":true}`, `{"sign_in_policy":""}`} {
			r := e.must(http.StatusBadRequest, "PATCH", "/tenants/"+a.ID, body)
			if r.err(t).Code != "invalid_request" {
				t.Errorf("%s: %s", body, r.body)
			}
		}
		e.must(http.StatusBadRequest, "POST", "/tenants", map[string]any{"name": "x", "sign_in_policy": "everyone"})
		e.must(http.StatusNotFound, "PATCH", "/tenants/tnt_01JUNKJUNKJUNKJUNKJUNKJUNK", map[string]any{"sign_in_policy": "any"})
		if r := e.call("PATCH", "/tenants/"+a.ID, map[string]any{"sign_in_policy": "any"}, "Authorization", "Bearer nope"); r.status != http.StatusUnauthorized {
			t.Fatalf("unauthenticated PATCH: %d", r.status)
		}
		if gate(a.ID) != store.SignInDirectoryUsers {
			t.Fatalf("refused PATCHes changed the policy to %q", gate(a.ID))
		}
		e.must(http.StatusOK, "PATCH", "/tenants/"+a.ID, map[string]any{"sign_in_policy": "any"}).decode(t, &got)
		if got.SignInPolicy != "any" || gate(a.ID) != store.SignInAny {
			t.Fatalf("set back: %q, gate %q", got.SignInPolicy, gate(a.ID))
		}
	})
}
