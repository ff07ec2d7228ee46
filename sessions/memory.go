package sessions

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// sweepInterval bounds how long expired entries linger in Memory: every
// write after it has passed first removes everything expired.
const sweepInterval = time.Minute

// Memory keeps sessions, one-time values and rate-limit buckets in process,
// for the embedded single-node deployment. Expired entries are removed
// lazily by the writes that follow, so Memory starts no goroutines and
// needs no Close. The zero value is not usable; call NewMemory.
type Memory struct {
	mu        sync.RWMutex
	sessions  map[string]Session
	byUser    map[[2]string]map[string]struct{} // {tenant, user}
	byTenant  map[string]map[string]struct{}
	byConn    map[[2]string]map[string]struct{} // {tenant, connection}
	nextSweep time.Time

	onceMu        sync.Mutex
	seen          map[string]time.Time // Remember: key → expiry
	values        map[string]onceValue // Put/Take
	buckets       map[string]time.Time // Allow: key → theoretical arrival time
	counts        map[string]count     // Incr
	nextOnceSweep time.Time

	subMu sync.Mutex
	subs  map[*subscriber]struct{}

	famMu        sync.Mutex
	families     map[string]Family
	nextFamSweep time.Time

	// orders remembers what each durable order ended (ForOrder), under
	// mu, until its expiry.
	orders         map[string]orderEnded
	nextOrderSweep time.Time

	// What Rewindable needs, under mu: when each session began (a replay
	// spares those begun after its revocation), this Memory's name and
	// the epoch marker written into it.
	created  map[string]time.Time
	server   string
	epoch    int64
	hasEpoch bool
	applied  int64 // raised by SetMarker only: a Memory never rewinds
	gate
}

type onceValue struct {
	value   []byte
	expires time.Time
}

var (
	_ Store     = (*Memory)(nil)
	_ OnceCache = (*Memory)(nil)
	_ Limiter   = (*Memory)(nil)
)

// NewMemory returns an empty in-process store.
func NewMemory() *Memory {
	now := time.Now()
	return &Memory{
		sessions:      make(map[string]Session),
		byUser:        make(map[[2]string]map[string]struct{}),
		byTenant:      make(map[string]map[string]struct{}),
		byConn:        make(map[[2]string]map[string]struct{}),
		nextSweep:     now.Add(sweepInterval),
		seen:          make(map[string]time.Time),
		values:        make(map[string]onceValue),
		buckets:       make(map[string]time.Time),
		counts:        make(map[string]count),
		nextOnceSweep: now.Add(sweepInterval),
		subs:          make(map[*subscriber]struct{}),
		families:      make(map[string]Family),
		nextFamSweep:  now.Add(sweepInterval),
		created:       make(map[string]time.Time),
		server:        newServerID(),
	}
}

// Ping always succeeds: there is nothing to reach.
func (m *Memory) Ping(ctx context.Context) error { return nil }

// Create implements Store.
func (m *Memory) Create(ctx context.Context, s Session) error {
	now := time.Now()
	if err := s.validate(now); err != nil {
		return fmt.Errorf("sessions: create: %w", err)
	}
	s = s.clone()
	s.Apps, s.Revoked = nil, nil
	// Drop the monotonic reading so that times compare the same as they
	// would after a round trip through Redis.
	s.AuthTime, s.ExpiresAt = s.AuthTime.Round(0), s.ExpiresAt.Round(0)

	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	if old, ok := m.sessions[s.ID]; ok && now.Before(old.ExpiresAt) {
		return fmt.Errorf("sessions: create %s: %w", s.ID, ErrExists)
	} else if ok {
		m.removeLocked(old)
	}
	m.sessions[s.ID] = s
	m.created[s.ID] = now
	addIndex(m.byUser, [2]string{s.TenantID, s.UserID}, s.ID)
	addIndex(m.byTenant, s.TenantID, s.ID)
	if s.ConnectionID != "" {
		addIndex(m.byConn, [2]string{s.TenantID, s.ConnectionID}, s.ID)
	}
	return nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, id string) (Session, error) {
	if err := m.check(); err != nil {
		return Session{}, err
	}
	m.mu.RLock()
	s, ok := m.sessions[id]
	m.mu.RUnlock()
	if !ok || !time.Now().Before(s.ExpiresAt) {
		return Session{}, ErrNotFound
	}
	return s.clone(), nil
}

// Revoke implements Store.
func (m *Memory) Revoke(ctx context.Context, id string) error {
	_, err := m.RevokeSession(ctx, id)
	return err
}

// RevokeSession implements Store.
func (m *Memory) RevokeSession(ctx context.Context, id string) ([]Session, error) {
	now := time.Now()
	order := orderOf(ctx)
	m.mu.Lock()
	if done, ok := m.orderEndedLocked(order, now); ok {
		m.mu.Unlock()
		return done, nil
	}
	s, ok := m.sessions[id]
	if ok {
		m.removeLocked(s)
	}
	var ended []Session
	if ok && now.Before(s.ExpiresAt) {
		ended = []Session{s.clone()}
	}
	m.rememberOrderLocked(order, ended, now)
	m.mu.Unlock()
	if len(ended) == 0 {
		return nil, nil
	}
	m.publish(Revocation{SessionIDs: []string{id}, TenantID: s.TenantID, UserID: s.UserID, Reason: ReasonSession})
	return ended, nil
}

// orderEnded is what one durable order ended, kept until until.
type orderEnded struct {
	sessions []Session
	until    time.Time
}

// orderEndedLocked returns what order ended, if it was carried out here
// before and is still remembered.
func (m *Memory) orderEndedLocked(order string, now time.Time) ([]Session, bool) {
	if order == "" {
		return nil, false
	}
	o, ok := m.orders[order]
	if !ok || !now.Before(o.until) {
		return nil, false
	}
	out := make([]Session, 0, len(o.sessions))
	for _, s := range o.sessions {
		out = append(out, s.clone())
	}
	return out, true
}

// rememberOrderLocked keeps what order ended for OrderMemory, dropping
// the orders past theirs.
func (m *Memory) rememberOrderLocked(order string, ended []Session, now time.Time) {
	if order == "" {
		return
	}
	if m.orders == nil {
		m.orders = map[string]orderEnded{}
	}
	// Pruned once a minute, not at every order: a directory deprovisioning
	// tens of thousands of users records as many orders.
	if now.After(m.nextOrderSweep) {
		for id, o := range m.orders {
			if !now.Before(o.until) {
				delete(m.orders, id)
			}
		}
		m.nextOrderSweep = now.Add(time.Minute)
	}
	kept := make([]Session, 0, len(ended))
	for _, s := range ended {
		kept = append(kept, s.brief())
	}
	m.orders[order] = orderEnded{sessions: kept, until: now.Add(OrderMemory)}
}

// revokeIndex ends the sessions of one index under the order ctx carries
// out, if any.
func (m *Memory) revokeIndex(ctx context.Context, ids func() map[string]struct{}) ([]Session, bool) {
	now := time.Now()
	order := orderOf(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if done, ok := m.orderEndedLocked(order, now); ok {
		return done, false
	}
	revoked := m.revokeLocked(ids())
	m.rememberOrderLocked(order, revoked, now)
	return revoked, true
}

// RevokeClient implements Store. The session's map is replaced, not
// changed, so that copies handed out keep what they were given.
func (m *Memory) RevokeClient(ctx context.Context, id, clientID string, at time.Time) error {
	if id == "" || clientID == "" {
		return fmt.Errorf("sessions: revoke client: %w: needs a session and a client", ErrInvalid)
	}
	at = at.Round(0).Truncate(time.Millisecond) // as Redis keeps it
	now := time.Now()
	m.mu.Lock()
	s, ok := m.sessions[id]
	if ok && now.Before(s.ExpiresAt) {
		if old, seen := s.Revoked[clientID]; !seen || at.After(old) {
			s.Revoked = maps.Clone(s.Revoked)
			if s.Revoked == nil {
				s.Revoked = make(map[string]time.Time, 1)
			}
			s.Revoked[clientID] = at
			m.sessions[id] = s
		}
	}
	m.mu.Unlock()
	if !ok || !now.Before(s.ExpiresAt) {
		return nil
	}
	m.publish(Revocation{SessionIDs: []string{id}, TenantID: s.TenantID, ClientID: clientID, Reason: ReasonClient})
	return nil
}

// AddApp implements Store.
func (m *Memory) AddApp(ctx context.Context, id, clientID string) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok || !now.Before(s.ExpiresAt) {
		return ErrNotFound
	}
	if !slices.Contains(s.Apps, clientID) {
		s.Apps = append(slices.Clone(s.Apps), clientID)
		m.sessions[id] = s
	}
	return nil
}

// RevokeUser implements Store.
func (m *Memory) RevokeUser(ctx context.Context, tenantID, userID string) ([]Session, error) {
	revoked, fresh := m.revokeIndex(ctx, func() map[string]struct{} { return m.byUser[[2]string{tenantID, userID}] })
	if fresh {
		m.publishSessions(revoked, Revocation{TenantID: tenantID, UserID: userID, Reason: ReasonUser})
	}
	return revoked, nil
}

// RevokeTenant implements Store.
func (m *Memory) RevokeTenant(ctx context.Context, tenantID string) ([]Session, error) {
	revoked, fresh := m.revokeIndex(ctx, func() map[string]struct{} { return m.byTenant[tenantID] })
	if fresh {
		m.publishSessions(revoked, Revocation{TenantID: tenantID, Reason: ReasonTenant})
	}
	return revoked, nil
}

// RevokeConnection implements Store.
func (m *Memory) RevokeConnection(ctx context.Context, tenantID, connectionID string) ([]Session, error) {
	revoked, fresh := m.revokeIndex(ctx, func() map[string]struct{} { return m.byConn[[2]string{tenantID, connectionID}] })
	if fresh {
		m.publishSessions(revoked, Revocation{TenantID: tenantID, ConnectionID: connectionID, Reason: ReasonConnection})
	}
	return revoked, nil
}

// ListUser implements Store.
func (m *Memory) ListUser(ctx context.Context, tenantID, userID string) ([]Session, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	now := time.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Session
	for id := range m.byUser[[2]string{tenantID, userID}] {
		if s := m.sessions[id]; now.Before(s.ExpiresAt) {
			out = append(out, s.clone())
		}
	}
	return out, nil
}

// Subscribe implements Store. Memory has one node, so it delivers the
// revocations made through m.
func (m *Memory) Subscribe(ctx context.Context, fn func(Revocation)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sessions: subscribe: %w", err)
	}
	sub := newSubscriber(fn)
	m.subMu.Lock()
	m.subs[sub] = struct{}{}
	m.subMu.Unlock()
	context.AfterFunc(ctx, func() {
		m.subMu.Lock()
		delete(m.subs, sub)
		m.subMu.Unlock()
	})
	go sub.run(ctx)
	return nil
}

// revokeLocked removes the sessions in ids (a live index set, which it
// empties) and returns those that had not yet expired.
func (m *Memory) revokeLocked(ids map[string]struct{}) []Session {
	now := time.Now()
	var revoked []Session
	for id := range ids {
		s := m.sessions[id]
		m.removeLocked(s)
		if now.Before(s.ExpiresAt) {
			revoked = append(revoked, s.clone())
		}
	}
	return revoked
}

func (m *Memory) removeLocked(s Session) {
	delete(m.sessions, s.ID)
	delete(m.created, s.ID)
	removeIndex(m.byUser, [2]string{s.TenantID, s.UserID}, s.ID)
	removeIndex(m.byTenant, s.TenantID, s.ID)
	if s.ConnectionID != "" {
		removeIndex(m.byConn, [2]string{s.TenantID, s.ConnectionID}, s.ID)
	}
}

// sweepLocked removes expired sessions, at most once per sweepInterval.
func (m *Memory) sweepLocked(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(sweepInterval)
	for _, s := range m.sessions {
		if !now.Before(s.ExpiresAt) {
			m.removeLocked(s)
		}
	}
}

func (m *Memory) publishSessions(revoked []Session, r Revocation) {
	if len(revoked) == 0 {
		return
	}
	r.SessionIDs = make([]string, len(revoked))
	for i, s := range revoked {
		r.SessionIDs[i] = s.ID
	}
	m.publish(r)
}

func (m *Memory) publish(r Revocation) {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	for sub := range m.subs {
		sub.push(r)
	}
}

func addIndex[K comparable](idx map[K]map[string]struct{}, k K, id string) {
	set := idx[k]
	if set == nil {
		set = make(map[string]struct{})
		idx[k] = set
	}
	set[id] = struct{}{}
}

func removeIndex[K comparable](idx map[K]map[string]struct{}, k K, id string) {
	if set := idx[k]; set != nil {
		delete(set, id)
		if len(set) == 0 {
			delete(idx, k)
		}
	}
}

// Remember implements OnceCache.
func (m *Memory) Remember(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := checkTTL(key, ttl); err != nil {
		return false, fmt.Errorf("sessions: remember: %w", err)
	}
	now := time.Now()
	m.onceMu.Lock()
	defer m.onceMu.Unlock()
	m.sweepOnceLocked(now)
	if exp, ok := m.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	m.seen[key] = now.Add(ttl)
	return true, nil
}

// Put implements OnceCache.
func (m *Memory) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(key, ttl); err != nil {
		return fmt.Errorf("sessions: put: %w", err)
	}
	now := time.Now()
	m.onceMu.Lock()
	defer m.onceMu.Unlock()
	m.sweepOnceLocked(now)
	m.values[key] = onceValue{value: append([]byte(nil), value...), expires: now.Add(ttl)}
	return nil
}

// Take implements OnceCache.
func (m *Memory) Take(ctx context.Context, key string) ([]byte, error) {
	m.onceMu.Lock()
	defer m.onceMu.Unlock()
	v, ok := m.values[key]
	if !ok {
		return nil, ErrNotFound
	}
	delete(m.values, key)
	if !time.Now().Before(v.expires) {
		return nil, ErrNotFound
	}
	return v.value, nil
}

// Allow implements Limiter.
func (m *Memory) Allow(ctx context.Context, key string, limit int, window time.Duration) (Decision, error) {
	interval, err := gcraInterval(key, limit, window)
	if err != nil {
		return Decision{}, fmt.Errorf("sessions: allow: %w", err)
	}
	now := time.Now()
	m.onceMu.Lock()
	defer m.onceMu.Unlock()
	m.sweepOnceLocked(now)
	// GCRA: the bucket is a "theoretical arrival time" that each request
	// pushes interval further; a request is refused while that would put
	// it more than window ahead of now.
	tat := m.buckets[key]
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	if allowAt := next.Add(-window); allowAt.After(now) {
		return Decision{Limit: limit, RetryAfter: allowAt.Sub(now)}, nil
	}
	m.buckets[key] = next
	return Decision{Allowed: true, Limit: limit, Remaining: int((window - next.Sub(now)) / interval)}, nil
}

func (m *Memory) sweepOnceLocked(now time.Time) {
	if now.Before(m.nextOnceSweep) {
		return
	}
	m.nextOnceSweep = now.Add(sweepInterval)
	for k, exp := range m.seen {
		if !now.Before(exp) {
			delete(m.seen, k)
		}
	}
	for k, v := range m.values {
		if !now.Before(v.expires) {
			delete(m.values, k)
		}
	}
	for k, tat := range m.buckets {
		if !now.Before(tat) {
			delete(m.buckets, k)
		}
	}
	for k, c := range m.counts {
		if !now.Before(c.expires) {
			delete(m.counts, k)
		}
	}
}
