package connections_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/idbroker/idbroker/connections"
)

// TestOneLine: text an IdP wrote is kept on one line, valid UTF-8, and no
// longer than the bound, whatever is in it.
func TestOneLine(t *testing.T) {
	const bound = 2048
	long := strings.Repeat("é", bound) // two bytes each: the cut falls inside one
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "signature not valid", "signature not valid"},
		{"Entra's trace lines", "AADSTS50105: not assigned.\r\nTrace ID: 1\r\nCorrelation ID: 2", "AADSTS50105: not assigned. Trace ID: 1 Correlation ID: 2"},
		{"control characters and tabs", "a\x00\x1b[31mb\tc", "a [31mb c"},
		{"invalid UTF-8", "a\xffb", "ab"},
		{"cut on a character", long, strings.Repeat("é", bound/2) + "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := connections.OneLine(tc.in, bound)
			if got != tc.want {
				t.Errorf("OneLine(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if !utf8.ValidString(got) || len(got) > bound+len("…") {
				t.Errorf("%d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
			}
		})
	}
}
