package sessions_test

import (
	"errors"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
)

// TestCachedOwner: Owner answers like Get, from the cache once warm, and a
// revocation on another node (the shared store) ends it at once.
func TestCachedOwner(t *testing.T) {
	ctx := t.Context()
	mem := sessions.NewMemory()
	base := &countingStore{Store: mem}
	c := newCached(t, base, 0, 0)
	s := live("ses_owner")
	if err := mem.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		tenant, user, err := c.Owner(ctx, s.ID)
		if err != nil || tenant != s.TenantID || user != s.UserID {
			t.Fatalf("Owner #%d = %q, %q, %v", i+1, tenant, user, err)
		}
	}
	if n := base.gets.Load(); n != 1 {
		t.Fatalf("%d Gets reached the store, want 1", n)
	}
	if err := mem.Revoke(ctx, s.ID); err != nil { // as another node would
		t.Fatal(err)
	}
	// The revocation arrives by subscription: allow it the 100 ms the
	// contract allows every node.
	deadline := time.Now().Add(100 * time.Millisecond)
	for _, _, err := c.Owner(ctx, s.ID); !errors.Is(err, sessions.ErrNotFound); _, _, err = c.Owner(ctx, s.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("Owner 100 ms after revocation = %v, want ErrNotFound", err)
		}
		time.Sleep(time.Millisecond)
	}
	if _, _, err := c.Owner(ctx, "ses_unknown"); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("Owner(unknown) = %v, want ErrNotFound", err)
	}
}
