package ratelimit

import (
	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
)

// ByTenant keys a request by the tenant its authentication set: the store's
// tenant scope, else the tenant recorded for the access log. Requests with
// no tenant yet are not counted.
func ByTenant(c echo.Context) (string, bool) {
	ctx := c.Request().Context()
	if t, ok := store.TenantFrom(ctx); ok && t != "" {
		return t, true
	}
	t := httpserver.TenantID(ctx)
	return t, t != ""
}

// ByIP keys a request by the client address (echo's RealIP, which trusts
// forwarding headers only as the server's IPExtractor allows).
func ByIP(c echo.Context) (string, bool) {
	ip := c.RealIP()
	return ip, ip != ""
}
