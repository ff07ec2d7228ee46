package events_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// answerSender answers every logout as it is told, counting attempts.
type answerSender struct {
	mu     sync.Mutex
	answer events.LogoutAnswer
	sent   int
}

func (s *answerSender) SendLogout(ctx context.Context, l store.Logout) (events.LogoutAnswer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent++
	if s.answer.Status/100 == 2 {
		return s.answer, nil
	}
	return s.answer, errors.New("HTTP " + http.StatusText(s.answer.Status))
}

func (s *answerSender) set(a events.LogoutAnswer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = a
}

// queueLogout queues one back-channel logout and returns it.
func queueLogout(t *testing.T, st *store.DB) store.Logout {
	t.Helper()
	tn, app := logoutTarget(t, st)
	ctx := store.WithTenant(context.Background(), tn.ID)
	if err := st.EnqueueLogouts(ctx, []store.Logout{{SessionID: "ses_ra", TenantID: tn.ID, UserID: "usr_a", ApplicationID: app.ID}}); err != nil {
		t.Fatal(err)
	}
	ls, _, err := st.ListLogouts(ctx, store.LogoutQuery{TenantID: tn.ID})
	if err != nil || len(ls) != 1 {
		t.Fatalf("ListLogouts = %v, %v", ls, err)
	}
	return ls[0]
}

func logoutNow(t *testing.T, st *store.DB, l store.Logout) store.Logout {
	t.Helper()
	ls, _, err := st.ListLogouts(context.Background(), store.LogoutQuery{TenantID: l.TenantID})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ls {
		if x.ID == l.ID {
			return x
		}
	}
	t.Fatalf("logout %s is gone", l.ID)
	return store.Logout{}
}

// TestLogoutRetryAfterIsHonoured: an application that answers a
// back-channel logout 429 or 503 with Retry-After is not sent it again
// before then, as webhooks are not; a wait longer than MaxDelay is capped
// at it (a Retry-After of a day must not park a logout while the
// application may still honour the session), and never goes past the
// logout's deadline: with less time left than asked for, the last attempt
// is at the deadline, and a failure then dead-letters it.
func TestLogoutRetryAfterIsHonoured(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter func(now time.Time) string
		age        time.Duration // of the logout when attempted
		notBefore  time.Duration // from the failed attempt
		notAfter   time.Duration
	}{
		{"429 seconds", http.StatusTooManyRequests, func(time.Time) string { return "300" }, 0, 300 * time.Second, 301 * time.Second},
		{"503 date", http.StatusServiceUnavailable, func(now time.Time) string {
			return now.Add(7 * time.Minute).UTC().Format(http.TimeFormat)
		}, 0, 6 * time.Minute, 8 * time.Minute},
		{"capped at MaxDelay", http.StatusServiceUnavailable, func(time.Time) string { return "86400" }, 0, 10 * time.Minute, 10*time.Minute + time.Second},
		{"not past the deadline", http.StatusTooManyRequests, func(time.Time) string { return "600" }, 24*time.Hour - 2*time.Minute, 2*time.Minute - 2*time.Second, 2*time.Minute + time.Second},
		{"garbage is the backoff", http.StatusServiceUnavailable, func(time.Time) string { return "later" }, 0, 0, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := storetest.SQLite(t)
			l := queueLogout(t, st)
			c := &clock{t: l.CreatedAt.Add(tc.age + time.Second)}
			sender := &answerSender{}
			sender.set(events.LogoutAnswer{Status: tc.status, RetryAfter: tc.retryAfter(c.Now())})
			d, err := events.NewLogoutDispatcher(events.LogoutConfig{Store: st, Sender: sender, Now: c.Now, BaseDelay: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			at := c.Now()
			if n, err := d.DeliverDue(context.Background()); err != nil || n != 1 {
				t.Fatalf("DeliverDue = %d, %v", n, err)
			}
			got := logoutNow(t, st, l)
			if got.Status != store.DeliveryFailed || got.LastStatusCode != tc.status {
				t.Fatalf("after a %d: %+v, want a failed attempt, retried", tc.status, got)
			}
			if wait := got.NextAttemptAt.Sub(at); wait < tc.notBefore || wait > tc.notAfter {
				t.Fatalf("next attempt in %v, want between %v and %v", wait, tc.notBefore, tc.notAfter)
			}
			// Not sent before then, however often the queue is polled.
			c.t = got.NextAttemptAt.Add(-time.Second)
			if n, _ := d.DeliverDue(context.Background()); n != 0 {
				t.Fatalf("sent again %v before the time asked for", time.Second)
			}
			if tc.age > 0 {
				// The attempt at the deadline fails too: dead, not
				// retried on into the next day.
				c.t = got.NextAttemptAt
				if n, err := d.DeliverDue(context.Background()); err != nil || n != 1 {
					t.Fatalf("at the deadline: DeliverDue = %d, %v", n, err)
				}
				if got := logoutNow(t, st, l); got.Status != store.DeliveryDead {
					t.Fatalf("after the deadline's attempt: %s, want dead", got.Status)
				}
			}
		})
	}
}

// TestRedeliveredLogoutIsRetried: a dead-lettered logout that an operator
// redelivers gets a retry window of its own, starting with the quick
// backoff, not one attempt: a blip as the application comes back does not
// dead-letter it again at once.
func TestRedeliveredLogoutIsRetried(t *testing.T) {
	st := storetest.SQLite(t)
	l := queueLogout(t, st)
	c := &clock{t: l.CreatedAt.Add(25 * time.Hour)}
	sender := &answerSender{}
	sender.set(events.LogoutAnswer{Status: http.StatusServiceUnavailable})
	d, err := events.NewLogoutDispatcher(events.LogoutConfig{Store: st, Sender: sender, Now: c.Now, BaseDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := logoutNow(t, st, l); got.Status != store.DeliveryDead {
		t.Fatalf("past its day: %s, want dead", got.Status)
	}
	again, err := st.RedeliverLogout(ctx, l.TenantID, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	c.t = again.NextAttemptAt.Add(time.Second) // the store's clock stamped it
	for i := range 3 {
		at := c.Now()
		if n, err := d.DeliverDue(ctx); err != nil || n != 1 {
			t.Fatalf("attempt %d after redelivery: DeliverDue = %d, %v", i+1, n, err)
		}
		got := logoutNow(t, st, l)
		if got.Status != store.DeliveryFailed {
			t.Fatalf("attempt %d after redelivery failed: %s, want retried", i+1, got.Status)
		}
		if wait := got.NextAttemptAt.Sub(at); wait > time.Duration(1<<i)*time.Second {
			t.Fatalf("attempt %d after redelivery: next in %v, want the backoff starting over", i+1, wait)
		}
		c.t = got.NextAttemptAt
	}
	sender.set(events.LogoutAnswer{Status: http.StatusNoContent})
	if _, err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := logoutNow(t, st, l); got.Status != store.DeliverySucceeded {
		t.Fatalf("once the application answers: %s, want succeeded", got.Status)
	}
	// And its window ends a day after the redelivery, as a new one's.
	l2 := queueLogout(t, st)
	c.t = l2.CreatedAt.Add(25 * time.Hour)
	sender.set(events.LogoutAnswer{Status: http.StatusServiceUnavailable})
	if _, err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := st.RedeliverLogout(ctx, l2.TenantID, l2.ID)
	if err != nil {
		t.Fatal(err)
	}
	c.t = r.NextAttemptAt.Add(24*time.Hour + time.Second)
	if _, err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := logoutNow(t, st, l2); got.Status != store.DeliveryDead {
		t.Fatalf("a day after its redelivery: %s, want dead", got.Status)
	}
}

// TestRedeliveredDeliveryIsRetried is the same for a webhook's dead
// letter: redelivered, it is retried on the usual schedule for 72 hours
// from the redelivery.
func TestRedeliveredDeliveryIsRetried(t *testing.T) {
	st := storetest.SQLite(t)
	f := newFixture(t, st)
	f.rv.statuses = []int{500, 500, 500, 500, 500}
	f.append(t, "dsync.user.created")
	d := f.dispatcher(t) // BaseDelay one minute
	ctx := context.Background()
	f.clock.Add(73 * time.Hour)
	if _, err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	dl := deliveries(t, st, store.DeliveryQuery{WebhookID: f.hook.ID})[0]
	if dl.Status != store.DeliveryDead {
		t.Fatalf("past 72 hours: %s, want dead", dl.Status)
	}
	r, err := st.RedeliverDelivery(ctx, dl.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.t = r.NextAttemptAt.Add(time.Second)
	for i := range 3 {
		at := f.clock.Now()
		if n, err := d.DeliverDue(ctx); err != nil || n != 1 {
			t.Fatalf("attempt %d after redelivery: DeliverDue = %d, %v", i+1, n, err)
		}
		dl = deliveries(t, st, store.DeliveryQuery{WebhookID: f.hook.ID})[0]
		if dl.Status != store.DeliveryFailed {
			t.Fatalf("attempt %d after redelivery failed: %s, want retried", i+1, dl.Status)
		}
		if wait := dl.NextAttemptAt.Sub(at); wait > time.Duration(1<<i)*time.Minute {
			t.Fatalf("attempt %d after redelivery: next in %v, want the backoff starting over", i+1, wait)
		}
		f.clock.t = dl.NextAttemptAt
	}
	f.clock.t = r.NextAttemptAt.Add(72*time.Hour + time.Second)
	if _, err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if dl = deliveries(t, st, store.DeliveryQuery{WebhookID: f.hook.ID})[0]; dl.Status != store.DeliveryDead {
		t.Fatalf("72 hours after its redelivery: %s, want dead", dl.Status)
	}
}

// failingReceivers are endpoints that fail as real ones do.
func failingReceivers(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	serve := func(name string, h http.HandlerFunc) {
		hs := httptest.NewServer(h)
		t.Cleanup(hs.Close)
		out[name] = hs.URL
	}
	serve("500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	serve("410 Gone", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) })
	serve("302 to a GET", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			http.Redirect(w, r, "/moved", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusOK) // a GET without the event "succeeds"
	})
	serve("reset", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
	})
	block := make(chan struct{})
	serve("hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(block) }) // before the server's Close, which waits for the handler
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(tls.Close)
	out["TLS unknown authority"] = tls.URL
	return out
}

// TestFailingWebhookIsDisabled: a webhook every attempt at which has
// failed for DisableAfter, whichever way its receiver fails, is disabled
// by the dispatcher: once, with an audit row, what it was owed ended
// saying why, nothing more queued for it, its events still in the stream;
// an operator enables it again and its streak starts over.
func TestFailingWebhookIsDisabled(t *testing.T) {
	for name, url := range failingReceivers(t) {
		t.Run(name, func(t *testing.T) {
			st := storetest.SQLite(t)
			ctx := context.Background()
			f := newFixture(t, st)
			u := url
			if _, _, err := st.UpdateWebhook(ctx, f.hook.ID, store.WebhookUpdate{URL: &u}); err != nil {
				t.Fatal(err)
			}
			var disabled atomic.Int32
			d, err := events.New(events.Config{Store: st, Client: loopbackClient(), Now: f.clock.Now,
				Timeout: 2 * time.Second, BaseDelay: time.Minute, DisableAfter: 2 * 24 * time.Hour,
				OnDisabled: func(store.Webhook) { disabled.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			first := f.append(t, "dsync.user.created")
			if n, err := d.DeliverDue(ctx); err != nil || n != 1 {
				t.Fatalf("DeliverDue = %d, %v", n, err)
			}
			w, err := st.Webhook(ctx, f.hook.ID)
			if err != nil {
				t.Fatal(err)
			}
			if w.FailingSince == nil || w.LastFailure == "" || w.Disabled {
				t.Fatalf("after a failed attempt (%+v): failing since %v, last failure %q, disabled %v",
					deliveries(t, st, store.DeliveryQuery{WebhookID: f.hook.ID}), w.FailingSince, w.LastFailure, w.Disabled)
			}
			// A day and a half on, still failing: kept.
			f.clock.Add(36 * time.Hour)
			if _, err := d.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			}
			if w, _ = st.Webhook(ctx, f.hook.ID); w.Disabled {
				t.Fatal("disabled after a day and a half of failures, want two days")
			}
			// Past two days, a failure disables it.
			f.clock.Add(13 * time.Hour)
			if _, err := d.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			}
			if w, _ = st.Webhook(ctx, f.hook.ID); !w.Disabled || w.DisabledReason != store.WebhookDisabledFailing || w.DisabledAt == nil {
				t.Fatalf("after two days of failures: disabled %v, reason %q", w.Disabled, w.DisabledReason)
			}
			if disabled.Load() != 1 {
				t.Fatalf("OnDisabled heard %d, want 1", disabled.Load())
			}
			rows, _, err := st.OperatorAudit(ctx, "webhook.disabled", store.Page{})
			if err != nil || len(rows) != 1 || rows[0].Resource.ID != f.hook.ID || rows[0].Actor != events.ActorDispatcher {
				t.Fatalf("audit rows %+v, %v: want one webhook.disabled by the dispatcher", rows, err)
			}
			dl := deliveries(t, st, store.DeliveryQuery{EventID: first.ID})[0]
			if dl.Status != store.DeliveryDead || dl.LastError != store.DeliveryEndedFailing {
				t.Fatalf("what it was owed: %s %q, want ended", dl.Status, dl.LastError)
			}
			// Disabled, it is queued nothing; the stream keeps every event.
			later := f.append(t, "dsync.user.created")
			if ds := deliveries(t, st, store.DeliveryQuery{EventID: later.ID}); len(ds) != 0 {
				t.Fatalf("an event while disabled was queued: %+v", ds)
			}
			evs, _, err := st.ListEvents(f.ctx, store.Page{Limit: 100})
			if err != nil || len(evs) != 2 {
				t.Fatalf("the stream holds %d events (%v), want both", len(evs), err)
			}
			// An operator enables it again: its streak starts over, so the
			// next failure does not disable it at once.
			on := false
			if w, _, err = st.UpdateWebhook(ctx, f.hook.ID, store.WebhookUpdate{Disabled: &on}); err != nil || w.Disabled || w.FailingSince != nil || w.DisabledReason != "" {
				t.Fatalf("enabled again: %+v, %v", w, err)
			}
			f.append(t, "dsync.user.created")
			if _, err := d.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			}
			if w, _ = st.Webhook(ctx, f.hook.ID); w.Disabled || w.FailingSince == nil {
				t.Fatalf("the first failure after enabling: disabled %v, failing since %v", w.Disabled, w.FailingSince)
			}
		})
	}
}

// TestSuccessEndsTheFailingStreak: one 2xx within DisableAfter keeps the
// webhook: it is disabled only for nothing but failures.
func TestSuccessEndsTheFailingStreak(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	f := newFixture(t, st)
	d, err := events.New(events.Config{Store: st, Client: loopbackClient(), Now: f.clock.Now,
		Timeout: time.Second, BaseDelay: time.Minute, DisableAfter: 2 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Every 20 hours an event, and every attempt fails but those of the
	// third pass (40 h in): 100 h from the first failure to the last, 40 h
	// since the success.
	for pass := range 6 {
		f.rv.mu.Lock()
		f.rv.statuses = nil
		if pass != 2 {
			f.rv.statuses = slices.Repeat([]int{http.StatusInternalServerError}, 20)
		}
		f.rv.mu.Unlock()
		f.append(t, "dsync.user.created")
		if _, err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		if pass < 5 {
			f.clock.Add(20 * time.Hour)
		}
	}
	w, err := st.Webhook(ctx, f.hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	if w.Disabled {
		t.Fatalf("disabled though an attempt succeeded %v ago", 60*time.Hour)
	}
	if w.FailingSince == nil {
		t.Fatal("failing since nil after failures")
	}
}

// TestDisableAfterBounds: a limit under a day is refused (a night's
// outage must not cost a webhook); negative never disables.
func TestDisableAfterBounds(t *testing.T) {
	st := storetest.SQLite(t)
	if _, err := events.New(events.Config{Store: st, DisableAfter: time.Hour}); err == nil {
		t.Fatal("DisableAfter of an hour accepted")
	}
	if _, err := events.New(events.Config{Store: st, DisableAfter: -1}); err != nil {
		t.Fatal(err)
	}
}

// TestFailingWebhookDisabledOnceOnTwoNodes: two nodes on PostgreSQL see
// the same receiver failing past the limit; the webhook is disabled once,
// with one audit row.
func TestFailingWebhookDisabledOnceOnTwoNodes(t *testing.T) {
	st := storetest.Postgres(t)
	ctx := context.Background()
	f := newFixture(t, st)
	f.rv.statuses = make([]int, 100)
	for i := range f.rv.statuses {
		f.rv.statuses[i] = http.StatusBadGateway
	}
	var heard atomic.Int32
	var nodes []*events.Dispatcher
	for range 2 {
		d, err := events.New(events.Config{Store: st, Client: loopbackClient(), Now: f.clock.Now, Batch: 1,
			Timeout: time.Second, BaseDelay: time.Minute, DisableAfter: 24 * time.Hour,
			OnDisabled: func(store.Webhook) { heard.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, d)
	}
	f.append(t, "dsync.user.created")
	if _, err := nodes[0].DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(25 * time.Hour)
	f.append(t, "dsync.user.created")
	f.append(t, "dsync.user.created")
	var wg sync.WaitGroup
	for _, d := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := d.DeliverDue(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	rows, _, err := st.OperatorAudit(ctx, "webhook.disabled", store.Page{})
	if err != nil || len(rows) != 1 || heard.Load() != 1 {
		t.Fatalf("%d audit rows (%v), OnDisabled heard %d: want one each", len(rows), err, heard.Load())
	}
}
