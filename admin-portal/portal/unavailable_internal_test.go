package portal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestUnavailable: every way a dependency outage reaches a portal handler
// is a 503 page, not a 500 (the portal once knew only *net.OpError, so a
// PostgreSQL shutting down answered 500).
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"store unavailable", fmt.Errorf("load: %w", store.ErrUnavailable), true},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"net error", &net.OpError{Op: "read", Err: errors.New("reset")}, true},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), true},
		{"client went away", context.Canceled, false},
		{"not found", store.ErrNotFound, false},
		{"bug", errors.New("nil map"), false},
	} {
		if got := unavailable(tc.err); got != tc.want {
			t.Errorf("%s: unavailable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
