package httpserver_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/idbroker/idbroker/internal/httpserver"
)

func TestClientIP(t *testing.T) {
	trusted, err := httpserver.ParseTrustedProxies("10.0.0.0/8, 192.0.2.10 fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		peer    string
		xff     []string
		fwd     []string
		trusted bool // use the trusted list (else none)
		want    string
	}{
		{name: "direct client", peer: "203.0.113.5:4000", want: "203.0.113.5"},
		{name: "spoofed XFF from an untrusted peer", peer: "203.0.113.5:4000", xff: []string{"1.2.3.4"}, trusted: true, want: "203.0.113.5"},
		{name: "spoofed Forwarded from an untrusted peer", peer: "203.0.113.5:4000", fwd: []string{"for=1.2.3.4"}, trusted: true, want: "203.0.113.5"},
		{name: "headers ignored when nothing is trusted", peer: "10.0.0.1:4000", xff: []string{"198.51.100.7"}, want: "10.0.0.1"},
		{name: "one trusted proxy", peer: "10.0.0.1:4000", xff: []string{"198.51.100.7"}, trusted: true, want: "198.51.100.7"},
		{name: "client-prepended hop is not believed", peer: "10.0.0.1:4000", xff: []string{"1.2.3.4, 198.51.100.7"}, trusted: true, want: "198.51.100.7"},
		{name: "several trusted hops", peer: "10.0.0.1:4000", xff: []string{"1.2.3.4, 198.51.100.7, 192.0.2.10, 10.1.2.3"}, trusted: true, want: "198.51.100.7"},
		{name: "repeated XFF lines are one list", peer: "10.0.0.1:4000", xff: []string{"1.2.3.4", "198.51.100.7, 10.9.9.9"}, trusted: true, want: "198.51.100.7"},
		{name: "all hops trusted: the farthest", peer: "10.0.0.1:4000", xff: []string{"10.2.2.2, 10.3.3.3"}, trusted: true, want: "10.2.2.2"},
		{name: "empty XFF: the peer", peer: "10.0.0.1:4000", xff: []string{""}, trusted: true, want: "10.0.0.1"},
		{name: "garbage hop stops at the last trusted one", peer: "10.0.0.1:4000", xff: []string{"198.51.100.7, nonsense, 10.1.1.1"}, trusted: true, want: "10.1.1.1"},
		{name: "IPv6 peer and client", peer: "[fd00::1]:4000", xff: []string{"2001:db8::7"}, trusted: true, want: "2001:db8::7"},
		{name: "IPv6 untrusted peer", peer: "[2001:db8::99]:4000", xff: []string{"2001:db8::7"}, trusted: true, want: "2001:db8::99"},
		{name: "link-local IPv6 peer loses its zone and port", peer: "[fe80::1%eth0]:4000", want: "fe80::1"},
		{name: "IPv4-mapped peer is matched as IPv4", peer: "[::ffff:10.0.0.1]:4000", xff: []string{"198.51.100.7"}, trusted: true, want: "198.51.100.7"},
		{name: "XFF hop with port", peer: "10.0.0.1:4000", xff: []string{"198.51.100.7:5555"}, trusted: true, want: "198.51.100.7"},
		{name: "XFF IPv6 hop in brackets", peer: "10.0.0.1:4000", xff: []string{"[2001:db8::7]"}, trusted: true, want: "2001:db8::7"},
		{name: "Forwarded", peer: "10.0.0.1:4000", fwd: []string{"for=198.51.100.7;proto=https;by=10.0.0.1"}, trusted: true, want: "198.51.100.7"},
		{name: "Forwarded quoted IPv6 with port", peer: "10.0.0.1:4000", fwd: []string{`for="[2001:db8:cafe::17]:4711"`}, trusted: true, want: "2001:db8:cafe::17"},
		{name: "Forwarded quoted IPv4 with port", peer: "10.0.0.1:4000", fwd: []string{`For="198.51.100.7:80"`}, trusted: true, want: "198.51.100.7"},
		{name: "Forwarded several elements and lines", peer: "10.0.0.1:4000", fwd: []string{`for=1.2.3.4, for="198.51.100.7"`, "for=10.5.5.5;host=x"}, trusted: true, want: "198.51.100.7"},
		{name: "Forwarded quoted comma does not split", peer: "10.0.0.1:4000", fwd: []string{`for=198.51.100.7;host="a,b", for=10.5.5.5`}, trusted: true, want: "198.51.100.7"},
		{name: "Forwarded unknown stops at the last trusted hop", peer: "10.0.0.1:4000", fwd: []string{"for=unknown, for=10.5.5.5"}, trusted: true, want: "10.5.5.5"},
		{name: "Forwarded obfuscated identifier", peer: "10.0.0.1:4000", fwd: []string{"for=_hidden"}, trusted: true, want: "10.0.0.1"},
		{name: "X-Forwarded-For wins over Forwarded", peer: "10.0.0.1:4000", xff: []string{"198.51.100.7"}, fwd: []string{"for=1.2.3.4"}, trusted: true, want: "198.51.100.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tc.fwd {
				r.Header.Add("Forwarded", v)
			}
			list := trusted
			if !tc.trusted {
				list = nil
			}
			if got := httpserver.ClientIP(r, list); got != tc.want {
				t.Errorf("ClientIP = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "10.0.0.0/8", want: []string{"10.0.0.0/8"}},
		{in: "10.1.2.3/8,192.0.2.1  2001:db8::/32", want: []string{"10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32"}},
		{in: "::ffff:10.0.0.1", want: []string{"10.0.0.1/32"}},
		{in: "10.0.0.0/33", wantErr: true},
		{in: "proxy.internal", wantErr: true},
	} {
		got, err := httpserver.ParseTrustedProxies(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseTrustedProxies(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if len(s) != len(tc.want) {
			t.Errorf("ParseTrustedProxies(%q) = %v, want %v", tc.in, s, tc.want)
			continue
		}
		for i := range s {
			if s[i] != tc.want[i] {
				t.Errorf("ParseTrustedProxies(%q) = %v, want %v", tc.in, s, tc.want)
			}
		}
	}
}
