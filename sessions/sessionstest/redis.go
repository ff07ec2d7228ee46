package sessionstest

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/redis/go-redis/v9"
)

// DefaultRedisURL is used when IDBROKER_TEST_REDIS_URL is unset.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// Redis connects to the test Redis at IDBROKER_TEST_REDIS_URL (default
// DefaultRedisURL) and closes the client when t ends. If Redis cannot be
// reached the test fails when CI=true, so CI never passes by skipping, and
// is skipped otherwise.
func Redis(t testing.TB) redis.UniversalClient {
	t.Helper()
	url := os.Getenv("IDBROKER_TEST_REDIS_URL")
	if url == "" {
		url = DefaultRedisURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := sessions.OpenRedis(ctx, url)
	if err != nil {
		msg := "Redis unreachable (set IDBROKER_TEST_REDIS_URL or start redis-server): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { c.Close() })
	return c
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
