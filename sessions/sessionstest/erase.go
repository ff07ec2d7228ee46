package sessionstest

import (
	"errors"
	"testing"
	"time"

	"github.com/idbroker/idbroker/sessions"
)

// testEraseTenant: erasing a tenant removes its sessions, families,
// one-time entries and rate-limit buckets, and nothing of another tenant.
func testEraseTenant(t *testing.T, impl Impl) {
	er, ok := impl.Store.(sessions.TenantEraser)
	if !ok {
		t.Fatalf("%T cannot erase a tenant: every store must (a tenant's erasure reaches every store)", impl.Store)
	}
	ctx := t.Context()
	a, b := newSession("tnt_erase_a", "usr_1", "conn_1"), newSession("tnt_erase_b", "usr_1", "conn_1")
	create(t, impl.Store, a, b)
	fams, _ := impl.Store.(sessions.Families)
	for _, s := range []sessions.Session{a, b} {
		if fams == nil {
			break
		}
		f := sessions.Family{ID: "fam_" + s.ID, SessionID: s.ID, Hash: "h0", Grant: []byte(`{"tenant":"` + s.TenantID + `"}`), ExpiresAt: s.ExpiresAt}
		if err := fams.StartFamily(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range []string{a.TenantID, b.TenantID} {
		if _, err := impl.Once.Remember(ctx, "seen:"+tn+":x", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := impl.Once.Put(ctx, "pending:"+tn, []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := impl.Once.Put(ctx, "state:"+tn, []byte(`{"tenant":"`+tn+`"}`), time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := impl.Limiter.Allow(ctx, "signin:"+tn, 10, time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	n, err := er.EraseTenant(ctx, a.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("EraseTenant reported nothing erased")
	}
	assertGone(t, impl.Store, a)
	assertLive(t, impl.Store, b)
	if fams != nil {
		if _, err := fams.Family(ctx, "fam_"+a.ID); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("the erased tenant's family: err = %v, want ErrNotFound", err)
		}
		if _, err := fams.Family(ctx, "fam_"+b.ID); err != nil {
			t.Errorf("the other tenant's family: %v", err)
		}
	}
	for _, key := range []string{"pending:", "state:"} {
		if _, err := impl.Once.Peek(ctx, key+a.TenantID); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("%s of the erased tenant: err = %v, want ErrNotFound", key, err)
		}
		if _, err := impl.Once.Peek(ctx, key+b.TenantID); err != nil {
			t.Errorf("%s of the other tenant: %v", key, err)
		}
	}
	if first, err := impl.Once.Remember(ctx, "seen:"+a.TenantID+":x", time.Hour); err != nil || !first {
		t.Errorf("the erased tenant's remembered key is still remembered (first = %v, %v)", first, err)
	}
	if first, err := impl.Once.Remember(ctx, "seen:"+b.TenantID+":x", time.Hour); err != nil || first {
		t.Errorf("the other tenant's remembered key was forgotten (first = %v, %v)", first, err)
	}
	if n, err := er.EraseTenant(ctx, ""); err == nil {
		t.Errorf("EraseTenant(\"\") erased %d entries; want an error (it would match everything)", n)
	}
}
