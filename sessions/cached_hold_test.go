package sessions_test

import (
	"context"
	"testing"

	"github.com/idbroker/idbroker/sessions"
)

// TestCachedHold: while held, the cache is empty and stays so, every Get
// and Owner reaching the store (which may have ended the session without
// this node hearing); released, it caches again.
func TestCachedHold(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: sessions.NewMemory()}
	c := newCached(t, st, 0, 0)
	if err := c.Create(ctx, live("ses_1")); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name     string
		hold     *bool
		wantGets int32 // Gets reaching the store for two reads
	}{
		{"cached", nil, 0},
		{"held", ptr(true), 2},
		{"held twice", ptr(true), 2},
		{"released", ptr(false), 1},
		{"cached again", nil, 0},
	} {
		if step.hold != nil {
			c.Hold(*step.hold)
		}
		before := st.gets.Load()
		if _, err := c.Get(ctx, "ses_1"); err != nil {
			t.Fatalf("%s: Get: %v", step.name, err)
		}
		if _, _, _, err := c.Owner(ctx, "ses_1", "app_1"); err != nil {
			t.Fatalf("%s: Owner: %v", step.name, err)
		}
		if got := st.gets.Load() - before; got != step.wantGets {
			t.Errorf("%s: %d Gets reached the store, want %d", step.name, got, step.wantGets)
		}
	}
	// A session created while held is not cached either.
	c.Hold(true)
	if err := c.Create(ctx, live("ses_2")); err != nil {
		t.Fatal(err)
	}
	before := st.gets.Load()
	if _, err := c.Get(ctx, "ses_2"); err != nil || st.gets.Load() == before {
		t.Errorf("Get of a session created while held: err %v, store asked %d times; want it asked", err, st.gets.Load()-before)
	}
}

func ptr[T any](v T) *T { return &v }
