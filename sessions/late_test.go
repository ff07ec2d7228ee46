package sessions_test

import (
	"errors"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// TestSpendsOfAHungRedisDoNothingLate: Redis hangs (SIGSTOP) with a
// refresh token's rotation and a code's redemption in its socket; the node
// gives up (read timeout) and answers 503. When Redis wakes it runs both:
// before, the rotation moved the family on and the code was spent, so the
// client's retry — what a 503 invites — was taken for reuse and signed the
// user out. Now each script carries the Redis time after which nobody
// waits for it, and does nothing after: the retry finds the token and the
// code as they were.
func TestSpendsOfAHungRedisDoNothingLate(t *testing.T) {
	srv := sessionstest.StartServer(t)
	ctx := t.Context()
	c, err := sessions.OpenRedis(ctx, srv.URL()+"?read_timeout=300ms&max_retries=-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := sessions.NewRedis(c, sessions.RedisOptions{})
	if _, err := r.Marker(ctx); err != nil { // measures Redis's clock, as Rewinds does each second
		t.Fatal(err)
	}
	s := sessions.Session{ID: "ses_late", TenantID: "tnt_a", UserID: "usr_1", ConnectionID: "conn_1",
		AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := r.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	fam := sessions.Family{ID: "fam_late", SessionID: s.ID, Hash: "h0", Grant: []byte("g0"), ExpiresAt: s.ExpiresAt}
	if err := r.StartFamily(ctx, fam); err != nil {
		t.Fatal(err)
	}
	next := fam
	next.Hash = "h1"
	if err := r.Put(ctx, "code_late", []byte("grant"), time.Minute); err != nil {
		t.Fatal(err)
	}

	// The scripts are loaded, as on a node that has served a while: a
	// script Redis does not know yet would wake to NOSCRIPT, not run.
	warm := fam
	warm.ID = "fam_warm"
	if err := r.StartFamily(ctx, warm); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Rotate(ctx, warm.ID, 0, "h0", next); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Spend(ctx, "code_warm", "usedcode_warm", time.Minute); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("spend of nothing: %v", err)
	}

	srv.Pause()
	if _, _, err := r.Rotate(ctx, fam.ID, 0, "h0", next); err == nil {
		t.Fatal("a rotation answered while Redis was stopped")
	}
	if _, err := r.Spend(ctx, "code_late", "usedcode_late", time.Minute); err == nil {
		t.Fatal("a spend answered while Redis was stopped")
	}
	time.Sleep(time.Second) // past both requests' read timeouts
	srv.Resume()

	// Redis has now run what was in its socket.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := r.Marker(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis did not answer after it resumed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f, err := r.Family(ctx, fam.ID)
	if err != nil || f.Gen != 0 || f.Hash != "h0" {
		t.Fatalf("family after the late rotation: %+v, %v; want generation 0 untouched", f, err)
	}
	if res, _, err := r.Rotate(ctx, fam.ID, 0, "h0", next); err != nil || res != sessions.Rotated {
		t.Fatalf("the client's retry: %v, %v; want Rotated", res, err)
	}
	if v, err := r.Spend(ctx, "code_late", "usedcode_late", time.Minute); err != nil || string(v) != "grant" {
		t.Fatalf("the code's retry: %q, %v; want the grant", v, err)
	}
	if _, err := r.Get(ctx, s.ID); err != nil {
		t.Fatalf("session: %v; want it live", err)
	}

	// An answer in time is not refused.
	fam2 := fam
	fam2.ID = "fam_in_time"
	if err := r.StartFamily(ctx, fam2); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Marker(ctx); err != nil {
		t.Fatal(err)
	}
	if res, _, err := r.Rotate(ctx, fam2.ID, 0, "h0", next); err != nil || res != sessions.Rotated {
		t.Fatalf("rotation in time: %v, %v", res, err)
	}
}
