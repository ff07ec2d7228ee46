package sessionstest

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/idbroker/idbroker/internal/testdb"
	"github.com/idbroker/idbroker/sessions"
	"github.com/redis/go-redis/v9"
)

// DefaultRedisURL is used when IDBROKER_TEST_REDIS_URL is unset.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// Redis connects to the test Redis at IDBROKER_TEST_REDIS_URL (default
// DefaultRedisURL) and closes the client when t ends. If Redis cannot be
// reached the test fails when CI=true, so CI never passes by skipping, and
// is skipped otherwise (testdb.Unavailable).
func Redis(t testing.TB) redis.UniversalClient {
	t.Helper()
	url := redisURL()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := sessions.OpenRedis(ctx, url)
	if err != nil {
		testdb.Unavailable(t, "Redis unreachable (set IDBROKER_TEST_REDIS_URL or start redis-server): %v", err)
		return nil
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// RedisURL returns the test Redis's URL, for a test that hands it to code
// that dials Redis itself (a broker process, say), after checking as Redis
// does that it answers.
func RedisURL(t testing.TB) string {
	t.Helper()
	Redis(t)
	return redisURL()
}

func redisURL() string {
	if u := os.Getenv("IDBROKER_TEST_REDIS_URL"); u != "" {
		return u
	}
	return DefaultRedisURL
}

// Prefix returns a fresh key prefix, so that a test sharing a Redis with
// others sees only its own keys, and deletes every key under it when t
// ends. It never flushes the database: other tests may be using it.
func Prefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	p := "idbtest:" + rand.Text()[:12] + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, p+"*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleaning up Redis keys %s*: %v", p, err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("cleaning up Redis keys %s*: %v", p, err)
			}
		}
	})
	return p
}

// NewRedis returns a sessions.Redis on the test Redis under a fresh prefix.
func NewRedis(t testing.TB) *sessions.Redis {
	t.Helper()
	c := Redis(t)
	return sessions.NewRedis(c, sessions.RedisOptions{Prefix: Prefix(t, c)})
}
