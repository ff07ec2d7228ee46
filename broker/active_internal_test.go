package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// liveStore answers that every tenant and user is active; the cache test
// needs nothing else of a Store.
type liveStore struct{ Store }

func (liveStore) Tenant(ctx context.Context) (store.Tenant, error) {
	return store.Tenant{Status: store.TenantActive}, nil
}

func (liveStore) User(ctx context.Context, id string) (store.User, error) {
	return store.User{ID: id, Active: true}, nil
}

// TestActiveCacheForgetsExpiredUsers: the cache holds the users seen
// within its TTL, not every user a node ever refreshed for.
func TestActiveCacheForgetsExpiredUsers(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newActiveCache(liveStore{}, 5*time.Second, func() time.Time { return now })
	ctx := context.Background()
	for i := range 3 * minSweep {
		if err := c.check(ctx, "tnt_a", fmt.Sprintf("usr_%d", i)); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Millisecond) // 5 s TTL: ~500 live at a time
	}
	if n := len(c.users); n > 2*minSweep {
		t.Fatalf("cache holds %d users after %d checks; expired ones are never dropped", n, 3*minSweep)
	}
	// What is still fresh is still answered from memory.
	if _, ok := c.users[[2]string{"tnt_a", fmt.Sprintf("usr_%d", 3*minSweep-1)}]; !ok {
		t.Fatal("the freshest user was swept")
	}
}
