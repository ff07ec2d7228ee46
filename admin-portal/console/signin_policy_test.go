package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestConsoleSignInPolicy: the tenant page shows who may sign in and an
// operator changes it there, through the operator API's code path: the
// sign-in's gate reads it at once, the tenant's chain has tenant.updated
// and the operators' trail has the operator; an unknown value is 400, an
// unknown tenant 404, a form without the CSRF token or a session changes
// nothing, and another tenant is left alone.
func TestConsoleSignInPolicy(t *testing.T) {
	h := start(t, "")
	s := h.signIn(t)
	tn := newTenant(t, h.db, "Acme")
	other := newTenant(t, h.db, "Globex")
	policyOf := func(id string) store.SignInPolicy {
		t.Helper()
		g, err := h.db.SignInGate(storeCtx(id))
		if err != nil {
			t.Fatal(err)
		}
		return g.Policy
	}
	path := "/console/tenants/" + tn.ID + "/sign_in_policy"
	_, page := h.get(t, s.token, "/console/tenants/"+tn.ID)
	if !contains(page, `name="sign_in_policy"`, `<option value="any" selected>`) {
		t.Fatalf("the tenant page does not show the policy:\n%s", page)
	}

	if resp, _ := h.do(t, s.token, "POST", path, url.Values{"sign_in_policy": {"directory_users"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("without CSRF: %d", resp.StatusCode)
	}
	if resp, _ := h.do(t, "", "POST", path, url.Values{"csrf_token": {s.csrf}, "sign_in_policy": {"directory_users"}}); resp.StatusCode < 300 || resp.StatusCode == http.StatusOK {
		t.Fatalf("without a session: %d", resp.StatusCode)
	}
	if resp, _ := h.do(t, s.token, "POST", path, url.Values{"csrf_token": {s.csrf}, "sign_in_policy": {"everyone"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an unknown policy: %d", resp.StatusCode)
	}
	if resp, _ := h.do(t, s.token, "POST", "/console/tenants/tnt_01JUNKJUNKJUNKJUNKJUNKJUNK/sign_in_policy",
		url.Values{"csrf_token": {s.csrf}, "sign_in_policy": {"directory_users"}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an unknown tenant: %d", resp.StatusCode)
	}
	if policyOf(tn.ID) != store.SignInAny {
		t.Fatalf("refused forms changed the policy to %s", policyOf(tn.ID))
	}

	resp, _ := h.do(t, s.token, "POST", path, url.Values{"csrf_token": {s.csrf}, "sign_in_policy": {"directory_users"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "notice=policy_directory") {
		t.Fatalf("set: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if policyOf(tn.ID) != store.SignInDirectoryUsers || policyOf(other.ID) != store.SignInAny {
		t.Fatalf("after the change: %s, the other tenant %s", policyOf(tn.ID), policyOf(other.ID))
	}
	_, page = h.get(t, s.token, "/console/tenants/"+tn.ID+"?notice=policy_directory")
	if !contains(page, `<option value="directory_users" selected>`, `id="policy-no-directory"`, "Only the tenant&#39;s directory users may sign in now.") {
		t.Fatalf("the tenant page after the change:\n%s", page)
	}
	chain, _, err := h.db.AuditEvents(storeCtx(tn.ID), "tenant.updated", store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Changes map[string]struct{ From, To string }
	}
	if len(chain) != 1 || chain[0].Actor.ID != s.operatorID || json.Unmarshal(chain[0].Context, &d) != nil ||
		d.Changes["sign_in_policy"].From != "any" || d.Changes["sign_in_policy"].To != "directory_users" {
		t.Fatalf("tenant chain %+v", chain)
	}
	trail, _, err := h.db.OperatorAudit(context.Background(), "tenant.updated", store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(trail) != 1 || trail[0].Actor.ID != s.operatorID || trail[0].Resource.ID != tn.ID {
		t.Fatalf("operators' trail %+v", trail)
	}

	resp, _ = h.do(t, s.token, "POST", path, url.Values{"csrf_token": {s.csrf}, "sign_in_policy": {"any"}})
	if resp.StatusCode != http.StatusSeeOther || policyOf(tn.ID) != store.SignInAny {
		t.Fatalf("set back: %d, %s", resp.StatusCode, policyOf(tn.ID))
	}
}
