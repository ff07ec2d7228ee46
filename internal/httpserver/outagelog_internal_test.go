package httpserver

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestOutageLog: a cause seen on every request of an outage is logged
// once, then once per interval with the count left out; another message
// has its own interval.
func TestOutageLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	now := time.Unix(1_700_000_000, 0)
	o := newOutageLog(func() time.Time { return now })
	for range 1000 {
		o.Error(context.Background(), log, "scim request failed", "status", 503)
		now = now.Add(time.Millisecond) // 1000 requests a second
	}
	o.Error(context.Background(), log, "broker: introspect", "err", "redis down")
	now = now.Add(OutageLogInterval)
	o.Error(context.Background(), log, "scim request failed", "status", 503)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	if strings.Contains(lines[0], "suppressed") || !strings.Contains(lines[1], "broker: introspect") || !strings.Contains(lines[2], "suppressed=999") {
		t.Errorf("lines:\n%s", buf.String())
	}
}

// TestOutageLogWarn: Warn shares Error's interval per message and logs at
// WARN.
func TestOutageLogWarn(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	now := time.Unix(1_700_000_000, 0)
	o := newOutageLog(func() time.Time { return now })
	for range 3 {
		o.Warn(context.Background(), log, "recording API key use failed")
	}
	now = now.Add(OutageLogInterval)
	o.Warn(context.Background(), log, "recording API key use failed")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[1], "suppressed=2") {
		t.Errorf("lines:\n%s", buf.String())
	}
}
