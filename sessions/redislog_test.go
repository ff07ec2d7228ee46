package sessions

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRedisLoggerIsRateLimitedJSON: the client library's messages go
// through the broker's logger (JSON stays JSON), one line per interval,
// with the count of those left out.
func TestRedisLoggerIsRateLimitedJSON(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1_700_000_000, 0)
	l := newRedisLogger(slog.New(slog.NewJSONHandler(&buf, nil)), 10*time.Second, func() time.Time { return now })
	steps := []struct {
		after time.Duration
		calls int
	}{
		{0, 5},               // first logged, 4 left out
		{5 * time.Second, 3}, // still inside the interval: 3 more left out
		{6 * time.Second, 1}, // 11 s after the first: logged, with 7 left out
		{time.Second, 2},     // inside again
	}
	for _, s := range steps {
		now = now.Add(s.after)
		for range s.calls {
			l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s", 5, "connection refused")
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	for i, want := range []float64{0, 7} {
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %s", i, lines[i])
		}
		left, _ := rec["messages_left_out"].(float64)
		if rec["level"] != "WARN" || rec["surface"] != "redis" || left != want ||
			!strings.Contains(rec["msg"].(string), "failed to dial after 5 attempts: connection refused") {
			t.Errorf("line %d = %s, want a WARN of the message with %v left out", i, lines[i], want)
		}
	}
}
