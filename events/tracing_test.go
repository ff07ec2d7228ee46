package events_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/store"
)

// logoutQueue is a LogoutStore holding a few due logouts.
type logoutQueue struct {
	mu       sync.Mutex // logouts of several applications go out at once
	due      []store.Logout
	recorded map[string]store.DeliveryResult
}

func (q *logoutQueue) DueLogouts(context.Context, time.Time) (bool, error) {
	return len(q.due) > 0, nil
}
func (q *logoutQueue) ClaimLogouts(context.Context, time.Time, time.Duration, int, ...string) ([]store.Logout, error) {
	out := q.due
	q.due = nil
	return out, nil
}
func (q *logoutQueue) RecordLogout(_ context.Context, id string, r store.DeliveryResult) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.recorded[id] = r
	return nil
}
func (q *logoutQueue) ReleaseLogouts(context.Context, time.Time, ...string) error { return nil }

// spanSender is a LogoutSender that remembers the span each send ran in
// and refuses the logouts of app_bad.
type spanSender struct {
	mu    sync.Mutex
	spans map[string]trace.SpanContext
}

func (s *spanSender) SendLogout(ctx context.Context, l store.Logout) (events.LogoutAnswer, error) {
	s.mu.Lock()
	s.spans[l.ID] = trace.SpanContextFromContext(ctx)
	s.mu.Unlock()
	if l.ApplicationID == "app_bad" {
		return events.LogoutAnswer{Status: 400}, errors.New("HTTP 400")
	}
	return events.LogoutAnswer{Status: 200}, nil
}

// TestLogoutDeliverySpans: with a tracer provider, a poll that claims
// logouts is a root span, each logout a child naming its tenant and
// application, and the send runs inside it (so its POST is the logout
// span's client span); a refused logout's span is an error.
func TestLogoutDeliverySpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	q := &logoutQueue{recorded: map[string]store.DeliveryResult{}, due: []store.Logout{
		{ID: "blo_1", TenantID: "tnt_1", ApplicationID: "app_ok", Attempts: 1, CreatedAt: time.Now()},
		{ID: "blo_2", TenantID: "tnt_2", ApplicationID: "app_bad", Attempts: 1, CreatedAt: time.Now()},
	}}
	sender := &spanSender{spans: map[string]trace.SpanContext{}}
	d, err := events.NewLogoutDispatcher(events.LogoutConfig{Store: q, Sender: sender, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := d.DeliverDue(context.Background()); n != 2 || err != nil {
		t.Fatalf("DeliverDue = %d, %v", n, err)
	}
	// Nothing due: no span.
	if n, err := d.DeliverDue(context.Background()); n != 0 || err != nil {
		t.Fatalf("second DeliverDue = %d, %v", n, err)
	}
	var batch sdktrace.ReadOnlySpan
	deliveries := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		switch s.Name() {
		case events.SpanLogoutBatch:
			if batch != nil {
				t.Error("two batch spans: an idle poll made one")
			}
			batch = s
		case events.SpanLogoutDeliver:
			deliveries[attr(s, "logout.id")] = s
		}
	}
	if batch == nil || batch.Parent().IsValid() {
		t.Fatalf("batch span %v, want a root", batch)
	}
	for id, want := range map[string][3]string{"blo_1": {"tnt_1", "app_ok", "succeeded"}, "blo_2": {"tnt_2", "app_bad", "dead"}} {
		s := deliveries[id]
		if s == nil {
			t.Fatalf("no span for %s", id)
		}
		if s.Parent().SpanID() != batch.SpanContext().SpanID() {
			t.Errorf("%s: parent %v, want the batch", id, s.Parent())
		}
		if got := [3]string{attr(s, "tenant.id"), attr(s, "client.id"), attr(s, "delivery.status")}; got != want {
			t.Errorf("%s: tenant, client, status = %v, want %v", id, got, want)
		}
		if sender.spans[id].SpanID() != s.SpanContext().SpanID() {
			t.Errorf("%s was sent outside its span", id)
		}
		if failed := s.Status().Code.String() == "Error"; failed != (want[2] != "succeeded") {
			t.Errorf("%s: status %v", id, s.Status())
		}
	}

	// Off: no tracer provider, the sends run with no span at all.
	q.due = []store.Logout{{ID: "blo_3", TenantID: "tnt_1", ApplicationID: "app_ok", Attempts: 1, CreatedAt: time.Now()}}
	off, _ := events.NewLogoutDispatcher(events.LogoutConfig{Store: q, Sender: sender})
	if _, err := off.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sender.spans["blo_3"].IsValid() {
		t.Error("a span with tracing off")
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}
