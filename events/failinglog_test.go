package events_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// lockedBuffer collects log lines written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFailingWebhookLoggedOnce: the operator paged for a backlog finds in
// the logs which receiver started failing and when — once per failing
// streak, not a line per attempt — and the line that says it delivers
// again. Neither names the URL's path (some carry a secret) nor the body.
func TestFailingWebhookLoggedOnce(t *testing.T) {
	for _, b := range []func(testing.TB) *store.DB{storetest.SQLite, storetest.Postgres} {
		f := newFixture(t, b(t), http.StatusInternalServerError, http.StatusInternalServerError, http.StatusInternalServerError)
		for range 3 {
			f.append(t, "dsync.user.created")
		}
		var logs lockedBuffer
		d, err := events.New(events.Config{Store: f.st, Client: loopbackClient(), Now: f.clock.Now, Timeout: 5 * time.Second,
			BaseDelay: time.Minute, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if n, err := d.DeliverDue(ctx); err != nil || n != 3 {
			t.Fatalf("first pass: %d, %v", n, err)
		}
		f.clock.Add(10 * time.Minute)
		if n, err := d.DeliverDue(ctx); err != nil || n != 3 {
			t.Fatalf("second pass: %d, %v", n, err)
		}
		out := logs.String()
		if n := strings.Count(out, `msg="webhook failing`); n != 1 {
			t.Errorf("%d lines say the webhook fails after 3 failed attempts; want 1:\n%s", n, out)
		}
		if n := strings.Count(out, `msg="webhook delivers again"`); n != 1 {
			t.Errorf("%d lines say the webhook delivers again; want 1:\n%s", n, out)
		}
		if !strings.Contains(out, "webhook_id="+f.hook.ID) || !strings.Contains(out, "status_code=500") {
			t.Errorf("the lines do not name the webhook and its answer:\n%s", out)
		}
		if strings.Contains(out, "http://") || strings.Contains(out, "usr_1") {
			t.Errorf("the lines name the URL or the body:\n%s", out)
		}
	}
}
