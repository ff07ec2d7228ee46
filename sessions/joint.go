package sessions

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Joint is a Store that also keeps the one-time values and refresh
// families of the same backend (Memory, Redis, and Cached over either).
// A sign-in writes to both at one step — the session and its code, the
// application and its refresh family — and Joint makes each such pair one
// call: one round trip on Redis instead of two, and all or nothing, so
// that no code outlives the creation of its session and no family exists
// for an application its session does not know.
type Joint interface {
	Store
	// CreatePut is Create(s) and Put(key, value, ttl) in one step: the
	// value is stored only with the session (ErrExists and ErrInvalid
	// store neither).
	CreatePut(ctx context.Context, s Session, key string, value []byte, ttl time.Duration) error
	// AddAppFamily is AddApp(id, clientID) and, when f.ID is not empty,
	// StartFamily(f) in one step: ErrNotFound, and no family, when the
	// session has ended.
	AddAppFamily(ctx context.Context, id, clientID string, f Family) error
}

var (
	_ Joint = (*Memory)(nil)
	_ Joint = (*Redis)(nil)
	_ Joint = (*Cached)(nil)
)

// JointWith returns st as a Joint when once (which also keeps the refresh
// families) is the very backend under st, so that what the joint calls
// store is where once reads it. Otherwise the caller makes the separate
// calls.
func JointWith(st Store, once OnceCache) (Joint, bool) {
	j, ok := st.(Joint)
	if !ok {
		return nil, false
	}
	base := st
	for {
		c, ok := base.(*Cached)
		if !ok {
			break
		}
		base = c.store
	}
	switch b := base.(type) {
	case *Memory:
		m, ok := once.(*Memory)
		return j, ok && m == b
	case *Redis:
		r, ok := once.(*Redis)
		return j, ok && r == b
	}
	return nil, false
}

// CreatePut implements Joint. The session is created before the value is
// stored, under their own locks: a reader may see the session a moment
// before its value, never the value without its session.
func (m *Memory) CreatePut(ctx context.Context, s Session, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(key, ttl); err != nil {
		return fmt.Errorf("sessions: create and put: %w", err)
	}
	if err := m.Create(ctx, s); err != nil {
		return err
	}
	return m.Put(ctx, key, value, ttl)
}

// AddAppFamily implements Joint. The family lock is taken first, as
// Rotate does, so that no rotation or reuse of the new family runs between
// the two halves.
func (m *Memory) AddAppFamily(ctx context.Context, id, clientID string, f Family) error {
	if f.ID == "" {
		return m.AddApp(ctx, id, clientID)
	}
	now := time.Now()
	if err := f.validate(now); err != nil {
		return fmt.Errorf("sessions: start family: %w", err)
	}
	f.Grant = append([]byte(nil), f.Grant...)
	m.famMu.Lock()
	defer m.famMu.Unlock()
	if err := m.AddApp(ctx, id, clientID); err != nil {
		return err
	}
	m.sweepFamiliesLocked(now)
	m.families[f.ID] = f
	return nil
}

// Spend implements OnceCache.
func (m *Memory) Spend(ctx context.Context, key, spentKey string, ttl time.Duration) ([]byte, error) {
	if err := checkTTL(spentKey, ttl); err != nil {
		return nil, fmt.Errorf("sessions: spend: %w", err)
	}
	now := time.Now()
	m.onceMu.Lock()
	defer m.onceMu.Unlock()
	v, ok := m.values[key]
	if !ok {
		return nil, ErrNotFound
	}
	delete(m.values, key)
	if !now.Before(v.expires) {
		return nil, ErrNotFound
	}
	m.values[spentKey] = onceValue{value: append([]byte(nil), v.value...), expires: now.Add(ttl)}
	return v.value, nil
}

// createPutScript stores a session hash, adds it to its index sets (each
// kept alive at least as long as the session) and, when a one-time key
// follows them, stores its value: Create, and CreatePut. The value is
// written last, so that even a script cut short (Redis out of memory)
// leaves no value without its session.
// KEYS: ses, n index keys[, once]. ARGV: ttl ms, id, n, once value, once
// ttl ms, field/value pairs…
var createPutScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[1])
for i = 2, n + 1 do
  redis.call('SADD', KEYS[i], ARGV[2])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
if #KEYS > n + 1 then redis.call('SET', KEYS[n + 2], ARGV[4], 'PX', ARGV[5]) end
return 1
`)

// CreatePut implements Joint with one script.
func (r *Redis) CreatePut(ctx context.Context, s Session, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(key, ttl); err != nil {
		return fmt.Errorf("sessions: create and put: %w", err)
	}
	return r.create(ctx, s, &oncePut{key: r.onceKey(key), value: value, ttl: ttl})
}

// oncePut is a one-time value to store with a new session.
type oncePut struct {
	key   string
	value []byte
	ttl   time.Duration
}

// addAppFamilyScript records an application in a live session's hash and
// starts a refresh family, the family only after the application: cut
// short, it leaves an application recorded without its family (a
// back-channel logout too many), never a family whose application would be
// missed.
// KEYS: ses, fam. ARGV: app field, family ttl ms, family field/value pairs…
var addAppFamilyScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], '1')
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`)

// AddAppFamily implements Joint with one script.
func (r *Redis) AddAppFamily(ctx context.Context, id, clientID string, f Family) error {
	if f.ID == "" {
		return r.AddApp(ctx, id, clientID)
	}
	if err := f.validate(time.Now()); err != nil {
		return fmt.Errorf("sessions: start family: %w", err)
	}
	n, err := addAppFamilyScript.Run(ctx, r.c, []string{r.sesKey(id), r.famKey(f.ID)}, fApp+clientID, ttlMS(f.ExpiresAt),
		"g", f.Gen, "h", f.Hash, "s", f.SessionID, "d", f.Grant, "e", f.ExpiresAt.UnixNano()).Int()
	if err != nil {
		return fmt.Errorf("sessions: redis add app and family to %s: %w", id, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// spendScript is Spend: the spent record is written before the value is
// deleted, so that a script cut short leaves the value to spend again, not
// a spent value without its record.
// KEYS: value, spent. ARGV: spent ttl ms, late (see lateAfter).
var spendScript = redis.NewScript(luaLate + `
if late(ARGV[2]) then return redis.error_reply('IDBLATE') end
local v = redis.call('GET', KEYS[1])
if not v then return false end
redis.call('SET', KEYS[2], v, 'PX', ARGV[1])
redis.call('DEL', KEYS[1])
return v
`)

// Spend implements OnceCache with one script.
func (r *Redis) Spend(ctx context.Context, key, spentKey string, ttl time.Duration) ([]byte, error) {
	if err := checkTTL(spentKey, ttl); err != nil {
		return nil, fmt.Errorf("sessions: spend: %w", err)
	}
	ms := max(1, (ttl + time.Millisecond - 1).Milliseconds())
	cmd := redis.NewStringCmd(ctx)
	v, err := spendScript.Run(ctx, r.c, []string{r.onceKey(key), r.onceKey(spentKey)}, ms, r.lateAfter(ctx)).Result()
	if err != nil && strings.HasPrefix(err.Error(), "IDBLATE") {
		return nil, fmt.Errorf("sessions: spend: %w", ErrLate)
	}
	switch s, ok := v.(string); {
	case err == nil && ok:
		cmd.SetVal(s)
	case err == nil:
		cmd.SetErr(fmt.Errorf("unexpected reply %T", v))
	default:
		cmd.SetErr(err)
	}
	return onceRead("spend", cmd)
}

// CreatePut implements Joint: the new session is cached as Create caches
// it. It fails if the wrapped Store is not a Joint (see JointWith).
func (c *Cached) CreatePut(ctx context.Context, s Session, key string, value []byte, ttl time.Duration) error {
	j, ok := c.store.(Joint)
	if !ok {
		return fmt.Errorf("sessions: %T keeps no one-time values", c.store)
	}
	return c.create(s, func() error { return j.CreatePut(ctx, s, key, value, ttl) })
}

// AddAppFamily implements Joint; like AddApp it leaves the cache alone.
func (c *Cached) AddAppFamily(ctx context.Context, id, clientID string, f Family) error {
	j, ok := c.store.(Joint)
	if !ok {
		return fmt.Errorf("sessions: %T keeps no refresh families", c.store)
	}
	return j.AddAppFamily(ctx, id, clientID, f)
}
