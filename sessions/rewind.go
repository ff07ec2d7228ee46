package sessions

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrSuspended is returned by reads of a suspended store (Suspend): it is
// not yet known to hold every revocation, so it may vouch for a session
// that was revoked. Callers answer it as they answer an unreachable store
// (503, try again shortly), never as "not found" (which a cache would
// keep) nor as "active".
var ErrSuspended = errors.New("sessions: session store is being checked for lost revocations")

// Marker says which session store answers and what it remembers of the
// revocations applied to it.
//
// A Redis restarted from an older snapshot, promoted from a lagging
// replica or restored from a backup has lost the revocations made after
// its data was saved: the sessions they ended are back. Such a store is
// recognised by either half of its Marker: Server (Redis's run_id) is new
// whenever the process holding the data is, and Epoch, written into the
// store after every full replay of the kept revocations, is missing (an
// empty or flushed store) or older than the epoch recorded in the
// database.
type Marker struct {
	// Server identifies the process answering: Redis's run_id, or a
	// random id per Memory.
	Server string
	// Epoch is the epoch marker the store holds; Present is false (and
	// Epoch zero) when it holds none.
	Epoch   int64
	Present bool
}

// Rewindable is a session store that can lose or rewind what it holds,
// and the means to notice and repair it: Memory and Redis, and Cached
// over either.
type Rewindable interface {
	// Marker reads the store's Marker.
	Marker(ctx context.Context) (Marker, error)
	// SetMarker writes epoch into the store and returns the Marker read
	// in the same step, so the caller knows which server took it.
	SetMarker(ctx context.Context, epoch int64) (Marker, error)
	// RevokeBefore applies a revocation again: kind is ReasonSession,
	// ReasonUser, ReasonTenant or ReasonConnection (the subject is then a
	// session, user or connection id, or empty). Sessions of a user,
	// tenant or connection that the store began at or after before are
	// spared: they began after the revocation, legitimately. ReasonClient
	// (the subject a GrantSubject) revokes the grant again as of before,
	// or now if before is later: never in the future, where it would kill
	// the tokens of sign-ins yet to come.
	RevokeBefore(ctx context.Context, kind, tenantID, subjectID string, before time.Time) ([]Session, error)
	// Suspend(true) makes every read that could vouch for a session
	// (Get, ListUser, Family, Rotate) fail with ErrSuspended until
	// Suspend(false); writes and revocations go through.
	Suspend(on bool)
	// Vouch names the server the caller checked. From then on, a new
	// connection that reaches another server (Redis restarted or failed
	// over under a connection pool that redials at once) suspends the
	// store before it carries a single read, and is counted: Stranger
	// names that server until it is vouched for, and Strangers counts
	// such connections.
	Vouch(server string)
	Stranger() string
	Strangers() uint64
}

var (
	_ Rewindable = (*Memory)(nil)
	_ Rewindable = (*Redis)(nil)
	_ Rewindable = (*Cached)(nil)
)

// gate is what Suspend sets — one atomic load on each guarded read — and
// what Vouch watches.
type gate struct {
	suspended atomic.Bool
	vouched   atomic.Pointer[string]
	stranger  atomic.Pointer[string]
	strangers atomic.Uint64
}

// Vouch implements Rewindable.
func (g *gate) Vouch(server string) {
	g.vouched.Store(&server)
	if s := g.stranger.Load(); s != nil && *s == server {
		g.stranger.CompareAndSwap(s, nil)
	}
}

// Stranger implements Rewindable.
func (g *gate) Stranger() string {
	if s := g.stranger.Load(); s != nil {
		return *s
	}
	return ""
}

// Strangers implements Rewindable.
func (g *gate) Strangers() uint64 { return g.strangers.Load() }

// met is told the server a new connection reached. Counted before the
// suspension, so that a caller lifting one and then reading Strangers
// again sees every suspension that may have raced with it.
func (g *gate) met(server string) {
	v := g.vouched.Load()
	if v == nil || *v == server {
		return
	}
	g.stranger.Store(&server)
	g.strangers.Add(1)
	g.suspended.Store(true)
}

// onConnect is the Redis client's OnConnect: every new connection asks
// which server it reached before it carries anything, once a server has
// been vouched for (nothing is asked before, nor without Rewinds).
func (g *gate) onConnect(ctx context.Context, cn *redis.Conn) error {
	if g.vouched.Load() == nil {
		return nil
	}
	info, err := cn.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("sessions: redis info on connect: %w", err)
	}
	g.met(runID(info))
	return nil
}

// Suspend implements Rewindable.
func (g *gate) Suspend(on bool) { g.suspended.Store(on) }

func (g *gate) check() error {
	if g.suspended.Load() {
		return ErrSuspended
	}
	return nil
}

// Suspended reports whether reads are suspended.
func (g *gate) Suspended() bool { return g.suspended.Load() }

// newServerID names one Memory, which lives and dies with its process.
func newServerID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "mem-" + hex.EncodeToString(b)
}

// Marker implements Rewindable.
func (m *Memory) Marker(ctx context.Context) (Marker, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return Marker{Server: m.server, Epoch: m.epoch, Present: m.hasEpoch}, nil
}

// SetMarker implements Rewindable.
func (m *Memory) SetMarker(ctx context.Context, epoch int64) (Marker, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.epoch, m.hasEpoch = epoch, true
	return Marker{Server: m.server, Epoch: m.epoch, Present: true}, nil
}

// RevokeBefore implements Rewindable.
func (m *Memory) RevokeBefore(ctx context.Context, kind, tenantID, subjectID string, before time.Time) ([]Session, error) {
	var ids map[string]struct{}
	switch kind {
	case ReasonSession:
		return m.RevokeSession(ctx, subjectID)
	case ReasonClient:
		return nil, revokeClientBefore(ctx, m, subjectID, before)
	case ReasonUser:
		ids = m.byUserIndex(tenantID, subjectID)
	case ReasonTenant:
		ids = m.byTenantIndex(tenantID)
	case ReasonConnection:
		ids = m.byConnIndex(tenantID, subjectID)
	default:
		return nil, fmt.Errorf("sessions: revoke before: unknown kind %q", kind)
	}
	var out []Session
	for id := range ids {
		m.mu.RLock()
		created, ok := m.created[id]
		m.mu.RUnlock()
		if ok && !created.Before(before) {
			continue
		}
		ended, err := m.RevokeSession(ctx, id)
		if err != nil {
			return out, err
		}
		out = append(out, ended...)
	}
	return out, nil
}

// revokeClientBefore is RevokeBefore of a ReasonClient revocation.
func revokeClientBefore(ctx context.Context, st Store, subject string, before time.Time) error {
	sid, client, ok := ParseGrantSubject(subject)
	if !ok {
		return fmt.Errorf("sessions: revoke before: malformed grant %q", subject)
	}
	if now := time.Now(); before.After(now) {
		before = now
	}
	return st.RevokeClient(ctx, sid, client, before)
}

func (m *Memory) byUserIndex(tenant, user string) map[string]struct{} {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return copyIndex(m.byUser[[2]string{tenant, user}])
}

func (m *Memory) byTenantIndex(tenant string) map[string]struct{} {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return copyIndex(m.byTenant[tenant])
}

func (m *Memory) byConnIndex(tenant, conn string) map[string]struct{} {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return copyIndex(m.byConn[[2]string{tenant, conn}])
}

func copyIndex(ix map[string]struct{}) map[string]struct{} {
	out := make(map[string]struct{}, len(ix))
	for id := range ix {
		out[id] = struct{}{}
	}
	return out
}

func (r *Redis) markerKey() string { return r.prefix + "epoch" }

// Marker implements Rewindable: Redis's run_id and the epoch key, in one
// round trip.
func (r *Redis) Marker(ctx context.Context) (Marker, error) {
	var info *redis.StringCmd
	var get *redis.StringCmd
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		info = p.Info(ctx, "server")
		get = p.Get(ctx, r.markerKey())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Marker{}, fmt.Errorf("sessions: redis marker: %w", err)
	}
	return markerOf(info, get)
}

// SetMarker implements Rewindable: SET and INFO in one MULTI, so that the
// run_id returned is that of the server that took the epoch.
func (r *Redis) SetMarker(ctx context.Context, epoch int64) (Marker, error) {
	var info *redis.StringCmd
	var get *redis.StringCmd
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.markerKey(), strconv.FormatInt(epoch, 10), 0)
		info = p.Info(ctx, "server")
		get = p.Get(ctx, r.markerKey())
		return nil
	})
	if err != nil {
		return Marker{}, fmt.Errorf("sessions: redis set marker: %w", err)
	}
	return markerOf(info, get)
}

func markerOf(info, get *redis.StringCmd) (Marker, error) {
	text, err := info.Result()
	if err != nil {
		return Marker{}, fmt.Errorf("sessions: redis info: %w", err)
	}
	var m Marker
	if m.Server = runID(text); m.Server == "" {
		return Marker{}, errors.New("sessions: redis info: no run_id")
	}
	v, err := get.Result()
	switch {
	case errors.Is(err, redis.Nil):
		return m, nil
	case err != nil:
		return Marker{}, fmt.Errorf("sessions: redis marker: %w", err)
	}
	if m.Epoch, err = strconv.ParseInt(v, 10, 64); err != nil {
		// Not ours to read: as good as missing, and so replayed over.
		return Marker{Server: m.Server}, nil
	}
	m.Present = true
	return m, nil
}

// runID finds run_id in the text of INFO server.
func runID(info string) string {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "run_id:"); ok {
			return v
		}
	}
	return ""
}

// revokeBeforeScript is revokeSetScript sparing the sessions begun at or
// after a time: a replayed revocation must not end the sessions a user (a
// reactivated one, a resumed tenant) began after it. A session without a
// beginning (stored before Redis kept one) is ended.
// KEYS: index set. ARGV: prefix, channel, reason, tenant, user,
// connection, before (unix ms).
var revokeBeforeScript = redis.NewScript(luaRevoke + `
local before = tonumber(ARGV[7])
local out, ids = {}, {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local cr = tonumber(redis.call('HGET', ARGV[1] .. 'ses:' .. id, 'cr') or '0')
  if cr < before then
    local h = revoke(ARGV[1], id)
    if #h > 0 then
      out[#out + 1] = h
      ids[#ids + 1] = id
    end
  end
end
publish(ARGV[2], ids, ARGV[3], ARGV[4], ARGV[5], ARGV[6])
return out
`)

// RevokeBefore implements Rewindable, each kind in one script as its
// revocation is.
func (r *Redis) RevokeBefore(ctx context.Context, kind, tenantID, subjectID string, before time.Time) ([]Session, error) {
	var key, user, conn string
	switch kind {
	case ReasonSession:
		return r.RevokeSession(ctx, subjectID)
	case ReasonClient:
		return nil, revokeClientBefore(ctx, r, subjectID, before)
	case ReasonUser:
		key, user = r.userKey(tenantID, subjectID), subjectID
	case ReasonTenant:
		key = r.tenantKey(tenantID)
	case ReasonConnection:
		key, conn = r.connKey(tenantID, subjectID), subjectID
	default:
		return nil, fmt.Errorf("sessions: revoke before: unknown kind %q", kind)
	}
	v, err := revokeBeforeScript.Run(ctx, r.c, []string{key}, r.prefix, r.channel, kind, tenantID, user, conn,
		before.UnixMilli()).Result()
	if err == nil {
		var out []Session
		if out, err = decodeSessions(v); err == nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("sessions: redis revoke %s %s/%s again: %w", kind, tenantID, subjectID, err)
}

// Marker implements Rewindable for the store underneath.
func (c *Cached) Marker(ctx context.Context) (Marker, error) {
	rw, err := c.rewindable()
	if err != nil {
		return Marker{}, err
	}
	return rw.Marker(ctx)
}

// SetMarker implements Rewindable for the store underneath.
func (c *Cached) SetMarker(ctx context.Context, epoch int64) (Marker, error) {
	rw, err := c.rewindable()
	if err != nil {
		return Marker{}, err
	}
	return rw.SetMarker(ctx, epoch)
}

// RevokeBefore implements Rewindable: the store underneath revokes, and
// this cache forgets what it ended.
func (c *Cached) RevokeBefore(ctx context.Context, kind, tenantID, subjectID string, before time.Time) ([]Session, error) {
	rw, err := c.rewindable()
	if err != nil {
		return nil, err
	}
	if kind == ReasonClient {
		// The session stays: forget the copy without the revocation.
		err := revokeClientBefore(ctx, c.store, subjectID, before)
		if sid, _, ok := ParseGrantSubject(subjectID); ok {
			c.forget(sid)
		}
		return nil, err
	}
	return c.forgetAll(rw.RevokeBefore(ctx, kind, tenantID, subjectID, before))
}

// Suspend implements Rewindable: the store underneath refuses its reads,
// and this cache empties and caches nothing until Suspend(false), so that
// no answer read before or during the suspension is served after it.
func (c *Cached) Suspend(on bool) {
	if rw, err := c.rewindable(); err == nil {
		rw.Suspend(on)
	}
	if !on {
		c.suspended.Store(false)
		return
	}
	c.suspended.Store(true)
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}

// Vouch implements Rewindable for the store underneath.
func (c *Cached) Vouch(server string) {
	if rw, err := c.rewindable(); err == nil {
		rw.Vouch(server)
	}
}

// Stranger implements Rewindable for the store underneath.
func (c *Cached) Stranger() string {
	if rw, err := c.rewindable(); err == nil {
		return rw.Stranger()
	}
	return ""
}

// Strangers implements Rewindable for the store underneath.
func (c *Cached) Strangers() uint64 {
	if rw, err := c.rewindable(); err == nil {
		return rw.Strangers()
	}
	return 0
}

func (c *Cached) rewindable() (Rewindable, error) {
	rw, ok := c.store.(Rewindable)
	if !ok {
		return nil, fmt.Errorf("sessions: %T cannot tell whether it lost revocations", c.store)
	}
	return rw, nil
}
