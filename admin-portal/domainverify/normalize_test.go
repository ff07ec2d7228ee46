package domainverify

import "testing"

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string // want "" means refused
	}{
		{"acme.com", "acme.com"},
		{" ACME.Com. ", "acme.com"},
		{"eu.acme.com", "eu.acme.com"},
		{"acme.co.uk", "acme.co.uk"},
		{"acme.test", "acme.test"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"a-b.example", "a-b.example"},
		{"", ""},
		{".", ""},
		{"acme", ""},
		{"localhost", ""},
		{"idp.localhost", ""},
		{"127.0.0.1", ""},
		{"10.0.0.1", ""},
		{"1.2.3.4.5", ""},
		{"::1", ""},
		{"[::1]", ""},
		{"com", ""},
		{"co.uk", ""},
		{"github.io", ""},
		{"alice@acme.com", ""},
		{"acme.com/path", ""},
		{"acme.com:443", ""},
		{"a..com", ""},
		{"-acme.com", ""},
		{"acme-.com", ""},
		{"ac me.com", ""},
		{"ac_me.com", ""},
		{"acme.com\x00", ""},
		{string(make([]byte, 64)) + ".com", ""},
		{"a23456789012345678901234567890123456789012345678901234567890123.com", "a23456789012345678901234567890123456789012345678901234567890123.com"},
		{"a234567890123456789012345678901234567890123456789012345678901234.com", ""},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Normalize(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzNormalizeDomain(f *testing.F) {
	for _, s := range []string{"acme.com", "bücher.example", "ACME.COM.", "1.2.3.4", "xn--bcher-kva.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Normalize(s)
		if err != nil {
			return
		}
		// The stored form is stable: normalising it again changes nothing.
		again, err := Normalize(got)
		if err != nil || again != got {
			t.Fatalf("Normalize(%q) = %q, then %q, %v", s, got, again, err)
		}
	})
}
