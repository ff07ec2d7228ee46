package httpserver

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

// ParseTrustedProxies reads a list of proxy addresses and ranges, separated
// by commas or spaces: CIDRs (10.0.0.0/8, fd00::/8) or single addresses,
// which stand for themselves (/32, /128).
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR range (want e.g. 10.0.0.0/8 or fd00::/8)", f)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR range", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ClientIP returns the address of the client that sent r: the TCP peer,
// unless the peer is one of trusted, in which case the forwarding headers
// the proxies appended are walked from the right and the first address that
// is not itself a trusted proxy is the client. X-Forwarded-For is read when
// present, else Forwarded (RFC 7239). Whatever an untrusted peer put in
// those headers is ignored, and so is anything left of the first untrusted
// hop: a client can prepend any address it likes, but cannot get past the
// proxy that appended its real one.
//
// When a hop cannot be parsed (Forwarded's "unknown" or an obfuscated
// name), the walk stops at the last proxy that could be trusted: that is
// the best address known, and a client cannot choose it.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := parsePeer(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := forwardedFor(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseNode(hops[i])
		if !ok {
			break
		}
		client = a
		if !isTrusted(a, trusted) {
			break
		}
	}
	return client.String()
}

// IPExtractor returns the echo.IPExtractor of ClientIP over trusted, for
// Config.IPExtractor: c.RealIP() in every handler, the access log, audit
// rows and rate limits then name the same client.
func IPExtractor(trusted []netip.Prefix) echo.IPExtractor {
	return func(r *http.Request) string { return ClientIP(r, trusted) }
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor lists the hops the proxies recorded, left (farthest) to
// right (nearest), across repeated header lines.
func forwardedFor(h http.Header) []string {
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		var hops []string
		for _, line := range xff {
			for _, v := range strings.Split(line, ",") {
				hops = append(hops, strings.TrimSpace(v))
			}
		}
		return hops
	}
	var hops []string
	for _, line := range h.Values("Forwarded") {
		for _, elem := range splitQuoted(line, ',') {
			for _, pair := range splitQuoted(elem, ';') {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
					hops = append(hops, unquote(strings.TrimSpace(v)))
				}
			}
		}
	}
	return hops
}

// splitQuoted splits s at sep outside double-quoted strings (RFC 7230
// quoted-string, with backslash escapes).
func splitQuoted(s string, sep byte) []string {
	var parts []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unquote removes the quotes and escapes of a quoted-string; a token is
// returned as is.
func unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// parseNode reads one hop: an address, with or without port, IPv6 in
// brackets when a port follows ("[2001:db8::1]:4711", "192.0.2.1:80").
func parseNode(v string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(v); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		if a, err := netip.ParseAddr(v[1 : len(v)-1]); err == nil && a.Zone() == "" {
			return a.Unmap(), true
		}
		return netip.Addr{}, false
	}
	return parseHost(v)
}

// parsePeer reads the TCP peer's address, as net/http's RemoteAddr has
// it. A link-local IPv6 peer carries its zone ("[fe80::1%eth0]:4000"),
// which is dropped: kept, the port came along too, and each connection
// was a client (and a rate-limit bucket) of its own.
func parsePeer(hostport string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// parseHost reads a host:port as net/http's RemoteAddr has it.
func parseHost(hostport string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
