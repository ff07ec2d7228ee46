package safehttp

import (
	"fmt"
	"net/netip"
)

// blockedPrefixes are the networks an outbound request must not reach unless
// private networks are allowed: everything that is not the public Internet.
// netip.Addr's own predicates cover loopback, link-local (which includes the
// cloud metadata address 169.254.169.254), private (RFC 1918 and the IPv6
// ULA fc00::/7, which includes AWS's fd00:ec2::254), unspecified and
// multicast; this list adds the special-purpose ranges they do not.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),         // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),     // CGNAT (RFC 6598); also Alibaba's metadata 100.100.100.200
	netip.MustParsePrefix("192.0.0.0/24"),      // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),      // TEST-NET-1
	netip.MustParsePrefix("198.18.0.0/15"),     // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),   // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),    // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),       // reserved, and broadcast
	netip.MustParsePrefix("::/96"),             // IPv4-compatible (deprecated): some stacks reach ::127.0.0.1 as 127.0.0.1
	netip.MustParsePrefix("100::/64"),          // discard-only
	netip.MustParsePrefix("2001:db8::/32"),     // documentation
	netip.MustParsePrefix("fec0::/10"),         // deprecated site-local
	netip.MustParsePrefix("fd00:ec2::254/128"), // AWS IMDS over IPv6 (also inside ULA; named for clarity)
}

// embeddedV4 lists IPv6 ranges that carry an IPv4 address in their low or
// middle bits; the embedded address is checked too, so that 64:ff9b::7f00:1
// (NAT64 for 127.0.0.1) is refused like 127.0.0.1.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	nat64Loc  = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// CheckAddr reports whether addr is a public unicast address that an
// outbound request may reach. It returns an error wrapping ErrForbiddenAddress
// otherwise.
func CheckAddr(addr netip.Addr) error {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbiddenAddress)
	}
	switch {
	case addr.IsLoopback():
		return forbidden(addr, "loopback")
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return forbidden(addr, "link-local")
	case addr.IsPrivate():
		return forbidden(addr, "private")
	case addr.IsUnspecified():
		return forbidden(addr, "unspecified")
	case addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return forbidden(addr, "multicast")
	}
	for _, p := range blockedPrefixes {
		if p.Contains(addr) {
			return forbidden(addr, "special-purpose")
		}
	}
	if addr.Is6() {
		b := addr.As16()
		var v4 netip.Addr
		switch {
		case nat64.Contains(addr), nat64Loc.Contains(addr):
			// The local-use /48 is read as a /96 inside it, the usual
			// deployment.
			v4 = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case sixToFour.Contains(addr):
			v4 = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
		if v4.IsValid() {
			if err := CheckAddr(v4); err != nil {
				return fmt.Errorf("%w (embedded in %s)", err, addr)
			}
		}
	}
	return nil
}

func forbidden(addr netip.Addr, kind string) error {
	return fmt.Errorf("%w: %s is a %s address", ErrForbiddenAddress, addr, kind)
}
