package sessions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Family is a refresh-token family: every refresh token descended from one
// authorization code. It holds only its current generation: the token
// presented must be of that generation (with its hash); a token of an
// earlier generation is a spent one presented again, which is reuse. So
// the store holds one record per live family, however often it rotates.
type Family struct {
	ID        string
	SessionID string // the broker session its tokens live in
	Gen       uint64 // generation of the current token
	Hash      string // hash of the current token (hex), never the token
	Grant     []byte // what the current token stands for, opaque here
	ExpiresAt time.Time
	// The previous generation's token, which an application may let
	// answer again for a short window after it was spent (two tabs
	// refreshing at once): its hash, the current token sealed by the
	// broker (opaque here), and the end of the window. Set by the
	// rotation that spends it, dropped by the next one; Rotate itself
	// still treats that token as reuse.
	PrevHash   string
	PrevSealed []byte
	PrevUntil  time.Time
	// AllowPrevious is Rotate's input only (never stored): the previous
	// generation's token, presented within PrevUntil, answers Previous
	// instead of counting as reuse. The broker sets it for an
	// application that opted into a reuse interval, so that of two
	// concurrent refreshes of one token the loser is not reuse.
	AllowPrevious bool
}

// Rotation is the outcome of Families.Rotate.
type Rotation int

const (
	// Rotated: the presented token was current; the family moved on.
	Rotated Rotation = iota + 1
	// Reused: an earlier generation was presented, or a token the record
	// contradicts (a later generation, or the current one with another
	// hash: a record rewound by a restored Redis, whose spent token may
	// have been taken again since). The family and its session are gone,
	// in the same atomic step, so nothing minted from the family works
	// any more, whichever request minted it.
	Reused
	// Unknown: no such family (ended, expired, revoked). Nothing changed.
	Unknown
	// Previous: with next.AllowPrevious, the token presented is the
	// previous generation's, within its window (Family.PrevUntil).
	// Nothing changed; the family's record holds what to answer.
	Previous
)

// Families keeps refresh-token families, shared by all nodes. Rotate is
// atomic: of racing rotations of one token exactly one wins, and every
// other one is reuse.
type Families interface {
	// StartFamily stores f (generation f.Gen) until f.ExpiresAt.
	StartFamily(ctx context.Context, f Family) error
	// Family returns live family id, or ErrNotFound.
	Family(ctx context.Context, id string) (Family, error)
	// Rotate checks a token of generation gen with hash against family
	// id: if it is current, the family moves to gen+1 with next's Hash,
	// Grant and ExpiresAt (Rotated); if it is not (an older generation, a
	// later one, or the current one with another hash), the family and
	// its session are ended together (Reused, with the session ended, if
	// it was live); with no live family nothing changes (Unknown).
	//
	// Only a holder of one of its tokens knows a family's id, so a token
	// the record contradicts is either a spent one or proof that the
	// record went back in time, and then a spent token may have been
	// accepted since: ending the family cuts off whoever took it.
	Rotate(ctx context.Context, id string, gen uint64, hash string, next Family) (Rotation, []Session, error)
	// EndFamily deletes family id; ending an unknown family is not an error.
	EndFamily(ctx context.Context, id string) error
}

var (
	_ Families = (*Memory)(nil)
	_ Families = (*Redis)(nil)
)

func (f Family) validate(now time.Time) error {
	if f.ID == "" || f.SessionID == "" || f.Hash == "" {
		return fmt.Errorf("%w: a family needs an ID, a session and a hash", ErrInvalid)
	}
	if !f.ExpiresAt.After(now) {
		return fmt.Errorf("%w: family %s expires in the past", ErrInvalid, f.ID)
	}
	return nil
}

// StartFamily implements Families.
func (m *Memory) StartFamily(ctx context.Context, f Family) error {
	if err := f.validate(time.Now()); err != nil {
		return fmt.Errorf("sessions: start family: %w", err)
	}
	f.Grant = append([]byte(nil), f.Grant...)
	m.famMu.Lock()
	defer m.famMu.Unlock()
	m.sweepFamiliesLocked(time.Now())
	m.families[f.ID] = f
	return nil
}

// Family implements Families.
func (m *Memory) Family(ctx context.Context, id string) (Family, error) {
	if err := m.check(); err != nil {
		return Family{}, err
	}
	m.famMu.Lock()
	f, ok := m.families[id]
	m.famMu.Unlock()
	if !ok || !time.Now().Before(f.ExpiresAt) {
		return Family{}, ErrNotFound
	}
	f.Grant = append([]byte(nil), f.Grant...)
	if f.PrevSealed != nil {
		f.PrevSealed = append([]byte(nil), f.PrevSealed...)
	}
	return f, nil
}

// Rotate implements Families. The family lock is held across the session
// revocation so that no rotation can slip between reuse and its effect.
func (m *Memory) Rotate(ctx context.Context, id string, gen uint64, hash string, next Family) (Rotation, []Session, error) {
	if err := m.check(); err != nil {
		return 0, nil, err
	}
	now := time.Now()
	m.famMu.Lock()
	defer m.famMu.Unlock()
	f, ok := m.families[id]
	switch {
	case !ok || !now.Before(f.ExpiresAt):
		return Unknown, nil, nil
	case gen != f.Gen || hash != f.Hash:
		if next.AllowPrevious && gen+1 == f.Gen && f.PrevHash != "" && hash == f.PrevHash && now.Before(f.PrevUntil) {
			return Previous, nil, nil
		}
		delete(m.families, id)
		ended, err := m.RevokeSession(ctx, f.SessionID)
		return Reused, ended, err
	}
	f.Gen++
	f.Hash, f.ExpiresAt = next.Hash, next.ExpiresAt
	f.Grant = append([]byte(nil), next.Grant...)
	f.PrevHash, f.PrevSealed, f.PrevUntil = next.PrevHash, nil, next.PrevUntil
	if next.PrevSealed != nil {
		f.PrevSealed = append([]byte(nil), next.PrevSealed...)
	}
	m.families[id] = f
	return Rotated, nil, nil
}

// EndFamily implements Families.
func (m *Memory) EndFamily(ctx context.Context, id string) error {
	m.famMu.Lock()
	delete(m.families, id)
	m.famMu.Unlock()
	return nil
}

// sweepFamiliesLocked drops expired families, at most once per
// sweepInterval.
func (m *Memory) sweepFamiliesLocked(now time.Time) {
	if now.Before(m.nextFamSweep) {
		return
	}
	m.nextFamSweep = now.Add(sweepInterval)
	for id, f := range m.families {
		if !now.Before(f.ExpiresAt) {
			delete(m.families, id)
		}
	}
}

func (r *Redis) famKey(id string) string { return r.prefix + "fam:" + id }

// rotateScript is Families.Rotate in one step.
// KEYS: fam. ARGV: prefix, channel, gen, hash, new hash, new grant, new
// expiry (unix ns), ttl ms, late (see lateAfter), previous hash, sealed
// and window end (unix ns; "" for none), allow previous ("1" or ""), now
// (unix ns).
// Returns {1} rotated, {2, session hash or {}} reused, {3} unknown, {4}
// late (nothing done), {5} previous (nothing done).
var rotateScript = redis.NewScript(luaRevoke + luaLate + `
if late(ARGV[9]) then return {4} end
local f = redis.call('HMGET', KEYS[1], 'g', 'h', 's')
if not f[1] then return {3} end
local cur, gen = tonumber(f[1]), tonumber(ARGV[3])
if gen ~= cur or f[2] ~= ARGV[4] then
  if ARGV[13] == '1' and gen + 1 == cur then
    local p = redis.call('HMGET', KEYS[1], 'ph', 'pu')
    if p[1] and p[1] ~= '' and p[1] == ARGV[4] and tonumber(p[2]) > tonumber(ARGV[14]) then return {5} end
  end
  applied(ARGV[1])
  redis.call('DEL', KEYS[1])
  local h = revoke(ARGV[1], f[3])
  if #h > 0 then
    local s = {}
    for i = 1, #h, 2 do s[h[i]] = h[i + 1] end
    redis.call('PUBLISH', ARGV[2], cjson.encode({session_ids = {f[3]}, tenant_id = s.t, user_id = s.u, reason = 'session'}))
  end
  return {2, h}
end
redis.call('HSET', KEYS[1], 'g', cur + 1, 'h', ARGV[5], 'd', ARGV[6], 'e', ARGV[7])
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[1], 'ph', ARGV[10], 'ps', ARGV[11], 'pu', ARGV[12])
else
  redis.call('HDEL', KEYS[1], 'ph', 'ps', 'pu')
end
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return {1}
`)

func ttlMS(until time.Time) int64 {
	return max(1, (time.Until(until) + time.Millisecond - 1).Milliseconds())
}

// StartFamily implements Families: one hash per family, expiring with it.
func (r *Redis) StartFamily(ctx context.Context, f Family) error {
	if err := f.validate(time.Now()); err != nil {
		return fmt.Errorf("sessions: start family: %w", err)
	}
	key := r.famKey(f.ID)
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "g", f.Gen, "h", f.Hash, "s", f.SessionID, "d", f.Grant, "e", f.ExpiresAt.UnixNano())
		p.PExpire(ctx, key, time.Duration(ttlMS(f.ExpiresAt))*time.Millisecond)
		return nil
	})
	if err != nil {
		return fmt.Errorf("sessions: redis start family: %w", err)
	}
	return nil
}

// Family implements Families.
func (r *Redis) Family(ctx context.Context, id string) (Family, error) {
	if err := r.check(); err != nil {
		return Family{}, err
	}
	h, err := r.c.HGetAll(ctx, r.famKey(id)).Result()
	if err := r.check(); err != nil {
		return Family{}, err // suspended meanwhile, as in Get
	}
	if err != nil {
		return Family{}, fmt.Errorf("sessions: redis family: %w", err)
	}
	if len(h) == 0 {
		return Family{}, ErrNotFound
	}
	gen, err1 := strconv.ParseUint(h["g"], 10, 64)
	exp, err2 := strconv.ParseInt(h["e"], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Family{}, fmt.Errorf("sessions: redis family %s: corrupt record: %w", id, err)
	}
	f := Family{ID: id, SessionID: h["s"], Gen: gen, Hash: h["h"], Grant: []byte(h["d"]), ExpiresAt: time.Unix(0, exp)}
	if pu, ok := h["pu"]; ok {
		until, err := strconv.ParseInt(pu, 10, 64)
		if err != nil {
			return Family{}, fmt.Errorf("sessions: redis family %s: corrupt record: %w", id, err)
		}
		f.PrevHash, f.PrevSealed, f.PrevUntil = h["ph"], []byte(h["ps"]), time.Unix(0, until)
	}
	if !time.Now().Before(f.ExpiresAt) {
		return Family{}, ErrNotFound
	}
	return f, nil
}

// Rotate implements Families with one Lua script, so that reuse ends the
// family and its session in the same step that detects it.
func (r *Redis) Rotate(ctx context.Context, id string, gen uint64, hash string, next Family) (Rotation, []Session, error) {
	if err := r.check(); err != nil {
		return 0, nil, err
	}
	var prevUntil, allow string
	if next.AllowPrevious {
		allow = "1"
	}
	if !next.PrevUntil.IsZero() {
		prevUntil = strconv.FormatInt(next.PrevUntil.UnixNano(), 10)
	}
	v, err := rotateScript.Run(ctx, r.c, []string{r.famKey(id)}, r.prefix, r.channel,
		gen, hash, next.Hash, next.Grant, next.ExpiresAt.UnixNano(), ttlMS(next.ExpiresAt), r.lateAfter(ctx),
		next.PrevHash, next.PrevSealed, prevUntil, allow, time.Now().UnixNano()).Slice()
	if err != nil {
		return 0, nil, fmt.Errorf("sessions: redis rotate family: %w", err)
	}
	code, _ := v[0].(int64)
	switch code {
	case 1:
		return Rotated, nil, nil
	case 2:
		ended, err := decodeSessions([]any{v[1]})
		if h, _ := v[1].([]any); len(h) == 0 {
			ended, err = nil, nil
		}
		return Reused, ended, err
	case 4:
		return 0, nil, fmt.Errorf("sessions: redis rotate family: %w", ErrLate)
	case 5:
		return Previous, nil, nil
	}
	return Unknown, nil, nil
}

// EndFamily implements Families.
func (r *Redis) EndFamily(ctx context.Context, id string) error {
	if err := r.c.Del(ctx, r.famKey(id)).Err(); err != nil {
		return fmt.Errorf("sessions: redis end family: %w", err)
	}
	return nil
}
