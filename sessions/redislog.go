package sessions

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisLogInterval is how often, at most, the Redis client library's own
// messages are logged: while Redis is down it reports each failed dial,
// so once per request, and the broker's own lines already say what is
// wrong (the session store, the rate limiter).
const redisLogInterval = 10 * time.Second

// SetRedisLogger sends the messages the Redis client library logs itself
// (a connection pool that cannot dial, a reconnect) to log, at WARN,
// instead of the library's own plain-text lines on stderr, which break a
// JSON log and come once per request while Redis is down: at most one line
// every 10 s, counting the messages left out in between. go-redis has one
// logger per process, so the wiring calls this once, at start.
func SetRedisLogger(log *slog.Logger) {
	redis.SetLogger(newRedisLogger(log, redisLogInterval, time.Now))
}

// redisLogger is go-redis's Logging, rate-limited into an slog.Logger.
type redisLogger struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	last    time.Time // when the last line was written; zero before
	skipped int       // messages left out since
}

func newRedisLogger(log *slog.Logger, every time.Duration, now func() time.Time) *redisLogger {
	return &redisLogger{log: log, every: every, now: now}
}

// Printf implements go-redis's internal.Logging.
func (l *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.mu.Lock()
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.skipped++
		l.mu.Unlock()
		return
	}
	skipped := l.skipped
	l.last, l.skipped = now, 0
	l.mu.Unlock()
	attrs := []any{"surface", "redis"}
	if skipped > 0 {
		attrs = append(attrs, "messages_left_out", skipped)
	}
	l.log.WarnContext(ctx, "redis client: "+fmt.Sprintf(format, v...), attrs...)
}
