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
	// A TTL far beyond the wait below: only the subscription can end
	// the cached answer in time.
	c := newCached(t, base, time.Minute, 0)
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
	// The revocation arrives by subscription, well before the cache's
	// TTL; the contract's 100 ms is a latency target for the benchmarks,
	// and a loaded machine may stall one delivery, so the wait here is
	// generous.
	deadline := time.Now().Add(20 * time.Second)
	for _, _, err := c.Owner(ctx, s.ID); !errors.Is(err, sessions.ErrNotFound); _, _, err = c.Owner(ctx, s.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("Owner 20 s after revocation = %v, want ErrNotFound", err)
		}
		time.Sleep(time.Millisecond)
	}
	if _, _, err := c.Owner(ctx, "ses_unknown"); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("Owner(unknown) = %v, want ErrNotFound", err)
	}
}
