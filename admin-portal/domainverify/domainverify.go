// Package domainverify proves that a tenant controls an email domain: it
// names the DNS TXT record the tenant must publish and looks it up. The
// operator API (POST /api/v1/tenants/{id}/domains/{dom}/verify) and the
// self-serve portal's Verify button both use it, so they agree on the
// record and on what a failed check says.
package domainverify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"

	"github.com/idbroker/idbroker/store"
)

// The record lives under a label of its own, so it sits beside the
// domain's other TXT records (SPF, other vendors' proofs) without touching
// them.
const (
	label       = "_idbroker-verification"
	valuePrefix = "idbroker-verification="
)

// DefaultTimeout bounds one lookup.
const DefaultTimeout = 10 * time.Second

// Record returns the TXT record that proves control of d.
func Record(d store.Domain) (name, value string) {
	return label + "." + d.Domain, valuePrefix + d.VerificationToken
}

// Resolver looks up DNS TXT records; *net.Resolver satisfies it.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// NewResolver returns the system resolver when addr is empty, else one
// that asks only the DNS server at addr ("host:port", or a host on port
// 53): IDBROKER_DNS_RESOLVER, for split-horizon DNS and for tests that run
// their own server.
func NewResolver(addr string) (*net.Resolver, error) {
	if addr == "" {
		return net.DefaultResolver, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "53")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("domainverify: resolver address %q: %w", addr, err)
	}
	// Check what a dial would only find out at the first verification, so
	// that a typo stops the start instead of failing every check later.
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("domainverify: resolver address %q: port %q is not a number from 1 to 65535", addr, port)
	}
	if _, err := netip.ParseAddr(host); err != nil && !hostName(host) {
		return nil, fmt.Errorf("domainverify: resolver address %q: %q is neither an IP address nor a host name", addr, host)
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}, nil
}

// hostName reports whether s can be a DNS host name: dot-separated labels
// of letters, digits, hyphens and underscores.
func hostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Failure is a check that found no matching record, or could not look.
// Its message is meant for the person who publishes the record.
type Failure struct{ Message string }

func (f *Failure) Error() string { return f.Message }

// Check looks up d's record and returns nil when it holds the expected
// value, else a *Failure saying what was expected and what DNS answered.
// Errors a DNS lookup may carry (our resolvers' addresses) are not in the
// message; log is told them, when not nil.
func Check(ctx context.Context, r Resolver, d store.Domain, timeout time.Duration, log func(msg string, args ...any)) error {
	name, want := Record(d)
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	records, err := r.LookupTXT(lctx, name)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return failf("no TXT record found at %s; publish %q there and try again", name, want)
		}
		if log != nil {
			log("domain verification lookup failed", "record", name, "error", err)
		}
		return failf("the DNS lookup of TXT %s failed (%s); try again shortly", name, lookupReason(err))
	}
	for _, r := range records {
		// A value pasted with its quotes into a DNS console that stores
		// them as text is still the value: the token proves control
		// either way.
		v := strings.TrimSpace(r)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = strings.TrimSpace(v[1 : len(v)-1])
		}
		if v == want {
			return nil
		}
	}
	if len(records) == 0 {
		return failf("no TXT record found at %s; publish %q there and try again", name, want)
	}
	return failf("TXT %s does not hold %q; found %s", name, want, quoteSome(records, 5))
}

func failf(format string, args ...any) *Failure {
	return &Failure{Message: fmt.Sprintf(format, args...)}
}

// lookupReason says why a lookup failed without echoing resolver
// internals (addresses of our DNS servers).
func lookupReason(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.As(err, &dnsErr) && dnsErr.IsTimeout:
		return "timed out"
	case errors.As(err, &dnsErr) && dnsErr.IsTemporary:
		return "temporary DNS failure"
	}
	return "DNS error"
}

// quoteSome lists up to n values, each shortened, for an error message.
func quoteSome(values []string, n int) string {
	var b strings.Builder
	for i, v := range values {
		if i == n {
			fmt.Fprintf(&b, " and %d more", len(values)-n)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if len(v) > 100 {
			v = strings.ToValidUTF8(v[:100], "") + "…"
		}
		fmt.Fprintf(&b, "%q", v)
	}
	return b.String()
}

// Normalize returns the stored form of an email domain: lower case,
// ASCII (IDNA), no trailing dot. It refuses what cannot be a tenant's own
// registrable host name: IP addresses, single labels, localhost and public
// suffixes such as "com" or "co.uk", which no tenant can own. Its errors
// are sentences for the person who typed the domain.
func Normalize(s string) (string, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if s == "" {
		return "", errors.New("domain is required")
	}
	if strings.ContainsAny(s, "@/:") {
		return "", fmt.Errorf("%q is not a domain name (give only the part after @)", s)
	}
	if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return "", fmt.Errorf("%q is an IP address, not a domain name", s)
	}
	if !utf8.ValidString(s) {
		return "", errors.New("domain is not valid UTF-8")
	}
	ascii := store.NormalizeDomain(s)
	if ascii == "" {
		return "", fmt.Errorf("%q is not a valid domain name", s)
	}
	if !strings.Contains(ascii, ".") {
		return "", fmt.Errorf("%q is not a fully qualified domain name", s)
	}
	if ascii == "localhost" || strings.HasSuffix(ascii, ".localhost") {
		return "", fmt.Errorf("%q is reserved for the local host", s)
	}
	// A dotted quad fails IDNA checks on some profiles and not others;
	// a numeric top-level label is never a real domain either way.
	if tld := ascii[strings.LastIndexByte(ascii, '.')+1:]; strings.Trim(tld, "0123456789") == "" {
		return "", fmt.Errorf("%q is not a domain name", s)
	}
	if _, err := publicsuffix.EffectiveTLDPlusOne(ascii); err != nil {
		return "", fmt.Errorf("%q is a public suffix, which no single organisation owns", s)
	}
	return ascii, nil
}
