package events_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestHangingReceiverHoldsUpNoOtherPass: a receiver that hangs (until
// its Timeout) with a backlog of overdue deliveries. Each pass waited for
// its attempt before claiming again, and each claim, oldest first, was
// full of that receiver's backlog: a healthy webhook's events waited
// behind it, 28 s at the median for a burst of 300 against a receiver
// answering after 30 s. A pass now leaves the hanging send to go on by
// itself, and later passes claim the other webhooks' deliveries, not the
// busy one's.
func TestHangingReceiverHoldsUpNoOtherPass(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t))
			hang := make(chan struct{})
			entered := make(chan struct{}, 100)
			slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				entered <- struct{}{}
				select {
				case <-hang:
				case <-r.Context().Done():
				}
			}))
			t.Cleanup(slow.Close)
			slowHook, err := f.st.CreateWebhook(context.Background(), store.Webhook{URL: slow.URL, Events: []string{"dsync.group.created"}, Secret: "s"})
			if err != nil {
				t.Fatal(err)
			}
			// Its backlog: older than the healthy webhook's event, and
			// more than one claim holds.
			const backlog, batch = 8, 4
			for range backlog {
				f.append(t, "dsync.group.created")
			}
			d, err := events.New(events.Config{Store: f.st, Client: loopbackClient(), Now: f.clock.Now, Timeout: time.Minute,
				BaseDelay: time.Hour, Batch: batch, Patience: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			released := false
			release := func() {
				if !released {
					released = true
					close(hang)
				}
			}
			t.Cleanup(func() { release(); d.Wait() })

			passed := make(chan error, 1)
			go func() {
				_, err := d.DeliverDue(context.Background())
				passed <- err
			}()
			<-entered // the slow receiver holds its first delivery
			select {
			case err := <-passed:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				release()
				t.Fatal("the pass did not return while a receiver hung: it holds up every other webhook")
			}

			ev := f.append(t, "dsync.user.created") // the healthy webhook's (f.hook)
			for deadline := time.Now().Add(30 * time.Second); ; {
				if _, err := d.DeliverDue(context.Background()); err != nil {
					t.Fatal(err)
				}
				f.rv.mu.Lock()
				got := slices.Clone(f.rv.got)
				f.rv.mu.Unlock()
				if slices.Contains(got, ev.ID) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the healthy webhook got %v, not %s, while the other receiver hung", got, ev.ID)
				}
				time.Sleep(10 * time.Millisecond)
			}
			// The busy webhook's other deliveries were not claimed
			// meanwhile: only the first pass's batch was taken.
			taken := 0
			for _, dl := range deliveries(t, f.st, store.DeliveryQuery{WebhookID: slowHook.ID}) {
				if dl.Attempts > 0 {
					taken++
				}
			}
			if taken != batch {
				t.Errorf("%d of the hanging webhook's deliveries claimed, want the first pass's %d", taken, batch)
			}
			release()
			d.Wait()
		})
	}
}

// hangingSender holds every logout of one application until released;
// the others' it answers at once, noting them.
type hangingSender struct {
	app     string
	hang    chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	sent    []string
}

func (s *hangingSender) SendLogout(ctx context.Context, l store.Logout) (events.LogoutAnswer, error) {
	if l.ApplicationID == s.app {
		s.entered <- struct{}{}
		select {
		case <-s.hang:
		case <-ctx.Done():
		}
	}
	s.mu.Lock()
	s.sent = append(s.sent, l.ID)
	s.mu.Unlock()
	return events.LogoutAnswer{Status: 200}, nil
}

// TestHangingApplicationHoldsUpNoOtherLogout is the same for back-channel
// logouts: an application whose logout endpoint hangs, with a backlog,
// delayed every other application's logouts, which tell them a session
// has ended.
func TestHangingApplicationHoldsUpNoOtherLogout(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := context.Background()
			tn, hanging := logoutTarget(t, st)
			other, err := st.CreateApplication(ctx, store.Application{Name: "Wiki", Public: true,
				RedirectURIs: []string{"https://wiki.example/cb"}, BackchannelLogoutURI: "https://wiki.example/bcl"})
			if err != nil {
				t.Fatal(err)
			}
			tctx := store.WithTenant(ctx, tn.ID)
			// 25 logouts of the hanging application: more than a claim
			// (20) holds, and older than the other application's.
			var ls []store.Logout
			for i := range 25 {
				ls = append(ls, store.Logout{SessionID: fmt.Sprintf("ses_%d", i), TenantID: tn.ID, UserID: "usr_a", ApplicationID: hanging.ID})
			}
			if err := st.EnqueueLogouts(tctx, ls); err != nil {
				t.Fatal(err)
			}
			sender := &hangingSender{app: hanging.ID, hang: make(chan struct{}), entered: make(chan struct{}, 100)}
			d, err := events.NewLogoutDispatcher(events.LogoutConfig{Store: st, Sender: sender, Timeout: time.Minute,
				BaseDelay: time.Hour, Patience: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			released := false
			release := func() {
				if !released {
					released = true
					close(sender.hang)
				}
			}
			t.Cleanup(func() { release(); d.Wait() })

			passed := make(chan error, 1)
			go func() {
				_, err := d.DeliverDue(ctx)
				passed <- err
			}()
			<-sender.entered
			select {
			case err := <-passed:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				release()
				t.Fatal("the pass did not return while an application hung: it holds up every other application's logouts")
			}
			if err := st.EnqueueLogouts(tctx, []store.Logout{{SessionID: "ses_other", TenantID: tn.ID, UserID: "usr_b", ApplicationID: other.ID}}); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(30 * time.Second); ; {
				if _, err := d.DeliverDue(ctx); err != nil {
					t.Fatal(err)
				}
				sender.mu.Lock()
				n := len(sender.sent)
				sender.mu.Unlock()
				if n == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the other application got %d logouts while the first hung, want its 1", n)
				}
				time.Sleep(10 * time.Millisecond)
			}
			release()
			d.Wait()
		})
	}
}
