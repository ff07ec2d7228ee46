package sessions_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/redis/go-redis/v9"
)

func TestRedisConformance(t *testing.T) {
	sessionstest.RunConformance(t, func(t *testing.T) sessionstest.Impl {
		r := sessionstest.NewRedis(t)
		return sessionstest.Impl{Store: r, Once: r, Limiter: r, Counter: r}
	})
}

func TestRedisPing(t *testing.T) {
	r := sessionstest.NewRedis(t)
	if err := r.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := sessions.NewMemory().Ping(t.Context()); err != nil {
		t.Errorf("Memory.Ping: %v", err)
	}
}

func TestOpenRedisErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	for _, url := range []string{"http://127.0.0.1:6379", "redis://127.0.0.1:1/0"} {
		if c, err := sessions.OpenRedis(ctx, url); err == nil {
			c.Close()
			t.Errorf("OpenRedis(%q) succeeded", url)
		}
	}
}

// TestRedisKeys checks the documented key layout and that index sets do not
// outlive their sessions, so Redis memory stays bounded without a sweeper.
func TestRedisKeys(t *testing.T) {
	c := sessionstest.Redis(t)
	p := sessionstest.Prefix(t, c)
	r := sessions.NewRedis(c, sessions.RedisOptions{Prefix: p})
	ctx := t.Context()
	s := sessions.Session{ID: "ses_k", TenantID: "tnt_a", UserID: "usr_1", ConnectionID: "conn_1", ExpiresAt: time.Now().Add(time.Minute)}
	if err := r.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ses:ses_k", "user:tnt_a:usr_1", "tenant:tnt_a", "conn:tnt_a:conn_1"} {
		ttl, err := c.PTTL(ctx, p+k).Result()
		if err != nil || ttl <= 0 || ttl > time.Minute {
			t.Errorf("PTTL(%s) = %v, %v; want (0, 1m]", k, ttl, err)
		}
	}
	if _, err := r.RevokeUser(ctx, "tnt_a", "usr_1"); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, p+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	// What stays is the one count of revocations applied (Marker).
	if len(keys) != 1 || keys[0] != p+"applied" {
		t.Errorf("keys left after revoking the only session: %v; want only the applied count", keys)
	}
}

// TestRedisSubscribeReconnects kills the subscription's connection and
// checks that the subscriber is told to resync and then receives
// revocations again.
func TestRedisSubscribeReconnects(t *testing.T) {
	admin := sessionstest.Redis(t)
	opts := admin.(interface{ Options() *redis.Options }).Options()
	name := "idbtest-" + strings.ReplaceAll(t.Name(), "/", "-") + fmt.Sprint(time.Now().UnixNano())
	named := *opts
	named.ClientName = name
	c := redis.NewClient(&named)
	t.Cleanup(func() { c.Close() })
	r := sessions.NewRedis(c, sessions.RedisOptions{Prefix: sessionstest.Prefix(t, admin)})

	got := make(chan sessions.Revocation, 10)
	if err := r.Subscribe(t.Context(), func(rev sessions.Revocation) { got <- rev }); err != nil {
		t.Fatal(err)
	}
	ids := pubsubClients(t, admin, name)
	if len(ids) != 1 {
		t.Fatalf("found %d pub/sub connections named %s, want 1", len(ids), name)
	}
	if err := admin.Do(t.Context(), "CLIENT", "KILL", "ID", ids[0]).Err(); err != nil {
		t.Fatalf("CLIENT KILL: %v", err)
	}

	// Told twice: when the connection broke and once resubscribed.
	for i := range 2 {
		select {
		case rev := <-got:
			if rev.Reason != sessions.ReasonResync {
				t.Fatalf("got %+v, want a resync", rev)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no resync #%d after the connection was killed", i+1)
		}
	}
	s := sessions.Session{ID: "ses_r", TenantID: "tnt_a", UserID: "usr_1", ExpiresAt: time.Now().Add(time.Minute)}
	if err := r.Create(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if err := r.Revoke(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case rev := <-got:
		if len(rev.SessionIDs) != 1 || rev.SessionIDs[0] != s.ID {
			t.Errorf("after reconnecting got %+v", rev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no revocation delivered after reconnecting")
	}
}

// pubsubClients returns the IDs of the pub/sub connections named name.
func pubsubClients(t *testing.T, c redis.UniversalClient, name string) []string {
	t.Helper()
	list, err := c.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	var ids []string
	for line := range strings.SplitSeq(list, "\n") {
		f := map[string]string{}
		for kv := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if f["name"] == name && f["sub"] != "0" && f["sub"] != "" {
			ids = append(ids, f["id"])
		}
	}
	return ids
}

// TestSubscribeStops checks that ending a subscription's context ends the
// goroutines it started, on both backends.
func TestSubscribeStops(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store func(t *testing.T) sessions.Store
	}{
		{"Memory", func(*testing.T) sessions.Store { return sessions.NewMemory() }},
		{"Redis", func(t *testing.T) sessions.Store { return sessionstest.NewRedis(t) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.store(t)
			before := runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(t.Context())
			for range 10 {
				if err := st.Subscribe(ctx, func(sessions.Revocation) {}); err != nil {
					t.Fatal(err)
				}
			}
			if n := runtime.NumGoroutine(); n < before+10 {
				t.Fatalf("%d goroutines after 10 subscriptions, started with %d", n, before)
			}
			cancel()
			deadline := time.Now().Add(20 * time.Second)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > before {
				t.Errorf("%d goroutines after the subscriptions ended, want at most %d", n, before)
			}
		})
	}
}
