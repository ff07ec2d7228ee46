package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/idbroker/idbroker/sessions"
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

// DefaultTenantLimitTTL is how long a tenant's resolved limit is kept in
// the shared cache. A change through the operator API forgets it at once;
// the TTL only bounds a change made behind the API's back.
const DefaultTenantLimitTTL = 5 * time.Minute

// TenantReader reads the tenant in ctx (*store.DB).
type TenantReader interface {
	Tenant(ctx context.Context) (store.Tenant, error)
}

// TenantLimitsConfig configures TenantLimits.
type TenantLimitsConfig struct {
	// Cache keeps each tenant's resolved limit, shared by every node
	// (Redis in production), so that forgetting it on one node forgets it
	// on all. Required.
	Cache sessions.OnceCache
	// Store reads a tenant's tier and override. Required.
	Store TenantReader
	// Default is the rule of a tenant with neither tier nor override; its
	// Name names every tenant's bucket. A disabled Default still lets
	// tiers and overrides limit.
	Default Rule
	// TTL bounds how long a resolved limit is reused; 0 means
	// DefaultTenantLimitTTL.
	TTL time.Duration
	// Logger receives failures to read a limit (the default then
	// applies). Nil discards.
	Logger *slog.Logger
}

// TenantLimits resolves each tenant's sign-in budget: the tenant's
// override, else its tier's default, else the deployment's rule.
//
// A caller holding the tenant's row resolves from it (RuleOf, CheckTenant:
// the broker, whose routing reads the row on every sign-in). A caller with
// only the tenant's ID goes through Rule and Check, which keep the
// resolved limit in the shared cache rather than in each node's memory,
// so that a change applies on every node from the next sign-in: the
// operator API calls Forget, which deletes the one shared copy.
type TenantLimits struct {
	cfg TenantLimitsConfig
}

// NewTenantLimits returns TenantLimits over cfg.
func NewTenantLimits(cfg TenantLimitsConfig) (*TenantLimits, error) {
	if cfg.Cache == nil || cfg.Store == nil {
		return nil, errors.New("ratelimit: TenantLimits needs a Cache and a Store")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTenantLimitTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Default.Name == "" {
		cfg.Default.Name = "login_tenant"
	}
	return &TenantLimits{cfg: cfg}, nil
}

func tenantLimitKey(tenantID string) string { return "ratelimit:tenant:" + tenantID }

// Rule returns the sign-in rule of tenantID. When the cache and the store
// both fail it returns the deployment's rule: a limit is no reason to
// refuse a sign-in.
func (l *TenantLimits) Rule(ctx context.Context, tenantID string) Rule {
	r := l.cfg.Default
	if b, err := l.cfg.Cache.Peek(ctx, tenantLimitKey(tenantID)); err == nil {
		if n, w, ok := decodeLimit(string(b)); ok {
			r.Limit, r.Window = n, w
			return r
		}
	}
	tn, err := l.cfg.Store.Tenant(store.WithTenant(ctx, tenantID))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			l.cfg.Logger.WarnContext(ctx, "tenant rate limit unreadable: the default applies", "tenant_id", tenantID, "err", err)
		}
		return r
	}
	r.Limit, r.Window = resolve(tn, l.cfg.Default)
	// Best effort: a cache that fails costs a store read next time.
	_ = l.cfg.Cache.Put(ctx, tenantLimitKey(tenantID), []byte(encodeLimit(r.Limit, r.Window)), l.cfg.TTL)
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

// Check spends one sign-in of tenantID's budget through g; see Guard.Check.
func (l *TenantLimits) Check(ctx context.Context, g *Guard, tenantID string) (bool, time.Duration) {
	return g.Check(ctx, l.Rule(ctx, tenantID), tenantID)
}

// RuleOf returns the sign-in rule of tenant t as read by the caller, with
// neither the cache nor the store asked.
func (l *TenantLimits) RuleOf(t store.Tenant) Rule {
	r := l.cfg.Default
	r.Limit, r.Window = resolve(t, l.cfg.Default)
	return r
}

// CheckTenant is Check for a caller that has just read the tenant's row:
// routing a sign-in reads it on every sign-in to check its status, so its
// tier and override are as fresh as anything the cache could hold (a
// change applies on every node from the next sign-in, Forget or not), and
// the sign-in costs the limiter's one round trip instead of a cache read
// before it.
func (l *TenantLimits) CheckTenant(ctx context.Context, g *Guard, t store.Tenant) (bool, time.Duration) {
	return g.Check(ctx, l.RuleOf(t), t.ID)
}

// Forget drops the cached limit of tenantID, on every node at once: the
// next sign-in reads the tenant again. Call it after a change of its tier
// or override has committed.
func (l *TenantLimits) Forget(ctx context.Context, tenantID string) error {
	if _, err := l.cfg.Cache.Take(ctx, tenantLimitKey(tenantID)); err != nil && !errors.Is(err, sessions.ErrNotFound) {
		return fmt.Errorf("ratelimit: forget the limit of %s: %w", tenantID, err)
	}
	return nil
}

// encodeLimit and decodeLimit are the cached form: "limit/window-in-ms"
// ("0/0" for no limit).
func encodeLimit(n int, w time.Duration) string {
	return strconv.Itoa(n) + "/" + strconv.FormatInt(w.Milliseconds(), 10)
}

func decodeLimit(s string) (int, time.Duration, bool) {
	a, b, ok := strings.Cut(s, "/")
	n, err1 := strconv.Atoi(a)
	ms, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || n < 0 || ms < 0 {
		return 0, 0, false
	}
	return n, time.Duration(ms) * time.Millisecond, true
}
