package portal

import (
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// TestLinkLastsItsWholeFiveMinutes opens links at the edges of their five
// minutes, created at every part of a second: a link sent at 12:00:00.9
// must still open at 12:04:59.95 (it was cut to 4 min 59.1 s when its
// expiry was truncated to the second), and no longer at 12:05:00.9.
func TestLinkLastsItsWholeFiveMinutes(t *testing.T) {
	base := time.Date(2026, 12, 31, 23, 58, 0, 0, time.UTC)
	tests := []struct {
		name     string
		fraction time.Duration // of the second the link is created in
		after    time.Duration // since its creation, when it is opened
		want     int
	}{
		{"whole second, just inside", 0, 5*time.Minute - 50*time.Millisecond, http.StatusSeeOther},
		{"whole second, at five minutes", 0, 5 * time.Minute, http.StatusGone},
		{"late in its second, just inside", 900 * time.Millisecond, 5*time.Minute - 50*time.Millisecond, http.StatusSeeOther},
		{"late in its second, a microsecond inside", 900 * time.Millisecond, 5*time.Minute - time.Microsecond, http.StatusSeeOther},
		{"late in its second, at five minutes", 900 * time.Millisecond, 5 * time.Minute, http.StatusGone},
		{"early in its second, just inside", 100 * time.Millisecond, 5*time.Minute - 50*time.Millisecond, http.StatusSeeOther},
		{"early in its second, past five minutes", 100 * time.Millisecond, 5*time.Minute + time.Millisecond, http.StatusGone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := h.tenant("Acme", "acme.example")
			h.mu.Lock()
			h.now = base.Add(tc.fraction)
			h.mu.Unlock()
			created := h.clock()
			u, exp, err := h.portal.CreateLink(ctx, store.IntentSSO, "")
			if err != nil {
				t.Fatal(err)
			}
			if d := exp.Sub(created); d > 5*time.Minute || d < 5*time.Minute-time.Microsecond {
				t.Errorf("expires_at is %s after the link was made, want five minutes", d)
			}
			h.advance(tc.after)
			resp, body := get(t, h.client(), u)
			if resp.StatusCode != tc.want {
				t.Fatalf("opened %s after its creation: %d, want %d\n%s", tc.after, resp.StatusCode, tc.want, body)
			}
		})
	}
}
