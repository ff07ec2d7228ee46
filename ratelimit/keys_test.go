package ratelimit_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/ratelimit"
)

func TestAddressKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not-an-address", "not-an-address"},
	} {
		if got := ratelimit.AddressKey(tc.in); got != tc.want {
			t.Errorf("AddressKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestByIPSharesAnIPv6Slash64 drives a per-address limit through a real
// server behind a trusted proxy: a client rotating its address within its
// /64 stays in one bucket, another /64 and an IPv4 client have their own.
func TestByIPSharesAnIPv6Slash64(t *testing.T) {
	for name, newLimiter := range limiters(t) {
		t.Run(name, func(t *testing.T) {
			proxy := netip.MustParsePrefix("192.0.2.10/32")
			srv := httpserver.New(httpserver.Config{IPExtractor: httpserver.IPExtractor([]netip.Prefix{proxy})})
			mw := ratelimit.New(newLimiter(t), ratelimit.Options{}).Middleware(ratelimit.Rule{Name: "login", Limit: 2, Window: time.Minute, Key: ratelimit.ByIP})
			srv.Echo().GET("/ok", func(c echo.Context) error { return c.String(http.StatusOK, "ok") }, mw)
			h := srv.Handler()
			from := func(client string) int {
				req := httptest.NewRequest(http.MethodGet, "/ok", nil)
				req.RemoteAddr = "192.0.2.10:4321"
				req.Header.Set("X-Forwarded-For", client)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec.Code
			}
			for i, c := range []struct {
				client string
				want   int
			}{
				{"2001:db8:aa:1::1", http.StatusOK},
				{"2001:db8:aa:1:ffff::2", http.StatusOK},
				{"2001:db8:aa:1:1234:5678:9abc:def0", http.StatusTooManyRequests},
				{"2001:db8:aa:2::1", http.StatusOK},
				{"198.51.100.1", http.StatusOK},
				{"198.51.100.2", http.StatusOK},
			} {
				if got := from(c.client); got != c.want {
					t.Errorf("request %d from %s: status %d, want %d", i+1, c.client, got, c.want)
				}
			}
		})
	}
}
