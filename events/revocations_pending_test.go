package events_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
	"github.com/idbroker/idbroker/store/storetest"
)

// downSessions is a session store that does not acknowledge revocations
// while down is set.
type downSessions struct {
	*sessions.Memory
	down bool
}

func (d *downSessions) RevokeUser(ctx context.Context, tenantID, userID string) ([]sessions.Session, error) {
	if d.down {
		return nil, errors.New("session store down")
	}
	return d.Memory.RevokeUser(ctx, tenantID, userID)
}

// TestRevokerTellsPending: every pass of the revoker tells Pending
// whether an order waits for the session store, whichever node recorded
// it, so that each node's cache vouches for no session meanwhile; once
// the order is applied, it says so.
func TestRevokerTellsPending(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			var told []bool
			ss, r, tn := pendingRevoker(t, st, &told)
			ctx := context.Background()
			pass := func(want bool) {
				t.Helper()
				told = nil
				_, _ = r.ApplyDue(ctx)
				if len(told) != 1 || told[0] != want {
					t.Fatalf("Pending told %v, want [%v]", told, want)
				}
			}
			pass(false)
			ss.down = true
			if _, err := st.RecordRevocation(store.WithTenant(ctx, tn.ID), store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: "usr_x", Reason: "operator"}); err != nil {
				t.Fatal(err)
			}
			pass(true)
			pass(true) // retried, still unacknowledged (or leased)
			ss.down = false
			untilReleased(ctx, t, r, &told)
		})
	}
}

// TestRevokerApplyHoldsFirst: Apply tells Pending before it asks the
// session store, so the node that made the change stops vouching for the
// sessions at once, even while the store hangs; the next pass, the queue
// empty, releases it.
func TestRevokerApplyHoldsFirst(t *testing.T) {
	st := storetest.SQLite(t)
	var told []bool
	ss := &askedSessions{Memory: sessions.NewMemory(), told: &told}
	r, err := events.NewRevoker(events.RevokerConfig{Store: st, Sessions: ss, Pending: func(p bool) { told = append(told, p) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	rv, err := st.RecordRevocation(store.WithTenant(ctx, tn.ID), store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: "usr_x", Reason: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(ctx, rv); err != nil {
		t.Fatal(err)
	}
	if len(ss.toldBefore) != 1 || !ss.toldBefore[0] {
		t.Fatalf("when the session store was asked, Pending had been told %v; want [true]", ss.toldBefore)
	}
	told = nil
	if _, err := r.ApplyDue(ctx); err != nil {
		t.Fatal(err)
	}
	if len(told) != 1 || told[0] {
		t.Fatalf("the pass after the order was applied told %v; want [false]", told)
	}
}

// askedSessions records what Pending had been told when RevokeUser was
// asked.
type askedSessions struct {
	*sessions.Memory
	told       *[]bool
	toldBefore []bool
}

func (a *askedSessions) RevokeUser(ctx context.Context, tenantID, userID string) ([]sessions.Session, error) {
	a.toldBefore = append([]bool(nil), *a.told...)
	return a.Memory.RevokeUser(ctx, tenantID, userID)
}

// slowPending is a store whose first PendingRevocations read waits, once
// it has read the queue, until go is closed.
type slowPending struct {
	*store.DB
	once    sync.Once
	queried chan struct{}
	proceed chan struct{}
}

func (s *slowPending) PendingRevocations(ctx context.Context, limit int) ([]store.Revocation, error) {
	out, err := s.DB.PendingRevocations(ctx, limit)
	s.once.Do(func() { close(s.queried); <-s.proceed })
	return out, err
}

// hangingSessions is a session store whose RevokeUser waits until release
// is closed.
type hangingSessions struct {
	*sessions.Memory
	release chan struct{}
}

func (h *hangingSessions) RevokeUser(ctx context.Context, tenantID, userID string) ([]sessions.Session, error) {
	<-h.release
	return h.Memory.RevokeUser(ctx, tenantID, userID)
}

// TestRevokerPassDoesNotOverrideApply: a pass that read the queue empty
// just before a change committed, and reports after its Apply began, must
// not tell Pending false while that Apply waits for the session store.
func TestRevokerPassDoesNotOverrideApply(t *testing.T) {
	st := &slowPending{DB: storetest.SQLite(t), queried: make(chan struct{}), proceed: make(chan struct{})}
	ss := &hangingSessions{Memory: sessions.NewMemory(), release: make(chan struct{})}
	var (
		mu   sync.Mutex
		told []bool
	)
	last := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(told) > 0 && told[len(told)-1]
	}
	r, err := events.NewRevoker(events.RevokerConfig{Store: st, Sessions: ss, Pending: func(p bool) {
		mu.Lock()
		told = append(told, p)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	passed := make(chan struct{})
	go func() { defer close(passed); _, _ = r.ApplyDue(ctx) }()
	<-st.queried // the pass read the queue empty
	rv, err := st.RecordRevocation(store.WithTenant(ctx, tn.ID), store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: "usr_x", Reason: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	applied := make(chan struct{})
	go func() { defer close(applied); _, _ = r.Apply(ctx, rv) }()
	for deadline := time.Now().Add(5 * time.Second); !last(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Apply did not tell Pending")
		}
	}
	close(st.proceed)
	<-passed
	if !last() {
		t.Error("the pass told Pending false while Apply waited for the session store")
	}
	close(ss.release)
	<-applied
}

// TestRevokerApplyReleasesOnceAcknowledged: an Apply the session store
// acknowledges releases the hold it took at once, so a node that revokes
// often still caches between revocations; one it does not acknowledge
// keeps the hold, through later acknowledged ones, until a pass finds the
// queue empty.
func TestRevokerApplyReleasesOnceAcknowledged(t *testing.T) {
	st := storetest.SQLite(t)
	var told []bool
	ss, r, tn := pendingRevoker(t, st, &told)
	ctx := context.Background()
	apply := func() error {
		t.Helper()
		rv, err := st.RecordRevocation(store.WithTenant(ctx, tn.ID), store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: "usr_x", Reason: "operator"})
		if err != nil {
			t.Fatal(err)
		}
		told = nil
		_, err = r.Apply(ctx, rv)
		return err
	}
	last := func() bool { return len(told) > 0 && told[len(told)-1] }

	if err := apply(); err != nil || len(told) != 2 || !told[0] || told[1] {
		t.Fatalf("acknowledged Apply told %v (%v); want [true false]", told, err)
	}
	ss.down = true
	if err := apply(); err == nil || !last() {
		t.Fatalf("unacknowledged Apply told %v (%v); want the hold kept", told, err)
	}
	ss.down = false
	if err := apply(); err != nil || !last() {
		t.Fatalf("an acknowledged Apply with an order still queued told %v (%v); want the hold kept", told, err)
	}
	untilReleased(ctx, t, r, &told)
}

// untilReleased runs passes of r until one tells Pending false alone, as
// it must within a few retries once the session store answers again.
func untilReleased(ctx context.Context, t *testing.T, r *events.Revoker, told *[]bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		*told = nil
		_, _ = r.ApplyDue(ctx)
		if len(*told) == 1 && !(*told)[0] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pending still told %v 5 s after the session store came back", *told)
		}
	}
}

// pendingRevoker is a revoker over st whose session store can be taken
// down, recording in told what Pending is told, and a tenant to revoke in.
func pendingRevoker(t *testing.T, st *store.DB, told *[]bool) (*downSessions, *events.Revoker, store.Tenant) {
	t.Helper()
	ss := &downSessions{Memory: sessions.NewMemory()}
	r, err := events.NewRevoker(events.RevokerConfig{Store: st, Sessions: ss, Pending: func(p bool) { *told = append(*told, p) }})
	if err != nil {
		t.Fatal(err)
	}
	tn, err := st.CreateTenant(context.Background(), store.Tenant{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	return ss, r, tn
}

// stuckSessions is a session store whose RevokeUser answers only when its
// context ends, as a Redis that hangs does.
type stuckSessions struct{ *sessions.Memory }

func (stuckSessions) RevokeUser(ctx context.Context, tenantID, userID string) ([]sessions.Session, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestApplyGivesUpOnAHungSessionStore: Apply runs on a context detached
// from the request (a client hanging up must not cut it short), and it had
// no bound: a SCIM deprovisioning answered only once the Redis client gave
// up, 20 s on a frozen Redis, past IDBROKER_REQUEST_TIMEOUT. It now gives
// up after ApplyTimeout, and the order stays queued for Run.
func TestApplyGivesUpOnAHungSessionStore(t *testing.T) {
	st := storetest.SQLite(t)
	r, err := events.NewRevoker(events.RevokerConfig{Store: st, Sessions: stuckSessions{sessions.NewMemory()}, ApplyTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	rv, err := st.RecordRevocation(store.WithTenant(ctx, tn.ID), store.Revocation{Kind: store.RevokeUser, TenantID: tn.ID, SubjectID: "usr_x", Reason: "scim"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := r.Apply(ctx, rv); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Apply on a session store that never answered reported success")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Apply still waits on a hung session store 5 s on (ApplyTimeout 300ms)")
	}
	if due, err := st.DueRevocations(ctx, time.Now().Add(time.Minute)); err != nil || !due {
		t.Errorf("the order Apply gave up on is not queued for Run: due %v, %v", due, err)
	}
}
