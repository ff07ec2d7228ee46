package lifecycle_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/idbroker/idbroker/lifecycle"
	"github.com/idbroker/idbroker/store"
)

// dueStore has tenants due for erasure until they are erased.
type dueStore struct{ due []string }

func (s *dueStore) TenantsDeletedBefore(context.Context, time.Time, int) ([]string, error) {
	return s.due, nil
}

func (s *dueStore) EraseTenant(ctx context.Context, _ store.Actor, _ map[string]any) (store.AuditEvent, error) {
	s.due = s.due[1:]
	return store.AuditEvent{ID: "aud_1"}, nil
}

// TestEraseSpans: a run that finds tenants to erase is a root span, each
// tenant a child naming it; a run with nothing to do makes no span.
func TestEraseSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := &lifecycle.Eraser{Store: &dueStore{due: []string{"tnt_1", "tnt_2"}}, TracerProvider: tp}
	for range 2 {
		if _, err := e.EraseDue(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var batch sdktrace.ReadOnlySpan
	var tenants []string
	for _, s := range rec.Ended() {
		switch s.Name() {
		case lifecycle.SpanEraseBatch:
			if batch != nil {
				t.Error("two batch spans: the idle run made one")
			}
			batch = s
		case lifecycle.SpanEraseTenant:
			for _, kv := range s.Attributes() {
				if kv.Key == "tenant.id" {
					tenants = append(tenants, kv.Value.AsString())
				}
			}
			if !s.Parent().IsValid() {
				t.Errorf("%s span is a root", s.Name())
			}
		}
	}
	if batch == nil || batch.Parent().IsValid() || len(tenants) != 2 || tenants[0] != "tnt_1" || tenants[1] != "tnt_2" {
		t.Errorf("batch %v, tenants %v; want a root batch and tnt_1, tnt_2", batch, tenants)
	}
}
