package connections

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/idbroker/store"
)

// fakeConnector stands for a built connector in the cache benchmarks.
type fakeConnector struct{ Connector }

// BenchmarkCacheHit is the cache's part of a sign-in: the connection's row
// and its built connector read for one of 10,000 cached connections, on
// every core at once (b.RunParallel), as a busy node's logins do.
func BenchmarkCacheHit(b *testing.B) {
	now := time.Now()
	c := newCache(time.Minute, DefaultCacheSize)
	conns := make([]store.Connection, DefaultCacheSize)
	for i := range conns {
		conns[i] = store.Connection{ID: fmt.Sprintf("conn_%05d", i), TenantID: fmt.Sprintf("tnt_%05d", i), UpdatedAt: now}
		c.putConn(conns[i], now)
		c.putConnector(conns[i], fakeConnector{})
	}
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(7919)
		for pb.Next() {
			i += 7919 // a prime: every connection in turn, in no order
			conn, ok := c.conn(conns[i%uint64(len(conns))].ID, now)
			if !ok || c.connector(conn) == nil {
				b.Fatal("miss")
			}
		}
	})
}

// BenchmarkCacheChurn is a node with more connections signing in than the
// cache holds: each op caches a connection never seen, evicting another.
func BenchmarkCacheChurn(b *testing.B) {
	now := time.Now()
	c := newCache(time.Minute, DefaultCacheSize)
	conns := make([]store.Connection, DefaultCacheSize+b.N)
	for i := range conns {
		conns[i] = store.Connection{ID: fmt.Sprintf("conn_%08d", i), TenantID: fmt.Sprintf("tnt_%08d", i), UpdatedAt: now}
	}
	for _, conn := range conns[:DefaultCacheSize] {
		c.putConn(conn, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, conn := range conns[DefaultCacheSize:] {
		if _, ok := c.conn(conn.ID, now); !ok {
			c.putConn(conn, now)
		}
	}
}
