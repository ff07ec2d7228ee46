package connections

import (
	"sync"
	"time"

	"github.com/idbroker/idbroker/store"
)

// Cache defaults (Config.CacheTTL, Config.CacheSize).
const (
	// DefaultCacheTTL bounds how long another node's change to a
	// connection, a tenant's status or its verified domains takes to
	// reach this node: a connection deactivated elsewhere stops logins
	// here within it. Changes made through this Registry apply here at
	// once.
	DefaultCacheTTL = 30 * time.Second
	// DefaultCacheSize bounds the connections and the tenants kept, each.
	DefaultCacheSize = 10_000
)

// cache keeps what the SSO endpoints need to answer without SQL (the
// hot-path rule in CONTRIBUTING.md): per connection id, its row (and so its
// tenant) and the Connector built from it; per tenant, its status and
// verified domains. Entries read from the store are trusted for ttl; the
// Registry's own writes replace them at once. Past size entries of each
// kind, the one not read for longest (about: see clock) makes room, so a
// tenant signing in every minute keeps its connector however many others
// sign in once a day.
type cache struct {
	ttl  time.Duration // <= 0: nothing read from the store is reused
	size int

	mu      sync.RWMutex
	conns   map[string]*connEntry
	tenants map[string]tenantEntry
	// connClock and tenantClock choose what to evict from conns and
	// tenants; every entry holds its key's slot in them.
	connClock, tenantClock clock
	// deleted holds connections deleted through this node, with when: a
	// load that read the row just before the delete must not cache it
	// back. Connection ids are never reused.
	deleted map[string]time.Time
}

// connEntry is one connection. Its fields are never changed once the
// entry is in the map (a change puts a new entry), so readers may use
// them after releasing the lock.
type connEntry struct {
	conn store.Connection
	// loaded is when conn was read from (or written to) the store; zero
	// for an entry made only to hold a connector, which load never trusts.
	loaded time.Time
	// connector was built from conn; nil until first needed.
	connector Connector
	// slot is the connection's place in connClock, the same for every
	// version of the entry.
	slot *slot
}

type tenantEntry struct {
	status   store.TenantStatus
	verified []string
	loaded   time.Time
	slot     *slot // set by putTenant: the tenant's place in tenantClock
}

func newCache(ttl time.Duration, size int) *cache {
	return &cache{ttl: ttl, size: size, conns: map[string]*connEntry{}, tenants: map[string]tenantEntry{}, deleted: map[string]time.Time{}}
}

func (c *cache) fresh(loaded, now time.Time) bool {
	age := now.Sub(loaded)
	return c.ttl > 0 && !loaded.IsZero() && age >= 0 && age < c.ttl
}

// conn returns the connection id as last read, if that was within ttl.
func (c *cache) conn(id string, now time.Time) (store.Connection, bool) {
	c.mu.RLock()
	e := c.conns[id]
	c.mu.RUnlock()
	if e == nil || !c.fresh(e.loaded, now) {
		return store.Connection{}, false
	}
	e.slot.touch()
	return e.conn, true
}

// putConn records conn as read from or written to the store at now. A
// connector already built for the same version of the row is kept.
func (c *cache) putConn(conn store.Connection, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, gone := c.deleted[conn.ID]; gone {
		return
	}
	e := &connEntry{conn: conn, loaded: now}
	if old := c.conns[conn.ID]; old != nil {
		if old.conn.UpdatedAt.After(conn.UpdatedAt) && c.fresh(old.loaded, now) {
			// A racing reader brought an older row back after our own
			// write: keep the newer one.
			return
		}
		if old.conn.UpdatedAt.Equal(conn.UpdatedAt) {
			e.connector = old.connector
		}
	}
	c.insertConn(e)
}

// connector returns the Connector built for this version of conn.
func (c *cache) connector(conn store.Connection) Connector {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.conns[conn.ID]; e != nil && e.connector != nil && e.conn.UpdatedAt.Equal(conn.UpdatedAt) {
		e.slot.touch()
		return e.connector
	}
	return nil
}

// putConnector keeps cn, built from conn, unless the cache already holds
// a newer version of the connection.
func (c *cache) putConnector(conn store.Connection, cn Connector) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.conns[conn.ID]
	switch {
	case old == nil:
		// Held for the connector only: load still reads the row.
		c.insertConn(&connEntry{conn: conn, connector: cn})
	case old.conn.UpdatedAt.Equal(conn.UpdatedAt):
		e := *old
		e.connector = cn
		c.conns[conn.ID] = &e
	case old.conn.UpdatedAt.Before(conn.UpdatedAt):
		c.conns[conn.ID] = &connEntry{conn: conn, connector: cn, slot: old.slot}
	}
}

// insertConn adds or replaces e, keeping the connection's slot, or
// taking one (which may evict another connection). Called with mu held.
func (c *cache) insertConn(e *connEntry) {
	if old := c.conns[e.conn.ID]; old != nil {
		e.slot = old.slot
	} else {
		var victim string
		var evict bool
		if e.slot, victim, evict = c.connClock.add(e.conn.ID, c.size); evict {
			delete(c.conns, victim)
		}
	}
	c.conns[e.conn.ID] = e
}

// dropConn forgets a connection deleted at now.
func (c *cache) dropConn(id string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.conns[id]; e != nil {
		c.connClock.remove(e.slot)
		delete(c.conns, id)
	}
	for k, at := range c.deleted {
		// A read racing the delete is long over after a TTL.
		if now.Sub(at) > max(c.ttl, time.Minute) || now.Before(at) {
			delete(c.deleted, k)
		}
	}
	if len(c.deleted) < c.size {
		c.deleted[id] = now
	}
}

func (c *cache) tenant(id string, now time.Time) (tenantEntry, bool) {
	c.mu.RLock()
	e, ok := c.tenants[id]
	c.mu.RUnlock()
	if !ok || !c.fresh(e.loaded, now) {
		return e, false
	}
	e.slot.touch()
	return e, true
}

func (c *cache) putTenant(id string, e tenantEntry) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.tenants[id]; ok {
		e.slot = old.slot
	} else {
		var victim string
		var evict bool
		if e.slot, victim, evict = c.tenantClock.add(id, c.size); evict {
			delete(c.tenants, victim)
		}
	}
	c.tenants[id] = e
}

// staleConn makes the next load of id read the store again, keeping the
// connector in case the row has not changed (an OIDC connector costs a
// discovery round trip to rebuild).
func (c *cache) staleConn(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.conns[id]; old != nil {
		e := *old
		e.loaded = time.Time{}
		c.conns[id] = &e
	}
}

// staleTenant forgets a tenant's status and domains and makes its
// connections stale.
func (c *cache) staleTenant(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.tenants[id]; ok {
		c.tenantClock.remove(e.slot)
		delete(c.tenants, id)
	}
	for k, old := range c.conns {
		if old.conn.TenantID == id {
			e := *old
			e.loaded = time.Time{}
			c.conns[k] = &e
		}
	}
}

// staleAll makes every entry stale.
func (c *cache) staleAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.tenants)
	c.tenantClock.reset()
	for k, old := range c.conns {
		e := *old
		e.loaded = time.Time{}
		c.conns[k] = &e
	}
}
