package sessionstest

import (
	"errors"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
)

// testPeek: Peek reads a one-time value without spending it, and sees
// nothing that Take, the TTL or Remember's namespace would not give.
func testPeek(t *testing.T, impl Impl) {
	ctx := t.Context()
	if _, err := impl.Once.Peek(ctx, "never-put"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Peek(unknown) = %v, want ErrNotFound", err)
	}
	if err := impl.Once.Put(ctx, "refresh", []byte("grant"), time.Minute); err != nil {
		t.Fatalf("Put: %v", err)
	}
	for i := range 2 {
		got, err := impl.Once.Peek(ctx, "refresh")
		if err != nil || string(got) != "grant" {
			t.Fatalf("Peek #%d = %q, %v; want %q", i+1, got, err, "grant")
		}
		got[0] = 'X' // the caller's copy; the stored value must not change
	}
	if got, err := impl.Once.Take(ctx, "refresh"); err != nil || string(got) != "grant" {
		t.Errorf("Take after Peek = %q, %v; want the value, unspent", got, err)
	}
	if _, err := impl.Once.Peek(ctx, "refresh"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Peek after Take = %v, want ErrNotFound", err)
	}

	if ok, err := impl.Once.Remember(ctx, "remembered", time.Minute); err != nil || !ok {
		t.Fatalf("Remember = %v, %v", ok, err)
	}
	if _, err := impl.Once.Peek(ctx, "remembered"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Peek(remembered key) = %v, want ErrNotFound", err)
	}

	if err := impl.Once.Put(ctx, "short", []byte("x"), 100*time.Millisecond); err != nil {
		t.Fatalf("Put: %v", err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := impl.Once.Peek(ctx, "short"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Peek after TTL = %v, want ErrNotFound", err)
	}
}
