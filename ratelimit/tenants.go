package ratelimit

import (
	"context"
	"time"

	"github.com/idbroker/idbroker/store"
)

// TierSignInsPerMinute are the default per-tenant sign-in limits of the
// service tiers. A tenant without a tier gets the deployment's rule
// (IDBROKER_RATE_LIMIT_LOGIN_TENANT); an operator's override beats both.
var TierSignInsPerMinute = map[string]int{
	store.TierFree:       600,
	store.TierGrowth:     3000,
	store.TierEnterprise: 12000,
}

// TenantLimits resolves each tenant's sign-in budget from the tenant's
// row: its override, else its tier's default, else the deployment's rule.
//
// It reads nothing itself. Its caller, the broker's routing, reads the
// row on every sign-in anyway (for the tenant's status), so a change of
// tier or override applies on every node from the next sign-in, however
// it was made, and the check costs only the limiter's own round trip.
type TenantLimits struct {
	def Rule
}

// NewTenantLimits returns TenantLimits whose tenants without tier or
// override get def. def's Name ("login_tenant" when empty) names every
// tenant's bucket; a disabled def still lets tiers and overrides limit.
func NewTenantLimits(def Rule) *TenantLimits {
	if def.Name == "" {
		def.Name = "login_tenant"
	}
	return &TenantLimits{def: def}
}

// RuleOf returns the sign-in rule of tenant t, as its caller read it.
func (l *TenantLimits) RuleOf(t store.Tenant) Rule {
	r := l.def
	r.Limit, r.Window = resolve(t, l.def)
	return r
}

// resolve picks the override, else the tier's default, else def.
func resolve(t store.Tenant, def Rule) (int, time.Duration) {
	if t.SignInPerMinute > 0 {
		return t.SignInPerMinute, time.Minute
	}
	if n, ok := TierSignInsPerMinute[t.Tier]; ok {
		return n, time.Minute
	}
	return def.Limit, def.Window
}

// CheckTenant spends one sign-in of tenant t's budget through g, against
// RuleOf(t); see Guard.Check.
func (l *TenantLimits) CheckTenant(ctx context.Context, g *Guard, t store.Tenant) (bool, time.Duration) {
	return g.Check(ctx, l.RuleOf(t), t.ID)
}
