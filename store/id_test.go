package store

import (
	"sort"
	"testing"
)

func TestNewIDSortsAndParses(t *testing.T) {
	var ids []string
	seen := map[string]bool{}
	for range 10000 {
		id := NewID(PrefixTenant)
		if !HasPrefix(id, PrefixTenant) {
			t.Fatalf("%q does not parse", id)
		}
		if seen[id] {
			t.Fatalf("duplicate %q", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids minted in order do not sort in order")
	}
}

func TestHasPrefix(t *testing.T) {
	tests := []struct {
		id, prefix string
		want       bool
	}{
		{"tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV", "tnt", true},
		{"tnt_01ARZ3NDEKTSV4RRFFQ69G5FAV", "dom", false},
		{"tnt_01ARZ3NDEKTSV4RRFFQ69G5FA", "tnt", false},
		{"tnt_01ARZ3NDEKTSV4RRFFQ69G5FAU", "tnt", false}, // U is not Crockford
		{"tnt_01arz3ndektsv4rrffq69g5fav", "tnt", false},
		{"' OR 1=1 --", "tnt", false},
		{"", "tnt", false},
	}
	for _, tc := range tests {
		if got := HasPrefix(tc.id, tc.prefix); got != tc.want {
			t.Errorf("HasPrefix(%q, %q) = %v, want %v", tc.id, tc.prefix, got, tc.want)
		}
	}
}
