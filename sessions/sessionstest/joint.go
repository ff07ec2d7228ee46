package sessionstest

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
)

// testSpend: Spend takes a value once, keeping it under the spent key for
// the spent TTL; of racing Spends and Takes exactly one wins.
func testSpend(t *testing.T, impl Impl) {
	ctx := t.Context()
	if err := impl.Once.Put(ctx, "code", []byte("grant"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := impl.Once.Spend(ctx, "code", "spent", time.Minute); err != nil || string(got) != "grant" {
		t.Fatalf("Spend = %q, %v; want the value", got, err)
	}
	if _, err := impl.Once.Take(ctx, "code"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Take after Spend = %v, want ErrNotFound", err)
	}
	if got, err := impl.Once.Peek(ctx, "spent"); err != nil || string(got) != "grant" {
		t.Errorf("Peek(spent) = %q, %v; want the spent value", got, err)
	}
	// A second Spend finds nothing and leaves the record alone.
	if _, err := impl.Once.Spend(ctx, "code", "spent", time.Minute); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("second Spend = %v, want ErrNotFound", err)
	}
	if got, err := impl.Once.Peek(ctx, "spent"); err != nil || string(got) != "grant" {
		t.Errorf("Peek(spent) after a second Spend = %q, %v", got, err)
	}
	if _, err := impl.Once.Spend(ctx, "never-put", "spent2", time.Minute); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Spend(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := impl.Once.Peek(ctx, "spent2"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Spend(unknown) left a record: %v", err)
	}
	if _, err := impl.Once.Spend(ctx, "code", "", time.Minute); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("Spend with no spent key = %v, want ErrInvalid", err)
	}

	// The record lives its own TTL, not the value's.
	if err := impl.Once.Put(ctx, "short", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := impl.Once.Spend(ctx, "short", "short-spent", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := impl.Once.Peek(ctx, "short-spent"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("spent record after its TTL: %v, want ErrNotFound", err)
	}

	for round := range 5 {
		key := fmt.Sprintf("race%d", round)
		if err := impl.Once.Put(ctx, key, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var wins, seq atomic.Int32
		race(t, 20, func() error {
			var err error
			if seq.Add(1)%2 == 0 {
				_, err = impl.Once.Take(ctx, key)
			} else {
				_, err = impl.Once.Spend(ctx, key, key+"-spent", time.Minute)
			}
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, sessions.ErrNotFound):
				return err
			}
			return nil
		})
		if n := wins.Load(); n != 1 {
			t.Errorf("round %d: %d of 20 concurrent Spends and Takes won; want exactly 1", round, n)
		}
	}
}

// testJoint: CreatePut stores the session and the value together, or
// neither; AddAppFamily records the application and starts the family
// together, or neither once the session has ended.
func testJoint(t *testing.T, impl Impl) {
	j, ok := sessions.JointWith(impl.Store, impl.Once)
	if !ok {
		t.Fatalf("%T over %T is not a Joint", impl.Store, impl.Once)
	}
	fams := impl.Once.(sessions.Families)
	ctx := t.Context()

	s := newSession("tnt_a", "usr_1", "conn_1")
	if err := j.CreatePut(ctx, s, "code-1", []byte(s.ID), time.Minute); err != nil {
		t.Fatalf("CreatePut: %v", err)
	}
	assertLive(t, impl.Store, s)
	if got, err := impl.Once.Take(ctx, "code-1"); err != nil || string(got) != s.ID {
		t.Errorf("Take(code-1) = %q, %v; want the session's value", got, err)
	}
	list, err := impl.Store.ListUser(ctx, "tnt_a", "usr_1")
	if err != nil {
		t.Fatal(err)
	}
	assertIDs(t, "ListUser after CreatePut", list, s)

	// An ID in use stores neither the session nor the value.
	dup := s
	dup.UserID = "usr_2"
	if err := j.CreatePut(ctx, dup, "code-2", []byte("x"), time.Minute); !errors.Is(err, sessions.ErrExists) {
		t.Errorf("CreatePut(duplicate) = %v, want ErrExists", err)
	}
	if _, err := impl.Once.Peek(ctx, "code-2"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("value of a refused CreatePut was stored: %v", err)
	}
	// So does an invalid session, or an invalid value.
	bad := newSession("tnt_a", "usr_1", "conn_1")
	bad.ExpiresAt = time.Now().Add(-time.Second)
	if err := j.CreatePut(ctx, bad, "code-3", []byte("x"), time.Minute); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("CreatePut(expired) = %v, want ErrInvalid", err)
	}
	if _, err := impl.Once.Peek(ctx, "code-3"); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("value of an invalid session was stored: %v", err)
	}
	noTTL := newSession("tnt_a", "usr_1", "conn_1")
	if err := j.CreatePut(ctx, noTTL, "code-4", []byte("x"), 0); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("CreatePut(no TTL) = %v, want ErrInvalid", err)
	}
	assertGone(t, impl.Store, noTTL)

	// AddAppFamily: the application and the family together.
	fam := sessions.Family{ID: "fam-joint", SessionID: s.ID, Gen: 0, Hash: "h0", Grant: []byte("g0"), ExpiresAt: s.ExpiresAt}
	if err := j.AddAppFamily(ctx, s.ID, "app_1", fam); err != nil {
		t.Fatalf("AddAppFamily: %v", err)
	}
	got, err := fams.Family(ctx, fam.ID)
	if err != nil || got.SessionID != s.ID || got.Hash != "h0" || string(got.Grant) != "g0" || !got.ExpiresAt.Equal(fam.ExpiresAt) {
		t.Errorf("Family = %+v, %v", got, err)
	}
	// Without a family it is AddApp.
	if err := j.AddAppFamily(ctx, s.ID, "app_2", sessions.Family{}); err != nil {
		t.Fatalf("AddAppFamily without a family: %v", err)
	}
	// The family rotates like one started by StartFamily.
	next := fam
	next.Hash, next.Grant = "h1", []byte("g1")
	if res, _, err := fams.Rotate(ctx, fam.ID, 0, "h0", next); err != nil || res != sessions.Rotated {
		t.Errorf("Rotate = %v, %v", res, err)
	}
	ended, err := impl.Store.RevokeSession(ctx, s.ID)
	if err != nil || len(ended) != 1 {
		t.Fatalf("RevokeSession = %+v, %v", ended, err)
	}
	if apps := slices.Sorted(slices.Values(ended[0].Apps)); !slices.Equal(apps, []string{"app_1", "app_2"}) {
		t.Errorf("apps of the ended session = %v", apps)
	}
	// An ended session takes neither the application nor the family.
	late := sessions.Family{ID: "fam-late", SessionID: s.ID, Hash: "h0", Grant: []byte("g0"), ExpiresAt: s.ExpiresAt}
	if err := j.AddAppFamily(ctx, s.ID, "app_3", late); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("AddAppFamily(ended) = %v, want ErrNotFound", err)
	}
	if _, err := fams.Family(ctx, late.ID); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("family started in an ended session: %v", err)
	}
	if err := j.AddAppFamily(ctx, "ses_unknown", "app_1", sessions.Family{}); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("AddAppFamily(unknown, no family) = %v, want ErrNotFound", err)
	}
	// An invalid family stores nothing, not even the application.
	s2 := newSession("tnt_a", "usr_1", "conn_1")
	create(t, impl.Store, s2)
	if err := j.AddAppFamily(ctx, s2.ID, "app_1", sessions.Family{ID: "fam-bad", SessionID: s2.ID}); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("AddAppFamily(no hash) = %v, want ErrInvalid", err)
	}
	ended, err = impl.Store.RevokeSession(ctx, s2.ID)
	if err != nil || len(ended) != 1 || len(ended[0].Apps) != 0 {
		t.Errorf("session after a refused AddAppFamily = %+v, %v; want no apps", ended, err)
	}
}
