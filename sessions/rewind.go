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
//
// Neither half notices data restored into the same server (a managed
// Redis restored from a snapshot taken after the last epoch advance, a
// RESTOREd key set), nor anything when INFO is refused: Applied does. The
// store counts every revocation it applies, in the step that applies it
// (a Lua script); the database keeps the highest count any node has seen.
// A store whose count is below that has lost at least one revocation it
// had acknowledged.
type Marker struct {
	// Server identifies the process answering: Redis's run_id, or a
	// random id per Memory; empty when the server refuses INFO (Blind).
	Server string
	// Epoch is the epoch marker the store holds; Present is false (and
	// Epoch zero) when it holds none.
	Epoch   int64
	Present bool
	// Applied is the store's count of revocations applied.
	Applied int64
	// Blind is true when the server refuses INFO (some managed Redis ACLs):
	// a restart or failover is then recognised by Epoch and Applied only.
	Blind bool
}

// Same reports whether m and o name the same server holding the same
// epoch; Applied, which grows with every revocation, is not compared.
func (m Marker) Same(o Marker) bool {
	return m.Server == o.Server && m.Epoch == o.Epoch && m.Present == o.Present && m.Blind == o.Blind
}

// Rewindable is a session store that can lose or rewind what it holds,
// and the means to notice and repair it: Memory and Redis, and Cached
// over either.
type Rewindable interface {
	// Marker reads the store's Marker.
	Marker(ctx context.Context) (Marker, error)
	// SetMarker writes epoch into the store, raises its count of applied
	// revocations to at least applied, and returns the Marker read in
	// the same step, so the caller knows which server took it.
	SetMarker(ctx context.Context, epoch, applied int64) (Marker, error)
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
	// blind: the server refused INFO (an ACL without it); not asked again.
	blind atomic.Bool
	// clockOffset (ns, Redis's clock minus this node's) as measured at
	// clockAt (unix ns): see lateAfter.
	clockOffset, clockAt atomic.Int64
}

// refused reports whether err is Redis refusing a command to this user
// (NOPERM), or not knowing it (a managed Redis that renamed or removed it).
func refused(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "NOPERM") || strings.HasPrefix(msg, "ERR unknown command")
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
// been vouched for (nothing is asked before, nor without Rewinds), and
// unless the server refuses INFO (then Marker.Applied watches alone).
func (g *gate) onConnect(ctx context.Context, cn *redis.Conn) error {
	if g.vouched.Load() == nil || g.blind.Load() {
		return nil
	}
	info, err := cn.Info(ctx, "server").Result()
	if refused(err) {
		g.blind.Store(true)
		return nil
	}
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
	return Marker{Server: m.server, Epoch: m.epoch, Present: m.hasEpoch, Applied: m.applied}, nil
}

// SetMarker implements Rewindable.
func (m *Memory) SetMarker(ctx context.Context, epoch, applied int64) (Marker, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.epoch, m.hasEpoch = epoch, true
	m.applied = max(m.applied, applied)
	return Marker{Server: m.server, Epoch: m.epoch, Present: true, Applied: m.applied}, nil
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

// appliedKey counts the revocations applied (Marker.Applied): every
// revocation script INCRs it (luaApplied).
func (r *Redis) appliedKey() string { return r.prefix + "applied" }

// Marker implements Rewindable: Redis's run_id (unless INFO is refused),
// the epoch key and the count of applied revocations, in one round trip.
func (r *Redis) Marker(ctx context.Context) (Marker, error) {
	var info *redis.StringCmd
	var get *redis.SliceCmd
	var now *redis.TimeCmd
	sent := time.Now()
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if !r.blind.Load() {
			info = p.Info(ctx, "server")
		}
		get = p.MGet(ctx, r.markerKey(), r.appliedKey())
		now = p.Time(ctx) // for lateAfter, in the same round trip
		return nil
	})
	if err != nil && !refused(err) {
		return Marker{}, fmt.Errorf("sessions: redis marker: %w", err)
	}
	if t, err := now.Result(); err == nil {
		r.observeTime(sent, time.Now(), t)
	}
	return r.markerOf(info, get)
}

// setMarkerScript writes the epoch and raises the applied count.
// KEYS: epoch, applied. ARGV: epoch, applied.
var setMarkerScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if cur < tonumber(ARGV[2]) then redis.call('SET', KEYS[2], ARGV[2]) end
return 1
`)

// SetMarker implements Rewindable: the script and INFO in one MULTI, so
// that the run_id returned is that of the server that took the epoch.
func (r *Redis) SetMarker(ctx context.Context, epoch, applied int64) (Marker, error) {
	keys := []string{r.markerKey(), r.appliedKey()}
	// Loaded first: a MULTI cannot fall back from EVALSHA to EVAL.
	if err := setMarkerScript.Load(ctx, r.c).Err(); err != nil {
		return Marker{}, fmt.Errorf("sessions: redis set marker: %w", err)
	}
	blind := r.blind.Load()
	var info *redis.StringCmd
	var get *redis.SliceCmd
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		setMarkerScript.EvalSha(ctx, p, keys, epoch, applied)
		if !blind {
			info = p.Info(ctx, "server")
		}
		get = p.MGet(ctx, keys...)
		return nil
	})
	if err != nil {
		return Marker{}, fmt.Errorf("sessions: redis set marker: %w", err)
	}
	return r.markerOf(info, get)
}

// markerOf reads the answers of Marker and SetMarker; an INFO refused
// marks the store blind, and a nil one is a blind store's.
func (r *Redis) markerOf(info *redis.StringCmd, get *redis.SliceCmd) (Marker, error) {
	var m Marker
	if info != nil {
		text, err := info.Result()
		switch {
		case refused(err):
			r.blind.Store(true)
		case err != nil:
			return Marker{}, fmt.Errorf("sessions: redis info: %w", err)
		default:
			if m.Server = runID(text); m.Server == "" {
				return Marker{}, errors.New("sessions: redis info: no run_id")
			}
		}
	}
	m.Blind = m.Server == ""
	vs, err := get.Result()
	if err != nil {
		return Marker{}, fmt.Errorf("sessions: redis marker: %w", err)
	}
	if len(vs) != 2 {
		return Marker{}, fmt.Errorf("sessions: redis marker: %d values", len(vs))
	}
	if s, ok := vs[1].(string); ok {
		// Not a number: not ours, and as good as zero (a replay raises it).
		m.Applied, _ = strconv.ParseInt(s, 10, 64)
	}
	v, ok := vs[0].(string)
	if !ok {
		return m, nil
	}
	if m.Epoch, err = strconv.ParseInt(v, 10, 64); err != nil {
		// Not ours to read: as good as missing, and so replayed over.
		m.Epoch = 0
		return m, nil
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
applied(ARGV[1])
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
func (c *Cached) SetMarker(ctx context.Context, epoch, applied int64) (Marker, error) {
	rw, err := c.rewindable()
	if err != nil {
		return Marker{}, err
	}
	return rw.SetMarker(ctx, epoch, applied)
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
