package httpserver

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// OutageLogInterval is how often OutageLog repeats a cause it keeps
// seeing.
const OutageLogInterval = 10 * time.Second

// OutageLog writes the cause of requests refused because a dependency is
// down (the 503s) once, and then at most once per OutageLogInterval per
// message, with the count of those it left out: under load an outage
// otherwise logged its cause once per refused request, thousands of
// lines a second, beside the access log's own line for each. Causes of
// other failures are not its business: log those every time.
type OutageLog struct {
	mu      sync.Mutex
	now     func() time.Time
	next    map[string]time.Time
	skipped map[string]int
}

// NewOutageLog returns an empty OutageLog.
func NewOutageLog() *OutageLog { return newOutageLog(time.Now) }

func newOutageLog(now func() time.Time) *OutageLog {
	return &OutageLog{now: now, next: map[string]time.Time{}, skipped: map[string]int{}}
}

// Error logs msg with args at ERROR on log, unless msg was logged less
// than OutageLogInterval ago; the line that follows a quiet interval
// carries "suppressed", the count of lines left out since the last one.
func (o *OutageLog) Error(ctx context.Context, log *slog.Logger, msg string, args ...any) {
	if args, ok := o.admit(msg, args); ok {
		log.ErrorContext(ctx, msg, args...)
	}
}

// Warn is Error at WARN, for a failure that refuses nothing but would
// repeat on every request while it lasts.
func (o *OutageLog) Warn(ctx context.Context, log *slog.Logger, msg string, args ...any) {
	if args, ok := o.admit(msg, args); ok {
		log.WarnContext(ctx, msg, args...)
	}
}

// admit reports whether msg is due, with args and the count of lines left
// out since its last line.
func (o *OutageLog) admit(msg string, args []any) ([]any, bool) {
	o.mu.Lock()
	now := o.now()
	if now.Before(o.next[msg]) {
		o.skipped[msg]++
		o.mu.Unlock()
		return nil, false
	}
	o.next[msg] = now.Add(OutageLogInterval)
	n := o.skipped[msg]
	delete(o.skipped, msg)
	o.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	return args, true
}
