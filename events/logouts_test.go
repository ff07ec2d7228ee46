package events_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// slowSender is a LogoutSender whose application takes delay to answer;
// it counts the sends of each logout and those that overlapped another
// send of the same one.
type slowSender struct {
	delay    time.Duration
	mu       sync.Mutex
	sent     map[string]int
	inFlight map[string]bool
	overlap  int
}

func (s *slowSender) SendLogout(ctx context.Context, l store.Logout) (events.LogoutAnswer, error) {
	s.mu.Lock()
	if s.inFlight[l.ID] {
		s.overlap++
	}
	s.inFlight[l.ID] = true
	s.mu.Unlock()
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inFlight, l.ID)
	s.sent[l.ID]++
	return events.LogoutAnswer{Status: 200}, nil
}

// TestSlowApplicationTwoNodesEachLogoutOnce: back-channel logouts to an
// application that takes most of the attempt timeout to answer, two
// nodes. The batch (20) went out one by one under a lease of three
// timeouts, and the other node claimed what the first had not reached yet
// and sent those a second time, at the same moment.
func TestSlowApplicationTwoNodesEachLogoutOnce(t *testing.T) {
	st := storetest.Postgres(t)
	ctx := context.Background()
	tn, app := logoutTarget(t, st)
	const n = 12
	var ls []store.Logout
	for i := range n {
		ls = append(ls, store.Logout{SessionID: fmt.Sprintf("ses_%d", i), TenantID: tn.ID, UserID: "usr_a", ApplicationID: app.ID})
	}
	if err := st.EnqueueLogouts(store.WithTenant(ctx, tn.ID), ls); err != nil {
		t.Fatal(err)
	}
	sender := &slowSender{delay: 150 * time.Millisecond, sent: map[string]int{}, inFlight: map[string]bool{}}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var nodes []dueDeliverer
	for range 2 {
		// The real clock, so that leases run out as in production; a
		// failed send would not be retried within the test.
		d, err := events.NewLogoutDispatcher(events.LogoutConfig{Store: st, Sender: sender, Timeout: 400 * time.Millisecond, BaseDelay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, d)
	}
	runNodes(ctx, t, nodes, func() bool {
		sender.mu.Lock()
		defer sender.mu.Unlock()
		return len(sender.sent) >= n && len(sender.inFlight) == 0
	})
	time.Sleep(1500 * time.Millisecond) // a late second send would land by now
	sender.mu.Lock()
	defer sender.mu.Unlock()
	twice := 0
	for _, k := range sender.sent {
		if k > 1 {
			twice++
		}
	}
	if len(sender.sent) != n || twice != 0 || sender.overlap != 0 {
		t.Fatalf("%d of %d logouts sent, %d of them more than once, %d while in flight", len(sender.sent), n, twice, sender.overlap)
	}
}

// ctxSender answers after delay, or fails if its context ends first, as
// the real sender's POST does.
type ctxSender struct {
	delay   time.Duration
	arrived chan struct{}
	once    sync.Once
}

func (s *ctxSender) SendLogout(ctx context.Context, l store.Logout) (events.LogoutAnswer, error) {
	s.once.Do(func() { close(s.arrived) })
	select {
	case <-time.After(s.delay):
		return events.LogoutAnswer{Status: 200}, nil
	case <-ctx.Done():
		return events.LogoutAnswer{Status: 0}, ctx.Err()
	}
}

// TestShutdownLetsAStartedLogoutFinish: as for webhooks, a logout being
// sent when the broker stops is sent to the end and recorded, not cut
// off, recorded as failed and sent again.
func TestShutdownLetsAStartedLogoutFinish(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	tn, app := logoutTarget(t, st)
	if err := st.EnqueueLogouts(store.WithTenant(ctx, tn.ID), []store.Logout{{SessionID: "ses_1", TenantID: tn.ID, UserID: "usr_a", ApplicationID: app.ID}}); err != nil {
		t.Fatal(err)
	}
	sender := &ctxSender{delay: 300 * time.Millisecond, arrived: make(chan struct{})}
	d, err := events.NewLogoutDispatcher(events.LogoutConfig{Store: st, Sender: sender, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { d.Run(runCtx); close(stopped) }()
	select {
	case <-sender.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no logout sent")
	}
	cancel() // SIGTERM
	<-stopped
	ls, _, err := st.ListLogouts(store.WithTenant(ctx, tn.ID), store.LogoutQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Status != store.DeliverySucceeded {
		t.Fatalf("after a shutdown mid-send: %+v, want the logout sent and recorded", ls)
	}
}

// logoutTarget is a live tenant and an application with a back-channel
// logout URI, what a queued logout names.
func logoutTarget(t *testing.T, st *store.DB) (store.Tenant, store.Application) {
	t.Helper()
	ctx := context.Background()
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "Acme", Status: store.TenantActive})
	if err != nil {
		t.Fatal(err)
	}
	app, err := st.CreateApplication(ctx, store.Application{Name: "CRM", Public: true,
		RedirectURIs: []string{"https://crm.example/cb"}, BackchannelLogoutURI: "https://crm.example/bcl"})
	if err != nil {
		t.Fatal(err)
	}
	return tn, app
}
