package connections

import (
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
