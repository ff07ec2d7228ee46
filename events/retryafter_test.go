package events_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestRetryAfterIsHonoured: a receiver that answers 429 or 503 with
// Retry-After is not sent the event again before the time it asked for
// (WorkOS, Svix and Stripe's own clients wait too), however short the
// backoff would have been, and a wait longer than the longest backoff is
// capped at it, so a receiver cannot push an event past its retry window.
func TestRetryAfterIsHonoured(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter func(now time.Time) string
		notBefore  time.Duration // from the failed attempt
		notAfter   time.Duration
	}{
		{"429 seconds", http.StatusTooManyRequests, func(time.Time) string { return "600" }, 600 * time.Second, 601 * time.Second},
		{"503 date", http.StatusServiceUnavailable, func(now time.Time) string {
			return now.Add(20 * time.Minute).UTC().Format(http.TimeFormat)
		}, 19 * time.Minute, 21 * time.Minute},
		{"capped at MaxDelay", http.StatusTooManyRequests, func(time.Time) string { return "86400" }, time.Hour, time.Hour + time.Second},
		// No or a useless Retry-After: the ordinary backoff (BaseDelay one
		// minute, jittered down by up to half).
		{"garbage", http.StatusTooManyRequests, func(time.Time) string { return "soon" }, 30 * time.Second, time.Minute + time.Second},
		{"in the past", http.StatusServiceUnavailable, func(now time.Time) string {
			return now.Add(-time.Hour).UTC().Format(http.TimeFormat)
		}, 30 * time.Second, time.Minute + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, storetest.SQLite(t))
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tc.retryAfter(f.clock.Now()))
				w.WriteHeader(tc.status)
			}))
			t.Cleanup(hs.Close)
			hook, err := f.st.CreateWebhook(context.Background(), store.Webhook{URL: hs.URL, Events: []string{"dsync.group.created"}, Secret: "whsec_ra"})
			if err != nil {
				t.Fatal(err)
			}
			f.append(t, "dsync.group.created")
			at := f.clock.Now()
			if n, err := f.dispatcher(t).DeliverDue(context.Background()); err != nil || n != 1 {
				t.Fatalf("DeliverDue = %d, %v", n, err)
			}
			dl := deliveries(t, f.st, store.DeliveryQuery{WebhookID: hook.ID})[0]
			if dl.Status != store.DeliveryFailed || dl.LastStatusCode != tc.status {
				t.Fatalf("after a %d: %+v, want a failed attempt", tc.status, dl)
			}
			// The store keeps times to the microsecond.
			if wait := dl.NextAttemptAt.Sub(at); wait < tc.notBefore-time.Millisecond || wait > tc.notAfter {
				t.Fatalf("Retry-After %q: next attempt in %v, want between %v and %v", tc.retryAfter(at), wait, tc.notBefore, tc.notAfter)
			}
		})
	}
}
