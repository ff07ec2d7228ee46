package saml

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestSAMLLibraryVersions fails the build when go.mod pins crewjam/saml or
// goxmldsig below the versions that closed their signature-wrapping and
// NameID-spoofing holes.
func TestSAMLLibraryVersions(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mins := map[string]string{"github.com/crewjam/saml": "v0.6.3", "github.com/russellhaering/goxmldsig": "v1.6.1"}
	found := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			if f[0] == "require" && len(f) >= 3 {
				f = f[1:]
			}
			if _, ok := mins[f[0]]; ok {
				found[f[0]] = f[1]
			}
		}
	}
	for mod, min := range mins {
		v, ok := found[mod]
		if !ok {
			t.Errorf("go.mod does not require %s", mod)
			continue
		}
		if !atLeast(v, min) {
			t.Errorf("go.mod requires %s %s; it must be %s or later", mod, v, min)
		}
	}
}

// atLeast compares vMAJOR.MINOR.PATCH versions (pre-release suffixes and
// pseudo-versions sort by their base version).
func atLeast(v, min string) bool {
	parse := func(s string) (out [3]int, ok bool) {
		s = strings.TrimPrefix(s, "v")
		if i := strings.IndexAny(s, "-+"); i >= 0 {
			s = s[:i]
		}
		parts := strings.Split(s, ".")
		if len(parts) != 3 {
			return out, false
		}
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil {
				return out, false
			}
			out[i] = n
		}
		return out, true
	}
	a, ok1 := parse(v)
	b, ok2 := parse(min)
	if !ok1 || !ok2 {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}

func TestAtLeast(t *testing.T) {
	for _, tt := range []struct {
		v, min string
		want   bool
	}{{"v0.6.3", "v0.6.3", true}, {"v0.6.2", "v0.6.3", false}, {"v0.7.0", "v0.6.3", true}, {"v1.6.0", "v1.6.1", false},
		{"v1.10.0", "v1.6.1", true}, {"v0.5.9-0.20200101-abcdef", "v0.6.3", false}, {"garbage", "v0.6.3", false}} {
		if got := atLeast(tt.v, tt.min); got != tt.want {
			t.Errorf("atLeast(%s, %s) = %v", tt.v, tt.min, got)
		}
	}
}
