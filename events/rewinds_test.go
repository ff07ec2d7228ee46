package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/sessions/sessionstest"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// TestRewindsCheck: a node trusts the session store only when it is the
// server, holding the epoch, that the database names; otherwise it
// replays the kept revocations (ending the sessions they ended that came
// back, sparing those begun after them) and advances the epoch. Each case
// starts trusted, with alice's first session revoked by a deprovisioning
// and her second begun after it.
func TestRewindsCheck(t *testing.T) {
	cases := []struct {
		name string
		// change does to the session store what the case is about.
		change func(t *testing.T, rs *sessionstest.Server, snap string, ss *sessions.Redis)
		replay bool // whether the check must replay
		// back: the revoked session is in the store before the check.
		back bool
		// blind: the server refuses INFO (an ACL), from the start.
		blind bool
	}{
		{name: "nothing changed", change: func(*testing.T, *sessionstest.Server, string, *sessions.Redis) {}},
		{name: "restarted from a snapshot taken before the revocation", replay: true, back: true,
			change: func(t *testing.T, rs *sessionstest.Server, snap string, _ *sessions.Redis) { rs.RestartFrom(snap) }},
		{name: "restarted empty", replay: true,
			change: func(t *testing.T, rs *sessionstest.Server, _ string, _ *sessions.Redis) { rs.RestartEmpty() }},
		{name: "restarted with all its data (a new run_id)", replay: true,
			change: func(t *testing.T, rs *sessionstest.Server, _ string, _ *sessions.Redis) { rs.Kill(); rs.Start() }},
		{name: "flushed while running", replay: true,
			change: func(t *testing.T, rs *sessionstest.Server, _ string, _ *sessions.Redis) {
				if err := rs.Client(t).FlushAll(t.Context()).Err(); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "an older epoch while running (a live restore)", replay: true,
			change: func(t *testing.T, rs *sessionstest.Server, _ string, ss *sessions.Redis) {
				m, err := ss.Marker(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ss.SetMarker(t.Context(), m.Epoch-1, 0); err != nil {
					t.Fatal(err)
				}
			}},
		// The snapshot holds the epoch the database names (no advance
		// since it was taken) and the server keeps its run_id: only the
		// count of applied revocations tells.
		{name: "restored in place from a snapshot at the same epoch", replay: true, back: true,
			change: func(t *testing.T, rs *sessionstest.Server, snap string, _ *sessions.Redis) { rs.RestoreInPlace(snap) }},
		{name: "without INFO/nothing changed", blind: true,
			change: func(*testing.T, *sessionstest.Server, string, *sessions.Redis) {}},
		{name: "without INFO/restarted with all its data", blind: true,
			change: func(t *testing.T, rs *sessionstest.Server, _ string, _ *sessions.Redis) { rs.Kill(); rs.Start() }},
		{name: "without INFO/restarted from a snapshot at the same epoch", blind: true, replay: true, back: true,
			change: func(t *testing.T, rs *sessionstest.Server, snap string, _ *sessions.Redis) { rs.RestartFrom(snap) }},
		{name: "without INFO/restored in place", blind: true, replay: true, back: true,
			change: func(t *testing.T, rs *sessionstest.Server, snap string, _ *sessions.Redis) { rs.RestoreInPlace(snap) }},
		{name: "without INFO/restarted empty", blind: true, replay: true,
			change: func(t *testing.T, rs *sessionstest.Server, _ string, _ *sessions.Redis) { rs.RestartEmpty() }},
	}
	for _, b := range storetest.Backends {
		for _, tc := range cases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				ctx := t.Context()
				st := b.Open(t)
				rs := sessionstest.StartServer(t)
				if tc.blind {
					rs.DenyInfo()
				}
				raw := sessions.NewRedis(rs.Client(t), sessions.RedisOptions{})
				cached, err := sessions.NewCached(ctx, raw, time.Minute, 100)
				if err != nil {
					t.Fatal(err)
				}
				defer cached.Close()
				rw, err := events.NewRewinds(events.RewindConfig{Store: st, Sessions: cached, Keep: time.Hour, Slack: time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := cached.Get(ctx, "ses_none"); !errors.Is(err, sessions.ErrSuspended) {
					t.Fatalf("Get before the first check = %v; want ErrSuspended", err)
				}
				if _, err := rw.Check(ctx); err != nil {
					t.Fatal(err)
				}
				first, err := st.SessionStoreEpoch(ctx)
				if err != nil || first.Epoch != 1 || (first.Server == "") != tc.blind {
					t.Fatalf("epoch after the first check = %+v, %v; want 1 and the server (unless INFO is refused)", first, err)
				}

				tn, err := st.CreateTenant(ctx, store.Tenant{Name: "Rewound"})
				if err != nil {
					t.Fatal(err)
				}
				alice := store.NewID(store.PrefixUser)
				newSession := func() string {
					id := store.NewID(store.PrefixSession)
					if err := cached.Create(ctx, sessions.Session{ID: id, TenantID: tn.ID, UserID: alice, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
						t.Fatal(err)
					}
					return id
				}
				old := newSession()
				snap := rs.Snapshot()
				revoker, err := events.NewRevoker(events.RevokerConfig{Store: st, Sessions: cached})
				if err != nil {
					t.Fatal(err)
				}
				var rv store.Revocation
				if err := st.InTx(store.WithTenant(ctx, tn.ID), func(ctx context.Context) error {
					rv, err = st.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: alice, Reason: "scim:deleted"})
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if _, err := revoker.Apply(ctx, rv); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond) // past the slack
				later := newSession()
				// Every node checks every second: one sees the revocation
				// counted before Redis loses it.
				if _, err := rw.Check(ctx); err != nil {
					t.Fatal(err)
				}
				if ep, err := st.SessionStoreEpoch(ctx); err != nil || ep.Applied < 1 {
					t.Fatalf("after a revocation and a check, the database's applied count = %+v, %v", ep, err)
				}

				tc.change(t, rs, snap, raw)
				if got := exists(t, rs, old); got != tc.back {
					t.Fatalf("before the check, the revoked session is in Redis = %v; want %v", got, tc.back)
				}
				ended, err := rw.Check(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]int{true: 1}[tc.back]; ended != want {
					t.Errorf("the check ended %d sessions; want %d", ended, want)
				}
				if _, err := cached.Get(ctx, old); !errors.Is(err, sessions.ErrNotFound) {
					t.Errorf("the revoked session after the check: %v; want ErrNotFound", err)
				}
				// The session begun after the revocation survives wherever
				// the store kept it.
				if _, err := cached.Get(ctx, later); err != nil && !errors.Is(err, sessions.ErrNotFound) {
					t.Errorf("the later session after the check: %v", err)
				} else if kept := err == nil; kept != exists(t, rs, later) {
					t.Errorf("the later session: Get says %v, Redis says %v", kept, !kept)
				} else if tc.name == "nothing changed" && !kept {
					t.Errorf("the session begun after the revocation was ended")
				}
				ep, err := st.SessionStoreEpoch(ctx)
				if err != nil {
					t.Fatal(err)
				}
				m, err := raw.Marker(ctx)
				if err != nil {
					t.Fatal(err)
				}
				wantEpoch := first.Epoch
				if tc.replay {
					wantEpoch++
				}
				if ep.Epoch != wantEpoch || m != (sessions.Marker{Server: ep.Server, Epoch: ep.Epoch, Present: true, Applied: m.Applied, Blind: tc.blind}) || m.Applied < ep.Applied {
					t.Errorf("after the check: database %+v, store %+v; want both at epoch %d on the store's server", ep, m, wantEpoch)
				}
				// Trusted again: a second check changes nothing.
				if n, err := rw.Check(ctx); err != nil || n != 0 {
					t.Errorf("second check = %d, %v", n, err)
				}
				if again, _ := st.SessionStoreEpoch(ctx); again.Epoch != ep.Epoch {
					t.Errorf("a second check moved the epoch to %d", again.Epoch)
				}
			})
		}
	}
}

// TestRewindsReplaySparesLaterSessions: a replayed revocation of each kind
// ends the sessions begun before it was applied and spares those begun
// after (a reactivated user, a resumed tenant), and a revocation still
// queued ends every session it names.
func TestRewindsReplaySparesLaterSessions(t *testing.T) {
	kinds := []store.RevocationKind{store.RevokeUser, store.RevokeTenant, store.RevokeConnection, store.RevokeSession}
	for _, b := range storetest.Backends {
		for _, kind := range kinds {
			for _, queued := range []bool{false, true} {
				name := b.Name + "/" + string(kind)
				if queued {
					name += "/queued"
				}
				t.Run(name, func(t *testing.T) {
					ctx := t.Context()
					st := b.Open(t)
					ss := sessions.NewMemory()
					tn, err := st.CreateTenant(ctx, store.Tenant{Name: "Replayed"})
					if err != nil {
						t.Fatal(err)
					}
					user, conn := store.NewID(store.PrefixUser), store.NewID(store.PrefixConnection)
					mk := func() string {
						id := store.NewID(store.PrefixSession)
						if err := ss.Create(ctx, sessions.Session{ID: id, TenantID: tn.ID, UserID: user, ConnectionID: conn, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
							t.Fatal(err)
						}
						return id
					}
					before := mk()
					subject := map[store.RevocationKind]string{store.RevokeUser: user, store.RevokeConnection: conn, store.RevokeSession: before}[kind]
					rv, err := st.RecordRevocation(store.WithTenant(ctx, tn.ID), store.Revocation{Kind: kind, TenantID: tn.ID, SubjectID: subject})
					if err != nil {
						t.Fatal(err)
					}
					if !queued {
						if err := st.FinishRevocation(ctx, rv.ID, nil); err != nil {
							t.Fatal(err)
						}
					}
					time.Sleep(5 * time.Millisecond)
					after := mk()
					// A new Memory is what an embedded broker finds at every
					// start; this one "lost" the revocation by never having
					// been given it.
					rw, err := events.NewRewinds(events.RewindConfig{Store: st, Sessions: cachedOver(t, ss), Keep: time.Hour, Slack: time.Millisecond})
					if err != nil {
						t.Fatal(err)
					}
					if _, err := rw.Check(ctx); err != nil {
						t.Fatal(err)
					}
					if _, err := ss.Get(ctx, before); !errors.Is(err, sessions.ErrNotFound) {
						t.Errorf("session begun before the revocation: %v; want ended", err)
					}
					_, err = ss.Get(ctx, after)
					if endsAll := queued && kind != store.RevokeSession; endsAll != errors.Is(err, sessions.ErrNotFound) {
						t.Errorf("session begun after the revocation: %v; want ended=%v", err, endsAll)
					}
				})
			}
		}
	}
}

// TestRewindsPrunes: revocations applied longer ago than Keep are pruned
// by Run and no longer replayed.
func TestRewindsPrunes(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			st := b.Open(t)
			tn, err := st.CreateTenant(ctx, store.Tenant{Name: "Pruned"})
			if err != nil {
				t.Fatal(err)
			}
			rv, err := st.RecordRevocation(store.WithTenant(ctx, tn.ID), store.Revocation{Kind: store.RevokeTenant, TenantID: tn.ID})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.FinishRevocation(ctx, rv.ID, nil); err != nil {
				t.Fatal(err)
			}
			// Run with a clock two hours ahead: Keep (an hour) has passed.
			ss := sessions.NewMemory()
			rw, err := events.NewRewinds(events.RewindConfig{Store: st, Sessions: cachedOver(t, ss), Keep: time.Hour,
				Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { defer close(done); rw.Run(ctx) }()
			deadline := time.Now().Add(10 * time.Second)
			for {
				kept, err := st.KeptRevocations(ctx, time.Time{}, 0, 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(kept) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still kept after Keep: %+v", kept)
				}
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			<-done
		})
	}
}

func cachedOver(t *testing.T, s sessions.Store) *sessions.Cached {
	t.Helper()
	c, err := sessions.NewCached(t.Context(), s, time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// exists reports whether session id's hash is in the server, read around
// any suspension.
func exists(t *testing.T, rs *sessionstest.Server, id string) bool {
	t.Helper()
	n, err := rs.Client(t).Exists(t.Context(), sessions.DefaultPrefix+"ses:"+id).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}
