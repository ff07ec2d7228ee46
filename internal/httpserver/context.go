package httpserver

import (
	"context"
	"sync/atomic"
)

type requestKey struct{}

// requestInfo travels in the request context. The tenant is filled in later
// by whichever authentication middleware learns it, and read back by the
// access log once the handler returns, hence the atomic.
type requestInfo struct {
	id       string
	tenantID atomic.Pointer[string]
}

func withRequestInfo(ctx context.Context, info *requestInfo) context.Context {
	return context.WithValue(ctx, requestKey{}, info)
}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestKey{}).(*requestInfo)
	return info
}

// RequestID returns the id of the request ctx belongs to, or "" outside a
// request served by a Server.
func RequestID(ctx context.Context) string {
	if info := infoFrom(ctx); info != nil {
		return info.id
	}
	return ""
}

// SetTenantID records the tenant a request acts on, for its access log
// line. Authentication middleware calls it once the credential names the
// tenant; it does not scope any store call (store.WithTenant does). Outside
// a request served by a Server it does nothing.
func SetTenantID(ctx context.Context, tenantID string) {
	if info := infoFrom(ctx); info != nil {
		info.tenantID.Store(&tenantID)
	}
}

// TenantID returns the tenant recorded by SetTenantID, or "".
func TenantID(ctx context.Context) string {
	if info := infoFrom(ctx); info != nil {
		if p := info.tenantID.Load(); p != nil {
			return *p
		}
	}
	return ""
}
