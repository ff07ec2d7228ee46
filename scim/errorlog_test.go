package scim

import (
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

func TestRedactPath(t *testing.T) {
	dir, usr, grp := store.NewID(store.PrefixDirectory), store.NewID(store.PrefixUser), store.NewID(store.PrefixGroup)
	for in, want := range map[string]string{
		"/scim/v2/DIR/Users":                               "/scim/v2/DIR/Users",
		"/scim/v2/DIR/Users/USR":                           "/scim/v2/DIR/Users/USR",
		"/scim/v2/DIR/Users/alice@example.com":             "/scim/v2/DIR/Users/…",
		"/scim/v2/DIR/Users/usr_short":                     "/scim/v2/DIR/Users/…",
		"/scim/v2/DIR/Groups/GRP/extra/secret":             "/scim/v2/DIR/Groups/GRP/…/…",
		"/scim/v2/DIR/Schemas/urn:ietf:params:scim:x:User": "/scim/v2/DIR/Schemas/urn:ietf:params:scim:x:User",
	} {
		r := strings.NewReplacer("DIR", dir, "USR", usr, "GRP", grp)
		in, want = r.Replace(in), r.Replace(want)
		if got := redactPath(in); got != want {
			t.Errorf("redactPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestErrorLogSamples: a storm records a burst per directory per window,
// then nothing until the next window; directories do not share a budget.
func TestErrorLogSamples(t *testing.T) {
	var l errorLog
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range errorLogBurst {
		if !l.allow("dir_a", t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("error %d of the burst refused", i)
		}
	}
	if l.allow("dir_a", t0.Add(time.Second)) {
		t.Fatal("recorded past the burst")
	}
	if !l.allow("dir_b", t0.Add(time.Second)) {
		t.Fatal("another directory shares the burst")
	}
	if !l.allow("dir_a", t0.Add(errorLogWindow)) {
		t.Fatal("the next window is refused")
	}
	if len(l.counts) != 1 {
		t.Fatalf("the map keeps %d directories of past windows", len(l.counts))
	}
}
