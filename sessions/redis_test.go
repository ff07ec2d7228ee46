package sessions_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
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

// TestRevokedGrantEndsSessionForOlderVersions: a session hash as the
// version before grant revocation wrote it (no fields of later versions)
// has one application's grant revoked. A node of that version, still
// serving during a rolling upgrade, reads only "exp" (unix ns) and must
// find the session ended, as its own token revocation ended it: it knows
// nothing of per-application revocations and would otherwise vouch for the
// revoked tokens. This version still reads the session, live until its
// real expiry, with the grant revoked; revoking again keeps that expiry;
// the key's TTL is unchanged.
func TestRevokedGrantEndsSessionForOlderVersions(t *testing.T) {
	c := sessionstest.Redis(t)
	p := sessionstest.Prefix(t, c)
	r := sessions.NewRedis(c, sessions.RedisOptions{Prefix: p})
	ctx := t.Context()
	now := time.Now()
	exp := now.Add(time.Hour)
	key := p + "ses:ses_old"
	// The hash and indexes as the previous version's create script wrote them.
	if err := c.HSet(ctx, key, "id", "ses_old", "t", "tnt_a", "u", "usr_1", "c", "conn_1",
		"at", strconv.FormatInt(now.UnixNano(), 10), "exp", strconv.FormatInt(exp.UnixNano(), 10),
		"cr", strconv.FormatInt(now.UnixMilli(), 10), "a:app_a", "1", "a:app_b", "1").Err(); err != nil {
		t.Fatal(err)
	}
	c.PExpireAt(ctx, key, exp)
	c.SAdd(ctx, p+"user:tnt_a:usr_1", "ses_old")
	c.SAdd(ctx, p+"tenant:tnt_a", "ses_old")

	oldReaderSeesLive := func() bool {
		raw, err := c.HGet(ctx, key, "exp").Result()
		if err != nil {
			return false // gone: ended for every version
		}
		ns, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			t.Fatalf("exp = %q: the previous version cannot parse it (%v) and would fail, not end, the session", raw, err)
		}
		return time.Now().Before(time.Unix(0, ns))
	}
	if s, err := r.Get(ctx, "ses_old"); err != nil || s.ExpiresAt.UnixNano() != exp.UnixNano() || !oldReaderSeesLive() {
		t.Fatalf("before the revocation: %+v, %v (old reader sees it live: %v)", s, err, oldReaderSeesLive())
	}
	for range 2 {
		if err := r.RevokeClient(ctx, "ses_old", "app_a", now); err != nil {
			t.Fatal(err)
		}
		if oldReaderSeesLive() {
			t.Error("a node of the previous version still reads the session as live after a grant in it was revoked")
		}
		s, err := r.Get(ctx, "ses_old")
		if err != nil {
			t.Fatalf("Get after the grant's revocation: %v; want the session live", err)
		}
		if s.ExpiresAt.UnixNano() != exp.UnixNano() || !s.GrantRevoked("app_a", now.Unix()) || s.GrantRevoked("app_b", now.Unix()) {
			t.Errorf("after the grant's revocation: expires %v (want %v), revoked %v", s.ExpiresAt, exp, s.Revoked)
		}
		live, err := r.ListUser(ctx, "tnt_a", "usr_1")
		if err != nil || len(live) != 1 {
			t.Errorf("ListUser = %d sessions, %v; want the session", len(live), err)
		}
		if ttl := c.PTTL(ctx, key).Val(); ttl <= 59*time.Minute {
			t.Errorf("PTTL = %v; want the session's hour", ttl)
		}
	}
}

// TestRedisOrderMemorySize: what Redis keeps of an order's sessions
// stays small whatever the sessions carry (a deleted tenant's order ends
// every session it has, and the memory lasts a day).
func TestRedisOrderMemorySize(t *testing.T) {
	c := sessionstest.Redis(t)
	p := sessionstest.Prefix(t, c)
	r := sessions.NewRedis(c, sessions.RedisOptions{Prefix: p})
	ctx := t.Context()
	s := sessions.Session{ID: "ses_m", TenantID: "tnt_m", UserID: "usr_m", ConnectionID: "conn_m",
		AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour), ACR: "urn:acr:mfa", AMR: []string{"pwd"},
		Extra: map[string]string{"groups": strings.Repeat("g", 8192)}}
	if err := r.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := r.AddApp(ctx, s.ID, "app_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RevokeTenant(sessions.ForOrder(ctx, "rev_m"), "tnt_m"); err != nil {
		t.Fatal(err)
	}
	n, err := c.StrLen(ctx, p+"order:rev_m").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n > 256 {
		t.Errorf("order memory of one session = %d bytes; want (0, 256]", n)
	}
}
