package events

import (
	"slices"
	"testing"
)

func TestTypesSorted(t *testing.T) {
	if !slices.IsSorted(types) {
		t.Fatal("types must stay sorted: KnownType searches them")
	}
	for _, typ := range types {
		if !KnownType(typ) {
			t.Errorf("KnownType(%q) = false", typ)
		}
	}
	for _, typ := range []string{"", AllTypes, "dsync.user", "DSYNC.USER.CREATED", "dsync.user.created "} {
		if KnownType(typ) {
			t.Errorf("KnownType(%q) = true", typ)
		}
	}
}
