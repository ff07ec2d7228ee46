package secrets_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/idbroker/idbroker/internal/secrets"
)

func TestNewToken(t *testing.T) {
	re := regexp.MustCompile(`^scim_[0-9A-Za-z]{43}$`)
	seen := make(map[string]bool)
	counts := make(map[rune]int)
	const n = 2000
	for range n {
		tok := secrets.NewToken("scim")
		if !re.MatchString(tok) {
			t.Fatalf("token %q does not match %s", tok, re)
		}
		if seen[tok] {
			t.Fatalf("token repeated: %q", tok)
		}
		seen[tok] = true
		for _, c := range strings.TrimPrefix(tok, "scim_") {
			counts[c]++
		}
	}
	// 86,000 characters over 62 symbols: each is expected ~1387 times. A
	// modulo bias or a stuck alphabet would show up far outside ±30%.
	if len(counts) != 62 {
		t.Errorf("only %d distinct characters used", len(counts))
	}
	for c, k := range counts {
		if k < 970 || k > 1800 {
			t.Errorf("character %q occurs %d times, expected ~1387", c, k)
		}
	}
	if tok := secrets.NewToken(""); len(tok) != 43 || strings.Contains(tok, "_") {
		t.Errorf("NewToken(\"\") = %q", tok)
	}
}

func TestRandomIdentifiers(t *testing.T) {
	tests := []struct {
		name string
		new  func() string
		len  int
	}{
		{"NewHandle", secrets.NewHandle, 32},
		{"NewUniqueID", secrets.NewUniqueID, 22},
		{"NewPassword", secrets.NewPassword, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re := regexp.MustCompile(fmt.Sprintf(`^[0-9A-Za-z]{%d}$`, tt.len))
			seen := make(map[string]bool)
			for range 1000 {
				id := tt.new()
				if !re.MatchString(id) {
					t.Fatalf("%q does not match %s", id, re)
				}
				if seen[id] {
					t.Fatalf("repeated: %q", id)
				}
				seen[id] = true
			}
		})
	}
}

func TestHashTokenAndEqual(t *testing.T) {
	tok := secrets.NewToken("idb_sk")
	h := secrets.HashToken(tok)
	if len(h) != 32 {
		t.Fatalf("hash is %d bytes, want 32", len(h))
	}
	if !secrets.Equal(h, secrets.HashToken(tok)) {
		t.Error("hash of the same token differs")
	}
	if secrets.Equal(h, secrets.HashToken(tok+"x")) {
		t.Error("hashes of different tokens are equal")
	}
	if secrets.Equal(h, h[:31]) || secrets.Equal(nil, h) {
		t.Error("Equal accepted a different length")
	}
	// Known answer, so a change of hash breaks this test, not every stored token.
	if got := secrets.HashToken("abc"); string(got[:4]) != "\xba\x78\x16\xbf" {
		t.Errorf("HashToken(abc) = %x, not SHA-256", got)
	}
}
