package ratelimit

import (
	"net/netip"

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
// forwarding headers only as the server's IPExtractor allows), an IPv6
// client by its /64 (AddressKey).
func ByIP(c echo.Context) (string, bool) {
	ip := c.RealIP()
	return AddressKey(ip), ip != ""
}

// AddressKey is the bucket of the client address ip: an IPv4 address (or an
// IPv4-mapped IPv6 one) as itself, an IPv6 address as its /64. One
// subscriber, host or cloud instance is given a /64 or more, and picks any
// address in it at will (privacy extensions rotate them on their own), so a
// per-address budget keyed by the full address would be no budget at all,
// and each address a fresh key in Redis. A value that is not an address is
// returned as it is.
func AddressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
