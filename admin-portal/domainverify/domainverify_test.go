package domainverify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/dnstest"
	"github.com/idbroker/idbroker/store"
)

// TestCheckAgainstLoopbackDNS runs the real lookup, through the resolver
// IDBROKER_DNS_RESOLVER configures, against a DNS server of the test's own.
func TestCheckAgainstLoopbackDNS(t *testing.T) {
	dns := dnstest.Start(t)
	r, err := NewResolver(dns.Addr)
	if err != nil {
		t.Fatal(err)
	}
	d := store.Domain{Domain: "acme.example", VerificationToken: "tok123"}
	name, value := Record(d)
	if name != "_idbroker-verification.acme.example" || value != "idbroker-verification=tok123" {
		t.Fatalf("record %s %s", name, value)
	}
	ctx := context.Background()
	tests := []struct {
		name    string
		records []string
		want    string // "" means verified
	}{
		{"no record", nil, "no TXT record found at _idbroker-verification.acme.example"},
		{"other values", []string{"v=spf1 -all", "idbroker-verification=wrong"}, `does not hold "idbroker-verification=tok123"; found "v=spf1 -all", "idbroker-verification=wrong"`},
		{"match among others", []string{"v=spf1 -all", value}, ""},
		{"long value", []string{strings.Repeat("x", 300), value}, ""},
		{"value in quotes", []string{`"` + value + `"`}, ""},
		{"value and spaces", []string{" " + value + " "}, ""},
		{"value with a prefix", []string{"x" + value}, `does not hold "idbroker-verification=tok123"`},
		{"value with a suffix", []string{value + "4"}, `does not hold "idbroker-verification=tok123"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dns.SetTXT(name, tc.records...)
			err := Check(ctx, r, d, 5*time.Second, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want verified", err)
				}
				return
			}
			var f *Failure
			if !errors.As(err, &f) || !strings.Contains(f.Message, tc.want) {
				t.Fatalf("Check = %v, want a failure saying %q", err, tc.want)
			}
		})
	}
}

func TestNewResolverAddress(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1", "dns.internal", "dns.internal:5353", "resolver"} {
		if _, err := NewResolver(addr); err != nil {
			t.Errorf("NewResolver(%q): %v", addr, err)
		}
	}
	// Addresses no dial can reach are refused here, so that
	// IDBROKER_DNS_RESOLVER stops the start rather than every check.
	for _, addr := range []string{":53", "dns.internal:abc", "10.0.0.53:0", "10.0.0.53:70000", "bad:port:x", "dns internal", "dns..internal", "10.0.0.53:53:53"} {
		if _, err := NewResolver(addr); err == nil {
			t.Errorf("NewResolver(%q) accepted an address no dial can reach", addr)
		}
	}
}

// TestCheckRealResolverShapes: what real DNS answers, through the real
// lookup. One record split into several character-strings (a zone file's
// "a" "b", a provider's 255-byte chunks) is read joined; a CNAME (to a
// provider that hosts the record) is followed; NXDOMAIN says there is no
// record, while SERVFAIL and REFUSED say the lookup failed, to be tried
// again, not that the record is missing.
func TestCheckRealResolverShapes(t *testing.T) {
	dns := dnstest.Start(t)
	r, err := NewResolver(dns.Addr)
	if err != nil {
		t.Fatal(err)
	}
	d := store.Domain{Domain: "acme.example", VerificationToken: strings.Repeat("t", 250)}
	name, value := Record(d)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func()
		want  string // "" means verified
	}{
		{"split at 255 bytes", func() { dns.SetTXTStrings(name, []string{value[:255], value[255:]}) }, ""},
		{"split anywhere", func() {
			dns.SetTXTStrings(name, []string{"idbroker-", "verification=", value[len("idbroker-verification="):]})
		}, ""},
		{"several records", func() { dns.SetTXTStrings(name, []string{"v=spf1", " -all"}, []string{value[:255], value[255:]}) }, ""},
		{"parts in two records", func() {
			dns.SetTXTStrings(name, []string{value[:100]}, []string{value[100:]})
		}, "does not hold"},
		{"CNAME to the provider", func() {
			dns.SetCNAME(name, "verify.provider.example")
			dns.SetTXT("verify.provider.example", value)
		}, ""},
		{"NXDOMAIN", func() { dns.SetTXT(name) }, "no TXT record found"},
		{"SERVFAIL", func() { dns.SetRcode(name, dnstest.RcodeServFail) }, "lookup of TXT " + name + " failed"},
		{"REFUSED", func() { dns.SetRcode(name, dnstest.RcodeRefused) }, "lookup of TXT " + name + " failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			err := Check(ctx, r, d, 5*time.Second, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want verified", err)
				}
				return
			}
			var f *Failure
			if !errors.As(err, &f) || !strings.Contains(f.Message, tc.want) {
				t.Fatalf("Check = %v, want a failure saying %q", err, tc.want)
			}
		})
	}
}
