package portal

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestDirectorySignInPolicy: the tenant's IT admin lets only directory
// users sign in from a directory's page, once that directory has pushed
// users (before, the page says so and a form sent anyway is 409 with
// nothing changed); the change needs the page's CSRF token, is the
// tenant's tenant.updated audit row (once, however often it is sent), and
// sets back the same way. Another tenant's admin cannot reach the form of
// this tenant's directory (404) and changes nothing of it.
func TestDirectorySignInPolicy(t *testing.T) {
	h := newHarness(t)
	ctx := h.tenant("Acme", "acme.example")
	other := h.tenant("Globex", "globex.example")
	dir, err := h.store.CreateDirectory(ctx, store.Directory{Name: "Okta", TokenHash: []byte("okta")})
	if err != nil {
		t.Fatal(err)
	}
	c := h.open(h.link(ctx, store.IntentDSync))
	page := h.url + "/portal/dsync/" + dir.ID
	action := page + "/sign-in-policy"
	policyOf := func(ctx context.Context) store.SignInPolicy {
		t.Helper()
		g, err := h.store.SignInGate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return g.Policy
	}
	audited := func() []store.AuditEvent {
		t.Helper()
		rows, _, err := h.store.AuditEvents(ctx, "tenant.updated", store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}

	// No users pushed yet: nothing to turn on.
	_, body := get(t, c, page)
	if !strings.Contains(body, `id="policy-wait"`) || strings.Contains(body, `id="policy-directory-users"`) {
		t.Fatalf("a directory without users offers the policy:\n%s", body)
	}
	resp, body := post(t, c, action, url.Values{"csrf_token": {csrfOf(t, body)}, "policy": {"directory_users"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "Nothing was changed") || policyOf(ctx) != store.SignInAny {
		t.Fatalf("turned on with no users: %d, policy %s\n%s", resp.StatusCode, policyOf(ctx), body)
	}

	if _, err := h.store.CreateDirectoryUser(ctx, store.User{DirectoryID: dir.ID, ExternalID: "1", UserName: "pat@acme.example",
		Email: "pat@acme.example", Active: true}); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, c, page)
	if !strings.Contains(body, `id="policy-directory-users"`) || !strings.Contains(body, "Anyone your identity provider lets through may sign in") {
		t.Fatalf("the page does not offer the policy:\n%s", body)
	}
	token := csrfOf(t, body)
	// Without the page's token: refused, nothing changed.
	if resp, _ := post(t, c, action, url.Values{"policy": {"directory_users"}}); resp.StatusCode != http.StatusForbidden || policyOf(ctx) != store.SignInAny {
		t.Fatalf("without CSRF: %d, policy %s", resp.StatusCode, policyOf(ctx))
	}
	if resp, _ := post(t, c, action, url.Values{"csrf_token": {token}, "policy": {"everyone"}}); resp.StatusCode != http.StatusBadRequest || policyOf(ctx) != store.SignInAny {
		t.Fatalf("an unknown policy: %d, policy %s", resp.StatusCode, policyOf(ctx))
	}

	// Another tenant's admin, on this tenant's directory: not found.
	oc := h.open(h.link(other, store.IntentDSync))
	_, obody := get(t, oc, h.url+"/portal/dsync")
	if resp, _ := post(t, oc, action, url.Values{"csrf_token": {csrfOf(t, obody)}, "policy": {"directory_users"}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another tenant's admin: %d, want 404", resp.StatusCode)
	}
	if policyOf(ctx) != store.SignInAny || policyOf(other) != store.SignInAny {
		t.Fatalf("another tenant's form changed a policy: %s, %s", policyOf(ctx), policyOf(other))
	}

	for range 2 { // sent again (a reload): audited once
		resp, body = post(t, c, action, url.Values{"csrf_token": {token}, "policy": {"directory_users"}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Only people your directory provisioned") || !strings.Contains(body, `id="policy-any"`) {
			t.Fatalf("turn on: %d\n%s", resp.StatusCode, body)
		}
	}
	if policyOf(ctx) != store.SignInDirectoryUsers || policyOf(other) != store.SignInAny {
		t.Fatalf("after turning it on: %s, the other tenant %s", policyOf(ctx), policyOf(other))
	}
	rows := audited()
	if len(rows) != 1 || rows[0].Actor.Type != "tenant_admin" || rows[0].Resource.Type != "tenant" {
		t.Fatalf("audit rows %+v", rows)
	}
	var detail struct {
		Changes map[string]struct{ From, To string }
	}
	if err := json.Unmarshal(rows[0].Context, &detail); err != nil || detail.Changes["sign_in_policy"].From != "any" || detail.Changes["sign_in_policy"].To != "directory_users" {
		t.Fatalf("audit context %s", rows[0].Context)
	}

	resp, body = post(t, c, action, url.Values{"csrf_token": {token}, "policy": {"any"}})
	if resp.StatusCode != http.StatusOK || policyOf(ctx) != store.SignInAny || !strings.Contains(body, `id="policy-directory-users"`) {
		t.Fatalf("set back: %d, policy %s", resp.StatusCode, policyOf(ctx))
	}
	if n := len(audited()); n != 2 {
		t.Fatalf("%d tenant.updated rows, want 2", n)
	}
}
