package store

import "context"

type tenantKey struct{}

// WithTenant returns a context whose store calls act on tenantID only. It is
// called once per request by the authentication middleware of each surface,
// from the credential, never from a URL alone (operator API keys excepted:
// they are the one cross-tenant credential).
func WithTenant(ctx context.Context, tenantID string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenantID)
}

// TenantFrom reports the tenant set by WithTenant.
func TenantFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(tenantKey{}).(string)
	return id, ok && id != ""
}

// requireTenant is the gate every tenant-scoped call passes first.
func requireTenant(ctx context.Context) (string, error) {
	id, ok := TenantFrom(ctx)
	if !ok {
		return "", ErrNoTenant
	}
	return id, nil
}
