package sessions_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
)

// rewindables are the Rewindable stores, each new and empty.
func rewindables(t *testing.T) map[string]func(t *testing.T) interface {
	sessions.Store
	sessions.Families
	sessions.Rewindable
} {
	type both = interface {
		sessions.Store
		sessions.Families
		sessions.Rewindable
	}
	return map[string]func(t *testing.T) both{
		"memory": func(t *testing.T) both { return sessions.NewMemory() },
		"redis":  func(t *testing.T) both { return sessionstest.NewRedis(t) },
		"cached": func(t *testing.T) both {
			r := sessionstest.NewRedis(t)
			c, err := sessions.NewCached(t.Context(), r, time.Minute, 100)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return struct {
				*sessions.Cached
				sessions.Families
			}{c, r}
		},
	}
}

func TestMarker(t *testing.T) {
	for name, open := range rewindables(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			st := open(t)
			m, err := st.Marker(ctx)
			if err != nil || m.Present || m.Epoch != 0 || m.Server == "" {
				t.Fatalf("new store's marker = %+v, %v; want a server and no epoch", m, err)
			}
			set, err := st.SetMarker(ctx, 7, 3)
			if err != nil || set != (sessions.Marker{Server: m.Server, Epoch: 7, Present: true, Applied: 3}) {
				t.Fatalf("SetMarker(7, 3) = %+v, %v", set, err)
			}
			// The applied count is only raised.
			if low, err := st.SetMarker(ctx, 8, 1); err != nil || low.Applied != 3 || low.Epoch != 8 {
				t.Fatalf("SetMarker(8, 1) = %+v, %v; want epoch 8, applied still 3", low, err)
			}
			set.Epoch = 8
			if again, err := st.Marker(ctx); err != nil || again != set {
				t.Fatalf("marker after SetMarker = %+v, %v; want %+v", again, err, set)
			}
		})
	}
}

// TestRevokeBefore: a revocation applied again ends the sessions it names
// that began before its time and spares those begun after.
func TestRevokeBefore(t *testing.T) {
	cases := []struct {
		kind, subject string
		// which of old (user u1, conn c1), other (user u2, conn c2) end
		endsOld, endsOther bool
	}{
		{kind: sessions.ReasonUser, subject: "usr_1", endsOld: true},
		{kind: sessions.ReasonConnection, subject: "conn_1", endsOld: true},
		{kind: sessions.ReasonTenant, endsOld: true, endsOther: true},
		{kind: sessions.ReasonSession, subject: "old", endsOld: true},
	}
	for name, open := range rewindables(t) {
		for _, tc := range cases {
			t.Run(name+"/"+tc.kind, func(t *testing.T) {
				ctx := t.Context()
				st := open(t)
				mk := func(id, user, conn string) sessions.Session {
					t.Helper()
					s := sessions.Session{ID: id + "-" + name + tc.kind, TenantID: "tnt_1", UserID: user, ConnectionID: conn, ExpiresAt: time.Now().Add(time.Hour)}
					if err := st.Create(ctx, s); err != nil {
						t.Fatal(err)
					}
					return s
				}
				old := mk("old", "usr_1", "conn_1")
				other := mk("other", "usr_2", "conn_2")
				time.Sleep(5 * time.Millisecond)
				cutoff := time.Now()
				time.Sleep(5 * time.Millisecond)
				// Begun after the revocation: the same user, connection and
				// tenant as old.
				later := mk("later", "usr_1", "conn_1")

				subject := tc.subject
				if tc.kind == sessions.ReasonSession {
					subject = old.ID
				}
				ended, err := st.RevokeBefore(ctx, tc.kind, "tnt_1", subject, cutoff)
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]bool{old.ID: tc.endsOld, other.ID: tc.endsOther, later.ID: false}
				got := map[string]bool{}
				for _, s := range ended {
					got[s.ID] = true
				}
				for id, ends := range want {
					if got[id] != ends {
						t.Errorf("ended %s = %v, want %v", id, got[id], ends)
					}
					_, err := st.Get(ctx, id)
					if gone := errors.Is(err, sessions.ErrNotFound); gone != ends {
						t.Errorf("after the replay, Get(%s) = %v; want gone=%v", id, err, ends)
					}
				}
				if _, err := st.RevokeBefore(ctx, "everything", "tnt_1", "", cutoff); err == nil {
					t.Error("RevokeBefore of an unknown kind succeeded")
				}
			})
		}
	}
}

// TestRevokeBeforeClient: a grant's revocation applied again (a session
// store that came back from an older snapshot) is set once more, as of its
// time but never later than now, through a cache as well; the session
// stays.
func TestRevokeBeforeClient(t *testing.T) {
	for name, open := range rewindables(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			st := open(t)
			s := sessions.Session{ID: "ses_grant_" + name, TenantID: "tnt_1", UserID: "usr_1", ExpiresAt: time.Now().Add(time.Hour)}
			if err := st.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Get(ctx, s.ID); err != nil { // a cache holds it
				t.Fatal(err)
			}
			at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
			ended, err := st.RevokeBefore(ctx, sessions.ReasonClient, "tnt_1", sessions.GrantSubject(s.ID, "app_b"), at)
			if err != nil || len(ended) != 0 {
				t.Fatalf("RevokeBefore(client) = %v, %v; want nothing ended", ended, err)
			}
			got, err := st.Get(ctx, s.ID)
			if err != nil || !got.Revoked["app_b"].Equal(at) {
				t.Fatalf("after the replay Get = %+v, %v; want live, app_b revoked at %v", got.Revoked, err, at)
			}
			// A time beyond now (a replay's slack) is cut to now: sign-ins
			// after the replay must work.
			before := time.Now()
			if _, err := st.RevokeBefore(ctx, sessions.ReasonClient, "tnt_1", sessions.GrantSubject(s.ID, "app_b"), before.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			got, err = st.Get(ctx, s.ID)
			if r := got.Revoked["app_b"]; err != nil || r.Before(before.Truncate(time.Millisecond)) || r.After(time.Now()) {
				t.Errorf("after a replay with a future time, Revoked = %v, %v; want about now", r, err)
			}
			if _, err := st.RevokeBefore(ctx, sessions.ReasonClient, "tnt_1", "no-client", at); err == nil {
				t.Error("RevokeBefore of a malformed grant succeeded")
			}
		})
	}
}

// TestSuspend: a suspended store refuses every read that could vouch for
// a session, with ErrSuspended, and takes writes and revocations.
func TestSuspend(t *testing.T) {
	for name, open := range rewindables(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			st := open(t)
			s := sessions.Session{ID: "ses_s-" + name, TenantID: "tnt_1", UserID: "usr_1", ExpiresAt: time.Now().Add(time.Hour)}
			if err := st.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
			f := sessions.Family{ID: "fam_s-" + name, SessionID: s.ID, Gen: 1, Hash: "h1", ExpiresAt: s.ExpiresAt}
			if err := st.StartFamily(ctx, f); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Get(ctx, s.ID); err != nil { // cached, where there is a cache
				t.Fatal(err)
			}
			st.Suspend(true)
			reads := map[string]func() error{
				"Get":      func() error { _, err := st.Get(ctx, s.ID); return err },
				"ListUser": func() error { _, err := st.ListUser(ctx, "tnt_1", "usr_1"); return err },
				"Family":   func() error { _, err := st.Family(ctx, f.ID); return err },
				"Rotate": func() error {
					_, _, err := st.Rotate(ctx, f.ID, 1, "h1", sessions.Family{Hash: "h2", ExpiresAt: f.ExpiresAt})
					return err
				},
			}
			for what, read := range reads {
				if err := read(); !errors.Is(err, sessions.ErrSuspended) {
					t.Errorf("%s while suspended = %v; want ErrSuspended", what, err)
				}
			}
			s2 := s
			s2.ID += "-2"
			if err := st.Create(ctx, s2); err != nil {
				t.Errorf("Create while suspended: %v", err)
			}
			if _, err := st.RevokeSession(ctx, s2.ID); err != nil {
				t.Errorf("RevokeSession while suspended: %v", err)
			}
			st.Suspend(false)
			for what, read := range reads {
				if err := read(); err != nil {
					t.Errorf("%s after Suspend(false) = %v", what, err)
				}
			}
		})
	}
}

func TestSuspendedCacheCachesNothing(t *testing.T) {
	ctx := context.Background()
	r := sessionstest.NewRedis(t)
	c, err := sessions.NewCached(ctx, r, time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := sessions.Session{ID: "ses_cache", TenantID: "tnt_1", UserID: "usr_1", ExpiresAt: time.Now().Add(time.Hour)}
	if err := c.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	c.Suspend(true)
	if n := c.Len(); n != 0 {
		t.Fatalf("a suspended cache holds %d entries", n)
	}
	// Revoked behind the cache's back, as a replay on another node would,
	// while suspended: nothing from before may come back after.
	if _, err := r.RevokeSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	c.Suspend(false)
	if _, err := c.Get(ctx, s.ID); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("Get after the suspension = %v; want ErrNotFound", err)
	}
}

// TestVouch: once a server is vouched for, the first connection the
// client of OpenRedis makes to another (Redis restarted under it)
// suspends the store before it carries a read: the read that redialled
// answers ErrSuspended, not what the new server holds.
func TestVouch(t *testing.T) {
	ctx := t.Context()
	rs := sessionstest.StartServer(t)
	c, err := sessions.OpenRedis(ctx, rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := sessions.NewRedis(c, sessions.RedisOptions{})
	s := sessions.Session{ID: "ses_vouch", TenantID: "tnt_1", UserID: "usr_1", ExpiresAt: time.Now().Add(time.Hour)}
	if err := r.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	m, err := r.Marker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.Vouch(m.Server)
	if _, err := r.Get(ctx, s.ID); err != nil {
		t.Fatalf("Get on the vouched server: %v", err)
	}
	if r.Stranger() != "" || r.Strangers() != 0 {
		t.Fatalf("a stranger before any restart: %q, %d", r.Stranger(), r.Strangers())
	}

	rs.Kill()
	rs.Start() // every write kept, another run_id
	if _, err := r.Get(ctx, s.ID); !errors.Is(err, sessions.ErrSuspended) {
		t.Fatalf("the first Get after a restart = %v; want ErrSuspended", err)
	}
	now, err := r.Marker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if now.Server == m.Server || r.Stranger() != now.Server || r.Strangers() == 0 {
		t.Fatalf("after a restart: stranger %q (%d), server %q, vouched %q", r.Stranger(), r.Strangers(), now.Server, m.Server)
	}
	r.Vouch(now.Server)
	r.Suspend(false)
	if r.Stranger() != "" {
		t.Errorf("vouching for the stranger leaves it %q", r.Stranger())
	}
	if _, err := r.Get(ctx, s.ID); err != nil {
		t.Errorf("Get once the new server is vouched for: %v", err)
	}
}

// TestMarkerCountsRevocations: every revocation Redis applies counts,
// whatever it ended, in the script that applies it.
func TestMarkerCountsRevocations(t *testing.T) {
	ctx := t.Context()
	st := sessionstest.NewRedis(t)
	count := func() int64 {
		t.Helper()
		m, err := st.Marker(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return m.Applied
	}
	s := sessions.Session{ID: "ses_counted", TenantID: "ten_1", UserID: "usr_1", ExpiresAt: time.Now().Add(time.Hour)}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	revocations := []struct {
		name string
		do   func() error
	}{
		{"client", func() error { return st.RevokeClient(ctx, s.ID, "app_1", time.Now()) }},
		{"session", func() error { _, err := st.RevokeSession(ctx, s.ID); return err }},
		{"session already gone", func() error { _, err := st.RevokeSession(ctx, s.ID); return err }},
		{"user", func() error { _, err := st.RevokeUser(ctx, "ten_1", "usr_1"); return err }},
		{"tenant", func() error { _, err := st.RevokeTenant(ctx, "ten_1"); return err }},
		{"connection", func() error { _, err := st.RevokeConnection(ctx, "ten_1", "conn_1"); return err }},
		{"replayed", func() error {
			_, err := st.RevokeBefore(ctx, sessions.ReasonUser, "ten_1", "usr_1", time.Now())
			return err
		}},
	}
	for _, rv := range revocations {
		before := count()
		if err := rv.do(); err != nil {
			t.Fatalf("%s: %v", rv.name, err)
		}
		if after := count(); after != before+1 {
			t.Errorf("%s: applied count %d, then %d; want one more", rv.name, before, after)
		}
	}
	if err := st.Create(ctx, sessions.Session{ID: "ses_other", TenantID: "ten_1", UserID: "usr_1", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "ses_other"); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != int64(len(revocations)) {
		t.Errorf("creating and reading a session moved the count to %d", n)
	}
}

// TestMarkerWithoutInfo: a Redis whose ACL refuses INFO is still usable:
// Marker reports it blind (no run_id) with its epoch and count, and new
// connections after a Vouch carry reads instead of failing on INFO.
func TestMarkerWithoutInfo(t *testing.T) {
	ctx := t.Context()
	rs := sessionstest.StartServer(t)
	rs.DenyInfo()
	c, err := sessions.OpenRedis(ctx, rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := sessions.NewRedis(c, sessions.RedisOptions{})
	m, err := st.Marker(ctx)
	if err != nil || !m.Blind || m.Server != "" {
		t.Fatalf("Marker without INFO = %+v, %v; want blind", m, err)
	}
	set, err := st.SetMarker(ctx, 4, 2)
	if err != nil || set != (sessions.Marker{Epoch: 4, Present: true, Applied: 2, Blind: true}) {
		t.Fatalf("SetMarker without INFO = %+v, %v", set, err)
	}
	st.Vouch(set.Server)
	rs.Kill() // every pooled connection breaks: the next ones are new
	rs.Start()
	if err := st.Create(ctx, sessions.Session{ID: "ses_blind", TenantID: "ten_1", UserID: "usr_1", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("Create on a new connection: %v", err)
	}
	if _, err := st.Get(ctx, "ses_blind"); err != nil {
		t.Fatalf("Get on a new connection without INFO: %v", err)
	}
}
