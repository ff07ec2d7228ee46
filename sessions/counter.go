package sessions

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Counter counts events per key across all nodes, for limits that are not
// a request rate: failed sign-ins of an account, whose lockout grows with
// their number however slowly they come.
type Counter interface {
	// Incr adds one to key's count, keeps the count for ttl from now
	// (each Incr extends it) and returns the new count.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
}

var (
	_ Counter = (*Memory)(nil)
	_ Counter = (*Redis)(nil)
)

type count struct {
	n       int64
	expires time.Time
}

// Incr implements Counter.
func (m *Memory) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if err := checkTTL(key, ttl); err != nil {
		return 0, fmt.Errorf("sessions: incr: %w", err)
	}
	now := time.Now()
	m.onceMu.Lock()
	defer m.onceMu.Unlock()
	m.sweepOnceLocked(now)
	c := m.counts[key]
	if !now.Before(c.expires) {
		c = count{}
	}
	c.n++
	c.expires = now.Add(ttl)
	m.counts[key] = c
	return c.n, nil
}

// incrScript adds one and sets the expiry in one step, so that no count
// is left without one.
var incrScript = redis.NewScript(`
local n = redis.call("INCR", KEYS[1])
redis.call("PEXPIRE", KEYS[1], ARGV[1])
return n`)

// Incr implements Counter.
func (r *Redis) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if err := checkTTL(key, ttl); err != nil {
		return 0, fmt.Errorf("sessions: incr: %w", err)
	}
	n, err := incrScript.Run(ctx, r.c, []string{r.prefix + "n:" + key}, max(ttl.Milliseconds(), 1)).Int64()
	if err != nil {
		return 0, fmt.Errorf("sessions: redis incr: %w", err)
	}
	return n, nil
}
