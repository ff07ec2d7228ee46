package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// statusSender answers every logout with status, until told otherwise,
// and an error unless it is a 2xx, as the broker's sender does.
type statusSender struct {
	mu     sync.Mutex
	status int
}

func (s *statusSender) SendLogout(context.Context, store.Logout) (events.LogoutAnswer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status >= 300 {
		return events.LogoutAnswer{Status: s.status}, fmt.Errorf("HTTP %d", s.status)
	}
	return events.LogoutAnswer{Status: s.status}, nil
}

// TestFailingLogoutEndpointLoggedOnce: an application whose logout
// endpoint fails is named in the logs when it starts failing — once, not
// once per logout owed to it — and when it accepts logouts again; before,
// nothing was logged until a logout was dead-lettered a day later.
func TestFailingLogoutEndpointLoggedOnce(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	tn, app := logoutTarget(t, st)
	var ls []store.Logout
	for i := range 5 {
		ls = append(ls, store.Logout{SessionID: fmt.Sprintf("ses_%d", i), TenantID: tn.ID, UserID: "usr_a", ApplicationID: app.ID})
	}
	if err := st.EnqueueLogouts(store.WithTenant(ctx, tn.ID), ls); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var logs lockedBuffer
	sender := &statusSender{status: 503}
	d, err := events.NewLogoutDispatcher(events.LogoutConfig{Store: st, Sender: sender, Now: clock, BaseDelay: time.Minute,
		Timeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := d.DeliverDue(ctx); err != nil || n != 5 {
		t.Fatalf("first pass: %d, %v", n, err)
	}
	mu.Lock()
	now = now.Add(5 * time.Minute)
	mu.Unlock()
	if n, err := d.DeliverDue(ctx); err != nil || n != 5 {
		t.Fatalf("second pass: %d, %v", n, err)
	}
	sender.mu.Lock()
	sender.status = 200
	sender.mu.Unlock()
	mu.Lock()
	now = now.Add(30 * time.Minute)
	mu.Unlock()
	if n, err := d.DeliverDue(ctx); err != nil || n != 5 {
		t.Fatalf("third pass: %d, %v", n, err)
	}
	out := logs.String()
	if n := strings.Count(out, `msg="back-channel logout failing`); n != 1 {
		t.Errorf("%d lines say the application's logout endpoint fails after 10 failed logouts; want 1:\n%s", n, out)
	}
	if n := strings.Count(out, `msg="back-channel logouts delivered again"`); n != 1 {
		t.Errorf("%d lines say it accepts logouts again; want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "client_id="+app.ID) || !strings.Contains(out, "status_code=503") {
		t.Errorf("the lines do not name the application and its answer:\n%s", out)
	}
}
