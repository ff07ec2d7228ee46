// Package sessionstest holds the conformance suite that every
// implementation of the sessions interfaces must pass, and helpers that
// connect tests to the test Redis.
package sessionstest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
)

// Impl is one backend under test. The three interfaces may be the same
// value (Memory and Redis implement all of them).
type Impl struct {
	Store   sessions.Store
	Once    sessions.OnceCache
	Limiter sessions.Limiter
	// Counter, when set, runs the Counter tests.
	Counter sessions.Counter
}

// RunConformance runs the suite. newImpl must return a backend that shares
// no state with any other it returned (a fresh Memory, or Redis under a
// fresh prefix).
func RunConformance(t *testing.T, newImpl func(t *testing.T) Impl) {
	tests := []struct {
		name string
		fn   func(t *testing.T, impl Impl)
	}{
		{"CreateGet", testCreateGet},
		{"CreateInvalid", testCreateInvalid},
		{"CreateDuplicate", testCreateDuplicate},
		{"Expiry", testExpiry},
		{"Revoke", testRevoke},
		{"RevokeUser", testRevokeUser},
		{"RevokeTenant", testRevokeTenant},
		{"RevokeConnection", testRevokeConnection},
		{"RevokeClient", testRevokeClient},
		{"Apps", testApps},
		{"OrderMemory", testOrderMemory},
		{"Families", testFamilies},
		{"ListUser", testListUser},
		{"Subscribe", testSubscribe},
		{"SubscribeEnds", testSubscribeEnds},
		{"Remember", testRemember},
		{"RememberRace", testRememberRace},
		{"PutTake", testPutTake},
		{"TakeRace", testTakeRace},
		{"Peek", testPeek},
		{"Spend", testSpend},
		{"Joint", testJoint},
		{"OnceInvalid", testOnceInvalid},
		{"Limiter", testLimiter},
		{"LimiterRefill", testLimiterRefill},
		{"LimiterRace", testLimiterRace},
		{"Counter", testCounter},
		{"CounterRace", testCounterRace},
		{"EraseTenant", testEraseTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newImpl(t))
		})
	}
}

var idSeq atomic.Int64

// newSession returns a live session with a unique ID.
func newSession(tenant, user, conn string) sessions.Session {
	now := time.Now()
	return sessions.Session{
		ID:           fmt.Sprintf("ses_%d_%d", now.UnixNano(), idSeq.Add(1)),
		TenantID:     tenant,
		UserID:       user,
		ConnectionID: conn,
		AuthTime:     now.Add(-time.Second),
		ExpiresAt:    now.Add(time.Hour),
	}
}

func create(t *testing.T, st sessions.Store, ss ...sessions.Session) {
	t.Helper()
	for _, s := range ss {
		if err := st.Create(t.Context(), s); err != nil {
			t.Fatalf("Create(%s): %v", s.ID, err)
		}
	}
}

func assertLive(t *testing.T, st sessions.Store, ss ...sessions.Session) {
	t.Helper()
	for _, s := range ss {
		if _, err := st.Get(t.Context(), s.ID); err != nil {
			t.Errorf("Get(%s) = %v, want the live session", s.ID, err)
		}
	}
}

func assertGone(t *testing.T, st sessions.Store, ss ...sessions.Session) {
	t.Helper()
	for _, s := range ss {
		if _, err := st.Get(t.Context(), s.ID); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("Get(%s) = %v, want ErrNotFound", s.ID, err)
		}
	}
}

// assertIDs checks that got holds exactly the sessions want, in any order.
func assertIDs(t *testing.T, what string, got []sessions.Session, want ...sessions.Session) {
	t.Helper()
	ids := func(ss []sessions.Session) []string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = s.ID
		}
		slices.Sort(out)
		return out
	}
	if g, w := ids(got), ids(want); !slices.Equal(g, w) {
		t.Errorf("%s = %v, want %v", what, g, w)
	}
}

func testCreateGet(t *testing.T, impl Impl) {
	ctx := t.Context()
	s := newSession("tnt_a", "usr_1", "conn_1")
	s.ACR = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	s.AMR = []string{"pwd", "mfa"}
	s.Extra = map[string]string{"idp_subject": "00u1", "email": "alice@acme.test"}
	create(t, impl.Store, s)

	got, err := impl.Store.Get(ctx, s.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.ID != s.ID || got.TenantID != s.TenantID || got.UserID != s.UserID ||
		got.ConnectionID != s.ConnectionID || got.ACR != s.ACR ||
		!got.AuthTime.Equal(s.AuthTime) || !got.ExpiresAt.Equal(s.ExpiresAt) ||
		!slices.Equal(got.AMR, s.AMR) || !maps.Equal(got.Extra, s.Extra) {
		t.Errorf("Get = %+v, want %+v", got, s)
	}

	// What a caller holds is its own.
	got.Extra["email"] = "mallory@evil.test"
	got.AMR[0] = "none"
	s.Extra["idp_subject"] = "changed"
	again, err := impl.Store.Get(ctx, s.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if again.Extra["email"] != "alice@acme.test" || again.AMR[0] != "pwd" || again.Extra["idp_subject"] != "00u1" {
		t.Errorf("stored session changed through a caller's copy: %+v", again)
	}

	// A minimal session: no connection, no extras, zero auth time.
	minimal := sessions.Session{ID: s.ID + "_min", TenantID: "tnt_a", UserID: "usr_1", ExpiresAt: time.Now().Add(time.Minute)}
	create(t, impl.Store, minimal)
	if got, err := impl.Store.Get(ctx, minimal.ID); err != nil || !got.AuthTime.IsZero() || got.ConnectionID != "" || got.AMR != nil || got.Extra != nil {
		t.Errorf("Get(minimal) = %+v, %v", got, err)
	}

	if _, err := impl.Store.Get(ctx, "ses_unknown"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}
}

func testCreateInvalid(t *testing.T, impl Impl) {
	tests := []struct {
		name   string
		mutate func(*sessions.Session)
	}{
		{"no id", func(s *sessions.Session) { s.ID = "" }},
		{"no tenant", func(s *sessions.Session) { s.TenantID = "" }},
		{"no user", func(s *sessions.Session) { s.UserID = "" }},
		{"colon in tenant", func(s *sessions.Session) { s.TenantID = "tnt_a:usr_1" }},
		{"expired", func(s *sessions.Session) { s.ExpiresAt = time.Now().Add(-time.Second) }},
		{"no expiry", func(s *sessions.Session) { s.ExpiresAt = time.Time{} }},
	}
	for _, tt := range tests {
		s := newSession("tnt_a", "usr_1", "")
		tt.mutate(&s)
		if err := impl.Store.Create(t.Context(), s); !errors.Is(err, sessions.ErrInvalid) {
			t.Errorf("%s: Create = %v, want ErrInvalid", tt.name, err)
		}
	}
	if got, err := impl.Store.ListUser(t.Context(), "tnt_a", "usr_1"); err != nil || len(got) != 0 {
		t.Errorf("after refused creates, ListUser = %v, %v; want nothing stored", got, err)
	}
}

func testCreateDuplicate(t *testing.T, impl Impl) {
	s := newSession("tnt_a", "usr_1", "")
	create(t, impl.Store, s)
	other := s
	other.UserID = "usr_2"
	if err := impl.Store.Create(t.Context(), other); !errors.Is(err, sessions.ErrExists) {
		t.Errorf("Create(same ID) = %v, want ErrExists", err)
	}
	if got, err := impl.Store.Get(t.Context(), s.ID); err != nil || got.UserID != "usr_1" {
		t.Errorf("Get after refused duplicate = %+v, %v; want the original", got, err)
	}
}

func testExpiry(t *testing.T, impl Impl) {
	short := newSession("tnt_a", "usr_1", "conn_1")
	short.ExpiresAt = time.Now().Add(300 * time.Millisecond)
	long := newSession("tnt_a", "usr_1", "conn_1")
	create(t, impl.Store, short, long)
	assertLive(t, impl.Store, short)

	time.Sleep(time.Until(short.ExpiresAt) + 50*time.Millisecond)
	assertGone(t, impl.Store, short)
	assertLive(t, impl.Store, long)
	got, err := impl.Store.ListUser(t.Context(), "tnt_a", "usr_1")
	if err != nil {
		t.Fatalf("ListUser: %v", err)
	}
	assertIDs(t, "ListUser after expiry", got, long)
	// An expired session is not reported as revoked.
	revoked, err := impl.Store.RevokeConnection(t.Context(), "tnt_a", "conn_1")
	if err != nil {
		t.Fatalf("RevokeConnection: %v", err)
	}
	assertIDs(t, "RevokeConnection after expiry", revoked, long)
}

func testRevoke(t *testing.T, impl Impl) {
	ctx := t.Context()
	s, other := newSession("tnt_a", "usr_1", "conn_1"), newSession("tnt_a", "usr_1", "conn_1")
	create(t, impl.Store, s, other)
	for i := range 2 { // idempotent
		if err := impl.Store.Revoke(ctx, s.ID); err != nil {
			t.Fatalf("Revoke #%d: %v", i+1, err)
		}
	}
	if err := impl.Store.Revoke(ctx, "ses_unknown"); err != nil {
		t.Errorf("Revoke(unknown) = %v, want nil", err)
	}
	assertGone(t, impl.Store, s)
	assertLive(t, impl.Store, other)
	// The revoked session has left every index.
	for name, list := range map[string]func() ([]sessions.Session, error){
		"ListUser":         func() ([]sessions.Session, error) { return impl.Store.ListUser(ctx, "tnt_a", "usr_1") },
		"RevokeConnection": func() ([]sessions.Session, error) { return impl.Store.RevokeConnection(ctx, "tnt_a", "conn_1") },
	} {
		got, err := list()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if slices.ContainsFunc(got, func(x sessions.Session) bool { return x.ID == s.ID }) {
			t.Errorf("%s returned revoked session %s", name, s.ID)
		}
	}
}

// fixture is two tenants whose user and connection IDs collide on purpose,
// so that an implementation keying its indexes by user or connection alone
// fails the cross-tenant checks.
type fixture struct {
	a1c1, a1c2, a2c1, b1c1 sessions.Session
}

func newFixture(t *testing.T, st sessions.Store) fixture {
	f := fixture{
		a1c1: newSession("tnt_a", "usr_1", "conn_1"),
		a1c2: newSession("tnt_a", "usr_1", "conn_2"),
		a2c1: newSession("tnt_a", "usr_2", "conn_1"),
		b1c1: newSession("tnt_b", "usr_1", "conn_1"),
	}
	create(t, st, f.a1c1, f.a1c2, f.a2c1, f.b1c1)
	return f
}

func testRevokeUser(t *testing.T, impl Impl) {
	f := newFixture(t, impl.Store)
	got, err := impl.Store.RevokeUser(t.Context(), "tnt_a", "usr_1")
	if err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	assertIDs(t, "RevokeUser", got, f.a1c1, f.a1c2)
	assertGone(t, impl.Store, f.a1c1, f.a1c2)
	assertLive(t, impl.Store, f.a2c1, f.b1c1) // other user, and same user ID in another tenant

	got, err = impl.Store.RevokeUser(t.Context(), "tnt_a", "usr_1")
	if err != nil || len(got) != 0 {
		t.Errorf("RevokeUser again = %v, %v; want nothing", got, err)
	}
	if got, err := impl.Store.RevokeUser(t.Context(), "tnt_c", "usr_9"); err != nil || len(got) != 0 {
		t.Errorf("RevokeUser(unknown) = %v, %v; want nothing", got, err)
	}
}

func testRevokeTenant(t *testing.T, impl Impl) {
	f := newFixture(t, impl.Store)
	got, err := impl.Store.RevokeTenant(t.Context(), "tnt_a")
	if err != nil {
		t.Fatalf("RevokeTenant: %v", err)
	}
	assertIDs(t, "RevokeTenant", got, f.a1c1, f.a1c2, f.a2c1)
	assertGone(t, impl.Store, f.a1c1, f.a1c2, f.a2c1)
	assertLive(t, impl.Store, f.b1c1)
	if got, err := impl.Store.ListUser(t.Context(), "tnt_a", "usr_1"); err != nil || len(got) != 0 {
		t.Errorf("ListUser after RevokeTenant = %v, %v; want nothing", got, err)
	}
	// The tenant can sign in again afterwards.
	again := newSession("tnt_a", "usr_1", "conn_1")
	create(t, impl.Store, again)
	assertLive(t, impl.Store, again)
}

func testRevokeConnection(t *testing.T, impl Impl) {
	f := newFixture(t, impl.Store)
	got, err := impl.Store.RevokeConnection(t.Context(), "tnt_a", "conn_1")
	if err != nil {
		t.Fatalf("RevokeConnection: %v", err)
	}
	assertIDs(t, "RevokeConnection", got, f.a1c1, f.a2c1)
	assertGone(t, impl.Store, f.a1c1, f.a2c1)
	assertLive(t, impl.Store, f.a1c2, f.b1c1)
	// The user's remaining session is still listed and revocable.
	list, err := impl.Store.ListUser(t.Context(), "tnt_a", "usr_1")
	if err != nil {
		t.Fatalf("ListUser: %v", err)
	}
	assertIDs(t, "ListUser after RevokeConnection", list, f.a1c2)
	got, err = impl.Store.RevokeUser(t.Context(), "tnt_a", "usr_1")
	if err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	assertIDs(t, "RevokeUser after RevokeConnection", got, f.a1c2)
}

func testListUser(t *testing.T, impl Impl) {
	f := newFixture(t, impl.Store)
	for _, tt := range []struct {
		tenant, user string
		want         []sessions.Session
	}{
		{"tnt_a", "usr_1", []sessions.Session{f.a1c1, f.a1c2}},
		{"tnt_a", "usr_2", []sessions.Session{f.a2c1}},
		{"tnt_b", "usr_1", []sessions.Session{f.b1c1}},
		{"tnt_b", "usr_2", nil},
	} {
		got, err := impl.Store.ListUser(t.Context(), tt.tenant, tt.user)
		if err != nil {
			t.Fatalf("ListUser(%s, %s): %v", tt.tenant, tt.user, err)
		}
		assertIDs(t, "ListUser("+tt.tenant+", "+tt.user+")", got, tt.want...)
	}
}

// recorder collects revocations delivered to a subscriber.
type recorder struct {
	ch chan sessions.Revocation
}

func subscribe(t *testing.T, ctx context.Context, st sessions.Store) *recorder {
	t.Helper()
	r := &recorder{ch: make(chan sessions.Revocation, 100)}
	if err := st.Subscribe(ctx, func(rev sessions.Revocation) {
		if rev.Reason != sessions.ReasonResync {
			r.ch <- rev
		}
	}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return r
}

func (r *recorder) next(t *testing.T) sessions.Revocation {
	t.Helper()
	select {
	case rev := <-r.ch:
		slices.Sort(rev.SessionIDs)
		return rev
	case <-time.After(2 * time.Second):
		t.Fatal("no revocation delivered within 2s")
		return sessions.Revocation{}
	}
}

func (r *recorder) none(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case rev := <-r.ch:
		t.Errorf("unexpected revocation %+v", rev)
	case <-time.After(wait):
	}
}

func testSubscribe(t *testing.T, impl Impl) {
	ctx := t.Context()
	r1 := subscribe(t, ctx, impl.Store)
	r2 := subscribe(t, ctx, impl.Store)
	f := newFixture(t, impl.Store)
	sorted := func(ss ...sessions.Session) []string {
		var ids []string
		for _, s := range ss {
			ids = append(ids, s.ID)
		}
		slices.Sort(ids)
		return ids
	}

	steps := []struct {
		name   string
		revoke func() error
		want   sessions.Revocation
	}{
		{"Revoke", func() error { return impl.Store.Revoke(ctx, f.a1c2.ID) },
			sessions.Revocation{SessionIDs: sorted(f.a1c2), TenantID: "tnt_a", UserID: "usr_1", Reason: sessions.ReasonSession}},
		{"Revoke again publishes nothing", func() error { return impl.Store.Revoke(ctx, f.a1c2.ID) },
			sessions.Revocation{}},
		{"RevokeConnection", func() error { _, err := impl.Store.RevokeConnection(ctx, "tnt_b", "conn_1"); return err },
			sessions.Revocation{SessionIDs: sorted(f.b1c1), TenantID: "tnt_b", ConnectionID: "conn_1", Reason: sessions.ReasonConnection}},
		{"RevokeUser", func() error { _, err := impl.Store.RevokeUser(ctx, "tnt_a", "usr_1"); return err },
			sessions.Revocation{SessionIDs: sorted(f.a1c1), TenantID: "tnt_a", UserID: "usr_1", Reason: sessions.ReasonUser}},
		{"RevokeUser with nothing left publishes nothing", func() error { _, err := impl.Store.RevokeUser(ctx, "tnt_a", "usr_1"); return err },
			sessions.Revocation{}},
		{"RevokeTenant", func() error { _, err := impl.Store.RevokeTenant(ctx, "tnt_a"); return err },
			sessions.Revocation{SessionIDs: sorted(f.a2c1), TenantID: "tnt_a", Reason: sessions.ReasonTenant}},
	}
	for _, step := range steps {
		if err := step.revoke(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if step.want.Reason == "" {
			continue // the next step's revocation must come first
		}
		for i, r := range []*recorder{r1, r2} {
			if got := r.next(t); !equalRevocation(got, step.want) {
				t.Errorf("%s: subscriber %d got %+v, want %+v", step.name, i+1, got, step.want)
			}
		}
	}
	r1.none(t, 50*time.Millisecond)
}

func equalRevocation(a, b sessions.Revocation) bool {
	return slices.Equal(a.SessionIDs, b.SessionIDs) && a.TenantID == b.TenantID &&
		a.UserID == b.UserID && a.ConnectionID == b.ConnectionID && a.Reason == b.Reason
}

func testSubscribeEnds(t *testing.T, impl Impl) {
	ctx, cancel := context.WithCancel(t.Context())
	ended := subscribe(t, ctx, impl.Store)
	live := subscribe(t, t.Context(), impl.Store)
	cancel()
	s := newSession("tnt_a", "usr_1", "")
	create(t, impl.Store, s)
	if err := impl.Store.Revoke(t.Context(), s.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if got := live.next(t); !slices.Equal(got.SessionIDs, []string{s.ID}) {
		t.Errorf("live subscriber got %+v", got)
	}
	ended.none(t, 100*time.Millisecond)

	if err := impl.Store.Subscribe(ctx, func(sessions.Revocation) {}); err == nil {
		t.Error("Subscribe with a cancelled context succeeded")
	}
}

func testRemember(t *testing.T, impl Impl) {
	ctx := t.Context()
	for i, want := range []bool{true, false, false} {
		if got, err := impl.Once.Remember(ctx, "assertion-1", time.Minute); err != nil || got != want {
			t.Errorf("Remember #%d = %v, %v; want %v", i+1, got, err, want)
		}
	}
	if got, err := impl.Once.Remember(ctx, "assertion-2", time.Minute); err != nil || !got {
		t.Errorf("Remember(other key) = %v, %v; want true", got, err)
	}
	// Remembered keys and one-time values do not share a namespace.
	if _, err := impl.Once.Take(ctx, "assertion-1"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Take(remembered key) = %v, want ErrNotFound", err)
	}

	if got, _ := impl.Once.Remember(ctx, "short", 150*time.Millisecond); !got {
		t.Fatal("Remember(short) = false, want true")
	}
	time.Sleep(200 * time.Millisecond)
	if got, err := impl.Once.Remember(ctx, "short", time.Minute); err != nil || !got {
		t.Errorf("Remember after TTL = %v, %v; want true", got, err)
	}
}

func testRememberRace(t *testing.T, impl Impl) {
	var wins atomic.Int32
	race(t, 20, func() error {
		ok, err := impl.Once.Remember(t.Context(), "nonce", time.Minute)
		if ok {
			wins.Add(1)
		}
		return err
	})
	if n := wins.Load(); n != 1 {
		t.Errorf("%d of 20 concurrent Remembers reported new; want exactly 1", n)
	}
}

func testPutTake(t *testing.T, impl Impl) {
	ctx := t.Context()
	if err := impl.Once.Put(ctx, "code", []byte("first"), time.Minute); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := impl.Once.Put(ctx, "code", []byte("second"), time.Minute); err != nil {
		t.Fatalf("Put again: %v", err)
	}
	if got, err := impl.Once.Take(ctx, "code"); err != nil || string(got) != "second" {
		t.Errorf("Take = %q, %v; want the last value put", got, err)
	}
	if _, err := impl.Once.Take(ctx, "code"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("second Take = %v, want ErrNotFound", err)
	}
	if _, err := impl.Once.Take(ctx, "never-put"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Take(unknown) = %v, want ErrNotFound", err)
	}

	// The stored value is a copy; an empty value is a value.
	buf := []byte("state")
	if err := impl.Once.Put(ctx, "state", buf, time.Minute); err != nil {
		t.Fatalf("Put: %v", err)
	}
	buf[0] = 'X'
	if got, err := impl.Once.Take(ctx, "state"); err != nil || string(got) != "state" {
		t.Errorf("Take = %q, %v; want %q", got, err, "state")
	}
	if err := impl.Once.Put(ctx, "empty", nil, time.Minute); err != nil {
		t.Fatalf("Put(empty): %v", err)
	}
	if got, err := impl.Once.Take(ctx, "empty"); err != nil || len(got) != 0 {
		t.Errorf("Take(empty) = %q, %v; want empty value", got, err)
	}

	if err := impl.Once.Put(ctx, "short", []byte("x"), 100*time.Millisecond); err != nil {
		t.Fatalf("Put: %v", err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := impl.Once.Take(ctx, "short"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Take after TTL = %v, want ErrNotFound", err)
	}
}

func testTakeRace(t *testing.T, impl Impl) {
	if err := impl.Once.Put(t.Context(), "setup-link", []byte("tnt_a"), time.Minute); err != nil {
		t.Fatalf("Put: %v", err)
	}
	var wins atomic.Int32
	race(t, 20, func() error {
		v, err := impl.Once.Take(t.Context(), "setup-link")
		switch {
		case err == nil && string(v) == "tnt_a":
			wins.Add(1)
		case err == nil:
			return fmt.Errorf("Take = %q", v)
		case !errors.Is(err, sessions.ErrNotFound):
			return err
		}
		return nil
	})
	if n := wins.Load(); n != 1 {
		t.Errorf("%d of 20 concurrent Takes won; want exactly 1", n)
	}
}

func testOnceInvalid(t *testing.T, impl Impl) {
	ctx := t.Context()
	checks := map[string]error{}
	_, checks["Remember(ttl 0)"] = impl.Once.Remember(ctx, "k", 0)
	_, checks["Remember(empty key)"] = impl.Once.Remember(ctx, "", time.Minute)
	checks["Put(ttl -1s)"] = impl.Once.Put(ctx, "k", []byte("v"), -time.Second)
	_, checks["Allow(limit 0)"] = impl.Limiter.Allow(ctx, "k", 0, time.Minute)
	_, checks["Allow(window 0)"] = impl.Limiter.Allow(ctx, "k", 10, 0)
	_, checks["Allow(empty key)"] = impl.Limiter.Allow(ctx, "", 10, time.Minute)
	for name, err := range checks {
		if !errors.Is(err, sessions.ErrInvalid) {
			t.Errorf("%s = %v, want ErrInvalid", name, err)
		}
	}
}

func testLimiter(t *testing.T, impl Impl) {
	ctx := t.Context()
	const limit = 5
	for i := range limit {
		d, err := impl.Limiter.Allow(ctx, "tnt_a:token", limit, time.Minute)
		if err != nil {
			t.Fatalf("Allow #%d: %v", i+1, err)
		}
		if !d.Allowed || d.Limit != limit || d.Remaining != limit-1-i || d.RetryAfter != 0 {
			t.Errorf("Allow #%d = %+v, want allowed with %d remaining", i+1, d, limit-1-i)
		}
	}
	d, err := impl.Limiter.Allow(ctx, "tnt_a:token", limit, time.Minute)
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	// One request's worth refills every window/limit = 12s.
	if d.Allowed || d.Remaining != 0 || d.Limit != limit || d.RetryAfter <= 0 || d.RetryAfter > 12*time.Second {
		t.Errorf("Allow over the limit = %+v, want refused with 0 < RetryAfter <= 12s", d)
	}
	// Another key (another tenant) has its own budget.
	if d, err := impl.Limiter.Allow(ctx, "tnt_b:token", limit, time.Minute); err != nil || !d.Allowed || d.Remaining != limit-1 {
		t.Errorf("Allow(other key) = %+v, %v; want allowed with %d remaining", d, err, limit-1)
	}
}

func testLimiterRefill(t *testing.T, impl Impl) {
	ctx := t.Context()
	const limit, window = 2, 200 * time.Millisecond
	for range limit {
		if d, err := impl.Limiter.Allow(ctx, "k", limit, window); err != nil || !d.Allowed {
			t.Fatalf("Allow = %+v, %v", d, err)
		}
	}
	d, err := impl.Limiter.Allow(ctx, "k", limit, window)
	if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > window/limit {
		t.Fatalf("Allow over the limit = %+v, %v; want refused with 0 < RetryAfter <= %v", d, err, window/limit)
	}
	time.Sleep(d.RetryAfter + 10*time.Millisecond)
	if d, err := impl.Limiter.Allow(ctx, "k", limit, window); err != nil || !d.Allowed {
		t.Errorf("Allow after RetryAfter = %+v, %v; want allowed", d, err)
	}
}

func testLimiterRace(t *testing.T, impl Impl) {
	var allowed atomic.Int32
	race(t, 20, func() error {
		d, err := impl.Limiter.Allow(t.Context(), "burst", 10, time.Minute)
		if d.Allowed {
			allowed.Add(1)
		}
		return err
	})
	if n := allowed.Load(); n != 10 {
		t.Errorf("%d of 20 concurrent requests allowed under a limit of 10", n)
	}
}

func testCounter(t *testing.T, impl Impl) {
	if impl.Counter == nil {
		t.Skip("no Counter")
	}
	ctx := t.Context()
	for want := int64(1); want <= 3; want++ {
		if n, err := impl.Counter.Incr(ctx, "fail:a", time.Minute); err != nil || n != want {
			t.Fatalf("Incr #%d = %d, %v", want, n, err)
		}
	}
	// Another key has its own count.
	if n, err := impl.Counter.Incr(ctx, "fail:b", time.Minute); err != nil || n != 1 {
		t.Errorf("Incr(other key) = %d, %v; want 1", n, err)
	}
	// A count lives ttl after its last Incr, then starts again.
	if n, err := impl.Counter.Incr(ctx, "fail:short", 150*time.Millisecond); err != nil || n != 1 {
		t.Fatalf("Incr = %d, %v", n, err)
	}
	time.Sleep(100 * time.Millisecond)
	if n, err := impl.Counter.Incr(ctx, "fail:short", 150*time.Millisecond); err != nil || n != 2 {
		t.Fatalf("Incr within ttl = %d, %v; want 2", n, err)
	}
	time.Sleep(100 * time.Millisecond)
	if n, err := impl.Counter.Incr(ctx, "fail:short", 150*time.Millisecond); err != nil || n != 3 {
		t.Fatalf("Incr within the extended ttl = %d, %v; want 3", n, err)
	}
	time.Sleep(250 * time.Millisecond)
	if n, err := impl.Counter.Incr(ctx, "fail:short", 150*time.Millisecond); err != nil || n != 1 {
		t.Errorf("Incr after ttl = %d, %v; want 1", n, err)
	}
	for name, err := range map[string]error{
		"empty key": func() error { _, err := impl.Counter.Incr(ctx, "", time.Minute); return err }(),
		"zero ttl":  func() error { _, err := impl.Counter.Incr(ctx, "k", 0); return err }(),
	} {
		if !errors.Is(err, sessions.ErrInvalid) {
			t.Errorf("%s = %v, want ErrInvalid", name, err)
		}
	}
}

func testCounterRace(t *testing.T, impl Impl) {
	if impl.Counter == nil {
		t.Skip("no Counter")
	}
	var mu sync.Mutex
	seen := map[int64]bool{}
	race(t, 20, func() error {
		n, err := impl.Counter.Incr(t.Context(), "burst", time.Minute)
		mu.Lock()
		defer mu.Unlock()
		if seen[n] {
			return fmt.Errorf("count %d returned twice", n)
		}
		seen[n] = true
		return err
	})
	if len(seen) != 20 {
		t.Errorf("20 concurrent Incrs returned %d distinct counts", len(seen))
	}
}

// race runs fn from n goroutines released at once.
func race(t *testing.T, n int, fn func() error) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			<-start
			if err := fn(); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
