package connections

import (
	"fmt"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// TestCacheDeletedStaysDeleted: a load that read a connection just before
// it was deleted through this node does not cache it back.
func TestCacheDeletedStaysDeleted(t *testing.T) {
	now := time.Now()
	c := newCache(time.Minute, 10)
	conn := store.Connection{ID: "conn_1", TenantID: "tnt_1", UpdatedAt: now}
	c.putConn(conn, now)
	c.dropConn(conn.ID, now)
	c.putConn(conn, now) // the racing reader
	if _, ok := c.conn(conn.ID, now); ok {
		t.Fatal("a deleted connection was cached back")
	}
	// Other connections are unaffected, and the record of the delete is
	// dropped once no read can still be racing it.
	other := store.Connection{ID: "conn_2", TenantID: "tnt_1", UpdatedAt: now}
	c.putConn(other, now)
	if _, ok := c.conn(other.ID, now); !ok {
		t.Fatal("another connection was not cached")
	}
	c.dropConn("conn_3", now.Add(2*time.Minute))
	if _, ok := c.deleted[conn.ID]; ok {
		t.Fatal("old deletion record kept")
	}
}

// TestCacheEvictionOrder: past its size the cache evicts a connection
// (and a tenant) not read since the last sweep, not one in use: CLOCK's
// order, close to least recently used.
func TestCacheEvictionOrder(t *testing.T) {
	now := time.Now()
	conn := func(id string) store.Connection {
		return store.Connection{ID: id, TenantID: "tnt_" + id, UpdatedAt: now}
	}
	for _, tc := range []struct {
		name string
		run  func(c *cache)
		kept []string // held after run
		gone []string // evicted by run
	}{{
		name: "the one read is kept, the first one unread goes",
		run: func(c *cache) {
			c.conn("a", now)
			c.putConn(conn("d"), now)
		},
		kept: []string{"a", "c", "d"}, gone: []string{"b"},
	}, {
		name: "a connector read counts as a read",
		run: func(c *cache) {
			c.putConnector(conn("a"), fakeConnector{})
			c.putConnector(conn("b"), fakeConnector{})
			c.connector(conn("b"))
			c.conn("a", now)
			c.putConn(conn("d"), now)
		},
		kept: []string{"a", "b", "d"}, gone: []string{"c"},
	}, {
		name: "with every one read, each gets a second chance and the oldest goes",
		run: func(c *cache) {
			for _, id := range []string{"c", "b", "a"} {
				c.conn(id, now)
			}
			c.putConn(conn("d"), now)
		},
		kept: []string{"b", "c", "d"}, gone: []string{"a"},
	}, {
		name: "a changed connection keeps its place and its mark",
		run: func(c *cache) {
			c.conn("a", now)
			changed := conn("a")
			changed.UpdatedAt = now.Add(time.Second)
			c.putConn(changed, now)
			c.staleConn("b")
			c.putConn(conn("d"), now)
		},
		kept: []string{"a", "c", "d"}, gone: []string{"b"},
	}, {
		name: "a deleted connection makes room: nothing else goes for the next",
		run: func(c *cache) {
			c.dropConn("b", now)
			c.putConn(conn("d"), now)
			c.conn("d", now)
			c.putConn(conn("e"), now)
		},
		kept: []string{"c", "d", "e"}, gone: []string{"a", "b"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(time.Minute, 3)
			for _, id := range []string{"a", "b", "c"} {
				c.putConn(conn(id), now)
			}
			tc.run(c)
			for _, id := range tc.kept {
				if c.conns[id] == nil {
					t.Errorf("%s was evicted", id)
				}
			}
			for _, id := range tc.gone {
				if c.conns[id] != nil {
					t.Errorf("%s is still held", id)
				}
			}
			if len(c.conns) != 3 {
				t.Errorf("%d connections held, want the size, 3", len(c.conns))
			}
		})
	}
}

// TestCacheKeepsHotTenants: a tenant signing in between every two cold
// ones keeps its connector and its status through ten times the cache's
// size of cold sign-ins (random eviction lost it within the first few
// hundred at this size).
func TestCacheKeepsHotTenants(t *testing.T) {
	now := time.Now()
	const size = 100
	c := newCache(time.Minute, size)
	hot := store.Connection{ID: "conn_hot", TenantID: "tnt_hot", UpdatedAt: now}
	c.putConn(hot, now)
	c.putConnector(hot, fakeConnector{})
	c.putTenant(hot.TenantID, tenantEntry{status: store.TenantActive, loaded: now})
	for i := range 10 * size {
		cold := store.Connection{ID: fmt.Sprint("conn_cold", i), TenantID: fmt.Sprint("tnt_cold", i), UpdatedAt: now}
		c.putConn(cold, now)
		c.putConnector(cold, fakeConnector{})
		c.putTenant(cold.TenantID, tenantEntry{status: store.TenantActive, loaded: now})
		if _, ok := c.tenant(hot.TenantID, now); !ok {
			t.Fatalf("the hot tenant was evicted after %d cold ones", i+1)
		}
		got, ok := c.conn(hot.ID, now)
		if !ok || c.connector(got) == nil {
			t.Fatalf("the hot connector was evicted after %d cold ones", i+1)
		}
	}
	if len(c.conns) != size || len(c.tenants) != size {
		t.Fatalf("%d connections and %d tenants held, want %d of each", len(c.conns), len(c.tenants), size)
	}
}
