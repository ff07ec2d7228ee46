package adminportal_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/idbroker/ratelimit"
	"github.com/idbroker/idbroker/store"
)

func TestTenantTierAndRateLimits(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// The broker resolves a sign-in's limit from the tenant's row:
		// what the API stored is what the next sign-in on any node gets.
		limits := ratelimit.NewTenantLimits(ratelimit.Rule{Name: "login_tenant", Limit: 6000, Window: time.Minute})
		limitOf := func(id string) int {
			t.Helper()
			tn, err := e.st.Tenant(store.WithTenant(ctx, id))
			if err != nil {
				t.Fatal(err)
			}
			return limits.RuleOf(tn).Limit
		}
		type limitsOut struct {
			Tier       *string `json:"tier"`
			RateLimits struct {
				SignInPerMinute *int `json:"sign_in_per_minute"`
			} `json:"rate_limits"`
		}
		free := e.createTenant(map[string]any{"name": "Small", "tier": "free"})
		ent := e.createTenant(map[string]any{"name": "Big", "tier": "enterprise"})
		var got limitsOut
		e.must(http.StatusOK, "GET", "/tenants/"+free.ID, nil).decode(t, &got)
		if got.Tier == nil || *got.Tier != "free" || got.RateLimits.SignInPerMinute != nil {
			t.Fatalf("free tenant = %+v", got)
		}
		// Tiers set the default.
		if f, en := limitOf(free.ID), limitOf(ent.ID); f != 600 || en != 12000 {
			t.Fatalf("free %d, enterprise %d sign-ins a minute", f, en)
		}

		// An override applies from the next sign-in.
		e.must(http.StatusOK, "PATCH", "/tenants/"+ent.ID, map[string]any{"rate_limits": map[string]any{"sign_in_per_minute": 42}}).decode(t, &got)
		if got.RateLimits.SignInPerMinute == nil || *got.RateLimits.SignInPerMinute != 42 {
			t.Fatalf("PATCH answered %+v", got)
		}
		if n := limitOf(ent.ID); n != 42 {
			t.Fatalf("after the override the limit is %d, want 42", n)
		}
		rows := e.audits(ent.ID, "tenant.updated")
		var audited struct {
			Changes map[string]struct{ From, To any }
		}
		if len(rows) != 1 || json.Unmarshal(rows[0].Context, &audited) != nil {
			t.Fatalf("audit = %+v", rows)
		}
		if c, ok := audited.Changes["rate_limits.sign_in_per_minute"]; !ok || c.From != nil || c.To != float64(42) {
			t.Fatalf("audited changes = %s", rows[0].Context)
		}
		// Other changes keep it; a tier change keeps it too (an override
		// beats the tier).
		e.must(http.StatusOK, "PATCH", "/tenants/"+ent.ID, map[string]any{"tier": "growth"}).decode(t, &got)
		if got.RateLimits.SignInPerMinute == nil || *got.RateLimits.SignInPerMinute != 42 || limitOf(ent.ID) != 42 {
			t.Fatalf("after a tier change: %+v", got)
		}
		// null clears it: the tier's default is back at once.
		e.must(http.StatusOK, "PATCH", "/tenants/"+ent.ID, `{"rate_limits":{"sign_in_per_minute":null}}`).decode(t, &got)
		if got.RateLimits.SignInPerMinute != nil || limitOf(ent.ID) != 3000 {
			t.Fatalf("after clearing: %+v, limit %d", got, limitOf(ent.ID))
		}
		// A tier change alone applies at once too.
		e.must(http.StatusOK, "PATCH", "/tenants/"+free.ID, map[string]any{"tier": "enterprise"})
		if n := limitOf(free.ID); n != 12000 {
			t.Fatalf("after the upgrade the limit is %d", n)
		}

		for _, body := range []string{
			`{"rate_limits":{"sign_in_per_minute":0}}`,
			`{"rate_limits":{"sign_in_per_minute":-3}}`,
			`{"rate_limits":{"sign_in_per_minute":1.5}}`,
			`{"rate_limits":{"sign_in_per_minute":"10"}}`,
			`{"rate_limits":{"sign_in_per_minute":1000001}}`,
			`{"rate_limits":{"token_per_minute":10}}`,
			`{"tier":"pro"}`,
		} {
			r := e.must(http.StatusBadRequest, "PATCH", "/tenants/"+ent.ID, body)
			if r.err(t).Code != "invalid_request" {
				t.Errorf("%s: %s", body, r.body)
			}
		}
		e.must(http.StatusBadRequest, "POST", "/tenants", map[string]any{"name": "x", "tier": "gold"})
		e.must(http.StatusNotFound, "PATCH", "/tenants/tnt_01JUNKJUNKJUNKJUNKJUNKJUNK", map[string]any{"rate_limits": map[string]any{"sign_in_per_minute": 5}})
		if r := e.call("PATCH", "/tenants/"+ent.ID, map[string]any{"rate_limits": map[string]any{"sign_in_per_minute": 5}}, "Authorization", "Bearer nope"); r.status != http.StatusUnauthorized {
			t.Fatalf("unauthenticated PATCH: %d", r.status)
		}
		if n := limitOf(ent.ID); n != 3000 {
			t.Fatalf("refused PATCHes changed the limit to %d", n)
		}
	})
}
