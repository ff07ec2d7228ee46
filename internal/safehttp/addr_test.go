package safehttp

import (
	"errors"
	"net/netip"
	"testing"
)

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"2606:4700:4700::1111", true},
		{"127.0.0.1", false},
		{"127.9.9.9", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.168.1.1", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"fd00:ec2::254", false},   // AWS IMDS IPv6
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"100.64.0.1", false},      // CGNAT
		{"100.100.100.200", false}, // Alibaba metadata, inside CGNAT
		{"0.0.0.0", false},
		{"::", false},
		{"224.0.0.1", false},
		{"ff02::1", false},
		{"255.255.255.255", false},
		{"::ffff:127.0.0.1", false}, // IPv4-mapped loopback
		{"::ffff:169.254.169.254", false},
		{"64:ff9b::7f00:1", false},   // NAT64 of 127.0.0.1
		{"64:ff9b::808:808", true},   // NAT64 of 8.8.8.8
		{"64:ff9b:1::7f00:1", false}, // local-use NAT64 of 127.0.0.1
		{"2002:a00:1::", false},      // 6to4 of 10.0.0.1
		// IPv4-compatible (deprecated, RFC 4291 2.5.5.1): some stacks
		// route ::127.0.0.1 to 127.0.0.1; no public host has one.
		{"::127.0.0.1", false},
		{"::a00:1", false},
		{"::808:808", false},
		{"198.18.0.1", false},
		{"172.32.0.1", true}, // just outside 172.16/12
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := CheckAddr(netip.MustParseAddr(tt.addr))
			if tt.ok && err != nil {
				t.Fatalf("CheckAddr(%s) = %v, want nil", tt.addr, err)
			}
			if !tt.ok && !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("CheckAddr(%s) = %v, want ErrForbiddenAddress", tt.addr, err)
			}
		})
	}
}
