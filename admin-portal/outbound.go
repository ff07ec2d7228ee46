package adminportal

import (
	"cmp"
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/idbroker/idbroker/internal/safehttp"
)

// checkOutboundHost refuses, at registration, a URL the broker will later
// call (a webhook, a back-channel logout URI) when its host is written as
// an address the outbound rule forbids, or is a localhost name: every
// delivery to it would be refused, and the operator learns it now rather
// than from a dead-letter queue. Names are left to the delivery, which
// checks the address after each DNS answer; allowPrivate
// (IDBROKER_ALLOW_PRIVATE_NETWORKS) lifts the rule here as there.
func checkOutboundHost(field string, u *url.URL, allowPrivate bool) error {
	if allowPrivate {
		return nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return invalid(field, "%s names localhost: the broker refuses to call loopback, private, link-local and cloud-metadata addresses (IDBROKER_ALLOW_PRIVATE_NETWORKS=true lifts this for self-hosted receivers)", field)
	}
	if host == "metadata.google.internal" || strings.HasSuffix(host, ".metadata.google.internal") {
		return invalid(field, "%s names the cloud metadata server: the broker refuses to call loopback, private, link-local and cloud-metadata addresses (IDBROKER_ALLOW_PRIVATE_NETWORKS=true lifts this for self-hosted receivers)", field)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		odd, ok := legacyIPv4(host)
		if !ok {
			return nil // a name: checked at each delivery, after resolution
		}
		// 2130706433, 0x7f000001, 127.1 and 0177.0.0.1 are all 127.0.0.1
		// to inet_aton (curl, proxies, some resolvers), though Go reads
		// none of them as an address: refused whatever they decode to,
		// with what they decode to when it is forbidden.
		if err := safehttp.CheckAddr(odd); err != nil {
			return invalid(field, "%s: %s is %s, written in a form the broker does not take; the broker refuses to call loopback, private, link-local and cloud-metadata addresses (IDBROKER_ALLOW_PRIVATE_NETWORKS=true lifts this for self-hosted receivers)", field, host, odd)
		}
		return invalid(field, "%s: write the address %s as four decimal numbers (%s)", field, host, odd)
	}
	if err := safehttp.CheckAddr(addr); err != nil {
		msg := err.Error()
		if errors.Is(err, safehttp.ErrForbiddenAddress) {
			msg = strings.TrimPrefix(msg, safehttp.ErrForbiddenAddress.Error()+": ")
		}
		return invalid(field, "%s: %s; the broker refuses to call loopback, private, link-local and cloud-metadata addresses (IDBROKER_ALLOW_PRIVATE_NETWORKS=true lifts this for self-hosted receivers)", field, msg)
	}
	return nil
}

// legacyIPv4 reads host as inet_aton(3) does: one to four dot-separated
// numbers, each decimal, octal (leading 0) or hex (0x), the last filling
// the bytes left. It reports false for anything else (a name).
func legacyIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		base, digits := 10, p
		switch {
		case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
			base, digits = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		if digits == "" && base != 16 {
			return netip.Addr{}, false
		}
		n, err := strconv.ParseUint(cmp.Or(digits, "0"), base, 32)
		if err != nil || strings.ContainsAny(digits, "+-_") {
			return netip.Addr{}, false
		}
		nums[i] = n
	}
	var v uint64
	for i, n := range nums[:len(nums)-1] {
		if n > 0xff {
			return netip.Addr{}, false
		}
		v |= n << (24 - 8*i)
	}
	last := nums[len(nums)-1]
	if last >= 1<<(32-8*(len(nums)-1)) {
		return netip.Addr{}, false
	}
	v |= last
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}
