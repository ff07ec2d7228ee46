package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix namespaces every key Redis writes.
const DefaultPrefix = "idb:"

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// Prefix is prepended to every key and to the revocation channel, so
	// that several deployments (or tests) can share one Redis. Default
	// DefaultPrefix.
	Prefix string
}

// Redis keeps sessions, one-time values and rate-limit buckets in Redis, so
// that every broker node sees the same state.
//
// Keys, under the prefix:
//
//	ses:{id}                 hash, one session (with an "a:{client}" field per
//	                         application that got tokens in it and an
//	                         "r:{client}" field per revoked grant, whose
//	                         first moves "exp" to "xp": see fKeptExpiry),
//	                         expires with it
//	user:{tenant}:{user}     set of session IDs
//	tenant:{tenant}          set of session IDs
//	conn:{tenant}:{conn}     set of session IDs
//	once:{key}               Remember marker
//	take:{key}               Put/Take value
//	rl:{key}                 rate-limit bucket (GCRA theoretical arrival time)
//	n:{key}                  Incr count
//	fam:{id}                 refresh-token family
//	epoch                    epoch marker (see Rewindable)
//	revocations              pub/sub channel of JSON Revocations
//
// An index set expires with its longest-lived member; members that expired
// earlier are dropped when the set is next listed or revoked. Each
// revocation runs as one Lua script that deletes the sessions, updates the
// indexes and publishes the Revocation together, so no node can see a
// session revoked but not announced. Those scripts touch keys of several
// sessions, so Redis must be a single primary (standalone, Sentinel or a
// managed failover pair), not Cluster. Revoking a tenant runs in one script
// too: with tens of thousands of live sessions it holds Redis for
// milliseconds, which is the price of never half-revoking a tenant.
type Redis struct {
	c           redis.UniversalClient
	prefix      string
	channel     string
	readTimeout time.Duration // how long c waits for an answer (see lateAfter)
	*gate                     // Suspend and Vouch (see Rewindable); shared with OpenRedis's client
}

var (
	_ Store     = (*Redis)(nil)
	_ OnceCache = (*Redis)(nil)
	_ Limiter   = (*Redis)(nil)
)

// NewRedis returns a Redis store using c, which the caller keeps and closes.
func NewRedis(c redis.UniversalClient, opts RedisOptions) *Redis {
	p := opts.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	g := &gate{}
	if w, ok := c.(*watchedClient); ok {
		g = w.gate
	}
	return &Redis{c: c, prefix: p, channel: p + "revocations", readTimeout: readTimeoutOf(c), gate: g}
}

// watchedClient is the client OpenRedis returns: its new connections
// report the server they reach to the gate of the Redis store made with
// it (Vouch).
type watchedClient struct {
	*redis.Client
	gate *gate
}

// OpenRedis connects to a redis:// or rediss:// URL and checks that the
// server answers.
func OpenRedis(ctx context.Context, url string) (redis.UniversalClient, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("sessions: redis url: %w", err)
	}
	g := &gate{}
	opts.OnConnect = g.onConnect
	c := redis.NewClient(opts)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("sessions: redis ping %s: %w", opts.Addr, err)
	}
	return &watchedClient{Client: c, gate: g}, nil
}

// Ping reports whether Redis answers, for /readyz.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("sessions: redis ping: %w", err)
	}
	return nil
}

func (r *Redis) sesKey(id string) string            { return r.prefix + "ses:" + id }
func (r *Redis) userKey(tenant, user string) string { return r.prefix + "user:" + tenant + ":" + user }
func (r *Redis) tenantKey(tenant string) string     { return r.prefix + "tenant:" + tenant }
func (r *Redis) connKey(tenant, conn string) string { return r.prefix + "conn:" + tenant + ":" + conn }

// Session hash fields. The Lua scripts below know t, u and c.
const (
	fID       = "id"
	fTenant   = "t"
	fUser     = "u"
	fConn     = "c"
	fAuthTime = "at"
	fExpires  = "exp"
	fACR      = "acr"
	fAMR      = "amr"
	fExtra    = "x"
	fCreated  = "cr" // when the session began, unix ms (see RevokeBefore)
	fApp      = "a:" // prefix: one field per application, "a:{client_id}"
	fRevoked  = "r:" // prefix: "r:{client_id}", when that grant was revoked, unix ms
)

// fKeptExpiry, a session hash field, holds the session's expiry once a grant in it was
// revoked (RevokeClient), which sets fExpires to 0. Versions before
// grant revocation read fExpires alone: to a node of such a version,
// still serving during a rolling upgrade, the session has ended, as
// its own token revocation would have ended it. Otherwise it would
// know nothing of the revocation and vouch for the revoked tokens.
const fKeptExpiry = "xp"

// luaApplied counts one revocation applied: see luaRevoke.
const luaApplied = `
local function applied(prefix)
  redis.call('INCR', prefix .. 'applied')
end
`

// luaRevoke is shared by the revocation scripts: revoke deletes one
// session and removes it from its indexes, returning its hash (empty if it
// was already gone); publish announces the sessions a script ended;
// applied counts one revocation applied (Marker.Applied), in the script
// that applies it, so that no copy of the data holds the count without the
// revocation.
const luaRevoke = luaApplied + `
local function revoke(prefix, id)
  local h = redis.call('HGETALL', prefix .. 'ses:' .. id)
  if #h == 0 then return h end
  local f = {}
  for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
  redis.call('DEL', prefix .. 'ses:' .. id)
  redis.call('SREM', prefix .. 'user:' .. f.t .. ':' .. f.u, id)
  redis.call('SREM', prefix .. 'tenant:' .. f.t, id)
  if f.c and f.c ~= '' then redis.call('SREM', prefix .. 'conn:' .. f.t .. ':' .. f.c, id) end
  return h
end
local function publish(channel, ids, reason, tenant, user, conn)
  if #ids == 0 then return end
  local msg = {session_ids = ids, tenant_id = tenant, reason = reason}
  if user ~= '' then msg.user_id = user end
  if conn ~= '' then msg.connection_id = conn end
  redis.call('PUBLISH', channel, cjson.encode(msg))
end
`

// luaOrder remembers what a durable order ended (ForOrder): ended
// returns the sessions an order's earlier run ended, if any; remember
// keeps them for the script's answer to the next run, each only as much
// as the record of its end needs (Session.brief): a deleted tenant's order
// may end a hundred thousand sessions. The memory key is the scripts'
// last key, present only for an order.
const luaOrder = `
local function ended()
  if #KEYS < 2 then return nil end
  local m = redis.call('GET', KEYS[#KEYS])
  if not m then return nil end
  return cjson.decode(m)
end
local function remember(out, ttl)
  if #KEYS < 2 then return end
  local kept = {}
  for i, h in ipairs(out) do
    local b = {}
    for j = 1, #h, 2 do
      local k = h[j]
      if k == 'id' or k == 't' or k == 'u' or k == 'c' or k == 'at' or k == 'exp' or k == '` + fKeptExpiry + `' or string.sub(k, 1, 2) == '` + fApp + `' then
        b[#b + 1] = k
        b[#b + 1] = h[j + 1]
      end
    end
    kept[i] = b
  end
  redis.call('SET', KEYS[#KEYS], cjson.encode(kept), 'EX', ttl)
end
`

// revokeOneScript revokes one session, publishes it and returns it (an
// empty list if it was gone).
// KEYS: ses, [order memory]. ARGV: prefix, channel, id, memory ttl.
var revokeOneScript = redis.NewScript(luaRevoke + luaOrder + `
applied(ARGV[1])
local done = ended()
if done then return done end
local h = revoke(ARGV[1], ARGV[3])
if #h == 0 then
  remember({}, ARGV[4])
  return {}
end
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
redis.call('PUBLISH', ARGV[2], cjson.encode({session_ids = {ARGV[3]}, tenant_id = f.t, user_id = f.u, reason = 'session'}))
remember({h}, ARGV[4])
return {h}
`)

// addAppScript records an application in a live session's hash.
// KEYS: ses. ARGV: field.
var addAppScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], '1')
return 1
`)

// revokeClientScript records the revocation of one application's grant
// in a live session, keeping the latest time, moves the session's expiry
// out of the older versions' sight (fKeptExpiry), and announces it in the
// same step, so that no node keeps a cached copy without it.
// KEYS: ses. ARGV: channel, field, unix ms, id, client, prefix.
var revokeClientScript = redis.NewScript(luaApplied + `
applied(ARGV[6])
local t = redis.call('HGET', KEYS[1], 't')
if not t then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
if tonumber(ARGV[3]) > cur then redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) end
if redis.call('HEXISTS', KEYS[1], '` + fKeptExpiry + `') == 0 then
  redis.call('HSET', KEYS[1], '` + fKeptExpiry + `', redis.call('HGET', KEYS[1], '` + fExpires + `') or '0', '` + fExpires + `', '0')
end
redis.call('PUBLISH', ARGV[1], cjson.encode({session_ids = {ARGV[4]}, tenant_id = t, client_id = ARGV[5], reason = 'client'}))
return 1
`)

// revokeSetScript revokes every session in an index set, deletes the set
// and publishes one Revocation for all of them.
// KEYS: index set, [order memory]. ARGV: prefix, channel, reason, tenant,
// user, connection, memory ttl.
var revokeSetScript = redis.NewScript(luaRevoke + luaOrder + `
applied(ARGV[1])
local done = ended()
if done then return done end
local out, ids = {}, {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = revoke(ARGV[1], id)
  if #h > 0 then
    out[#out + 1] = h
    ids[#ids + 1] = id
  end
end
redis.call('DEL', KEYS[1])
publish(ARGV[2], ids, ARGV[3], ARGV[4], ARGV[5], ARGV[6])
remember(out, ARGV[7])
return out
`)

// listScript returns the sessions in an index set, dropping members whose
// session has expired.
// KEYS: index set. ARGV: prefix.
var listScript = redis.NewScript(`
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = redis.call('HGETALL', ARGV[1] .. 'ses:' .. id)
  if #h == 0 then redis.call('SREM', KEYS[1], id) else out[#out + 1] = h end
end
return out
`)

// gcraScript is Memory.Allow in Lua, on the Redis clock so that nodes with
// skewed clocks share one bucket fairly. Times are in microseconds.
// KEYS: bucket. ARGV: interval, window. Returns {allowed, remaining, retry}.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nxt = tat + interval
if nxt - window > now then return {0, 0, nxt - window - now} end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.ceil((nxt - now) / 1000))
return {1, math.floor((window - (nxt - now)) / interval), 0}
`)

// Create implements Store.
func (r *Redis) Create(ctx context.Context, s Session) error {
	return r.create(ctx, s, nil)
}

// create is Create, and CreatePut when put is set: one script either way.
func (r *Redis) create(ctx context.Context, s Session, put *oncePut) error {
	now := time.Now()
	if err := s.validate(now); err != nil {
		return fmt.Errorf("sessions: create: %w", err)
	}
	ttl := s.ExpiresAt.Sub(now)
	ttlMS := (ttl + time.Millisecond - 1).Milliseconds()
	keys := []string{r.sesKey(s.ID), r.userKey(s.TenantID, s.UserID), r.tenantKey(s.TenantID)}
	if s.ConnectionID != "" {
		keys = append(keys, r.connKey(s.TenantID, s.ConnectionID))
	}
	indexes := len(keys) - 1
	var value any = ""
	var valueTTL int64
	if put != nil {
		keys = append(keys, put.key)
		value, valueTTL = put.value, max(1, (put.ttl+time.Millisecond-1).Milliseconds())
	}
	args := []any{ttlMS, s.ID, indexes, value, valueTTL,
		fID, s.ID, fTenant, s.TenantID, fUser, s.UserID, fConn, s.ConnectionID,
		fAuthTime, strconv.FormatInt(unixNano(s.AuthTime), 10),
		fExpires, strconv.FormatInt(s.ExpiresAt.UnixNano(), 10),
		fCreated, strconv.FormatInt(now.UnixMilli(), 10),
	}
	if s.ACR != "" {
		args = append(args, fACR, s.ACR)
	}
	if len(s.AMR) > 0 {
		b, _ := json.Marshal(s.AMR) // a []string always marshals
		args = append(args, fAMR, b)
	}
	if len(s.Extra) > 0 {
		b, _ := json.Marshal(s.Extra)
		args = append(args, fExtra, b)
	}
	created, err := createPutScript.Run(ctx, r.c, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("sessions: redis create %s: %w", s.ID, err)
	}
	if created == 0 {
		return fmt.Errorf("sessions: create %s: %w", s.ID, ErrExists)
	}
	return nil
}

// unixNano keeps the zero time zero across the round trip.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, id string) (Session, error) {
	if err := r.check(); err != nil {
		return Session{}, err
	}
	h, err := r.c.HGetAll(ctx, r.sesKey(id)).Result()
	if err := r.check(); err != nil {
		// Suspended meanwhile: the answer may have come over a new
		// connection to another server (see Vouch).
		return Session{}, err
	}
	if err != nil {
		return Session{}, fmt.Errorf("sessions: redis get %s: %w", id, err)
	}
	if len(h) == 0 {
		return Session{}, ErrNotFound
	}
	s, err := decodeSession(h)
	if err != nil {
		return Session{}, fmt.Errorf("sessions: redis get %s: %w", id, err)
	}
	// Redis expires keys to the millisecond; the session knows better.
	if !time.Now().Before(s.ExpiresAt) {
		return Session{}, ErrNotFound
	}
	return s, nil
}

func decodeSession(h map[string]string) (Session, error) {
	s := Session{
		ID:           h[fID],
		TenantID:     h[fTenant],
		UserID:       h[fUser],
		ConnectionID: h[fConn],
		ACR:          h[fACR],
	}
	at, err1 := strconv.ParseInt(h[fAuthTime], 10, 64)
	expField := h[fExpires]
	if v, ok := h[fKeptExpiry]; ok {
		expField = v
	}
	exp, err2 := strconv.ParseInt(expField, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Session{}, fmt.Errorf("corrupt session hash: %w", err)
	}
	if at != 0 {
		s.AuthTime = time.Unix(0, at)
	}
	s.ExpiresAt = time.Unix(0, exp)
	for k, v := range h {
		if app, ok := strings.CutPrefix(k, fApp); ok {
			s.Apps = append(s.Apps, app)
		} else if app, ok := strings.CutPrefix(k, fRevoked); ok {
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Session{}, fmt.Errorf("corrupt session revocation: %w", err)
			}
			if s.Revoked == nil {
				s.Revoked = make(map[string]time.Time, 1)
			}
			s.Revoked[app] = time.UnixMilli(ms)
		}
	}
	if v := h[fAMR]; v != "" {
		if err := json.Unmarshal([]byte(v), &s.AMR); err != nil {
			return Session{}, fmt.Errorf("corrupt session amr: %w", err)
		}
	}
	if v := h[fExtra]; v != "" {
		if err := json.Unmarshal([]byte(v), &s.Extra); err != nil {
			return Session{}, fmt.Errorf("corrupt session extra: %w", err)
		}
	}
	return s, nil
}

// decodeSessions turns the list of HGETALL replies a script returns into
// live sessions.
func decodeSessions(v any) ([]Session, error) {
	rows, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected script reply %T", v)
	}
	now := time.Now()
	out := make([]Session, 0, len(rows))
	for _, row := range rows {
		kv, ok := row.([]any)
		if !ok || len(kv)%2 != 0 {
			return nil, fmt.Errorf("unexpected script row %T", row)
		}
		h := make(map[string]string, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, _ := kv[i].(string)
			v, _ := kv[i+1].(string)
			h[k] = v
		}
		s, err := decodeSession(h)
		if err != nil {
			return nil, err
		}
		if now.Before(s.ExpiresAt) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Revoke implements Store.
func (r *Redis) Revoke(ctx context.Context, id string) error {
	_, err := r.RevokeSession(ctx, id)
	return err
}

// RevokeSession implements Store.
func (r *Redis) RevokeSession(ctx context.Context, id string) ([]Session, error) {
	v, err := revokeOneScript.Run(ctx, r.c, r.orderKeys(ctx, r.sesKey(id)), r.prefix, r.channel, id, orderTTL).Result()
	if err == nil {
		var out []Session
		if out, err = decodeSessions(v); err == nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("sessions: redis revoke %s: %w", id, err)
}

// RevokeClient implements Store with one script: a field of the
// session's hash, so it goes when the session does.
func (r *Redis) RevokeClient(ctx context.Context, id, clientID string, at time.Time) error {
	if id == "" || clientID == "" {
		return fmt.Errorf("sessions: revoke client: %w: needs a session and a client", ErrInvalid)
	}
	err := revokeClientScript.Run(ctx, r.c, []string{r.sesKey(id)}, r.channel, fRevoked+clientID, at.UnixMilli(), id, clientID, r.prefix).Err()
	if err != nil {
		return fmt.Errorf("sessions: redis revoke client %s in %s: %w", clientID, id, err)
	}
	return nil
}

// AddApp implements Store: the application is a field of the session's
// hash, so it goes when the session does.
func (r *Redis) AddApp(ctx context.Context, id, clientID string) error {
	n, err := addAppScript.Run(ctx, r.c, []string{r.sesKey(id)}, fApp+clientID).Int()
	if err != nil {
		return fmt.Errorf("sessions: redis add app to %s: %w", id, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// RevokeUser implements Store.
func (r *Redis) RevokeUser(ctx context.Context, tenantID, userID string) ([]Session, error) {
	out, err := r.revokeSet(ctx, r.userKey(tenantID, userID), ReasonUser, tenantID, userID, "")
	if err != nil {
		return nil, fmt.Errorf("sessions: redis revoke user %s/%s: %w", tenantID, userID, err)
	}
	return out, nil
}

// RevokeTenant implements Store.
func (r *Redis) RevokeTenant(ctx context.Context, tenantID string) ([]Session, error) {
	out, err := r.revokeSet(ctx, r.tenantKey(tenantID), ReasonTenant, tenantID, "", "")
	if err != nil {
		return nil, fmt.Errorf("sessions: redis revoke tenant %s: %w", tenantID, err)
	}
	return out, nil
}

// RevokeConnection implements Store.
func (r *Redis) RevokeConnection(ctx context.Context, tenantID, connectionID string) ([]Session, error) {
	out, err := r.revokeSet(ctx, r.connKey(tenantID, connectionID), ReasonConnection, tenantID, "", connectionID)
	if err != nil {
		return nil, fmt.Errorf("sessions: redis revoke connection %s/%s: %w", tenantID, connectionID, err)
	}
	return out, nil
}

// orderKeys is a revocation script's keys: key, and the memory of the
// order ctx carries out, if any (ForOrder).
func (r *Redis) orderKeys(ctx context.Context, key string) []string {
	if order := orderOf(ctx); order != "" {
		return []string{key, r.prefix + "order:" + order}
	}
	return []string{key}
}

// orderTTL is OrderMemory in the scripts' seconds.
var orderTTL = int64(OrderMemory / time.Second)

func (r *Redis) revokeSet(ctx context.Context, key, reason, tenant, user, conn string) ([]Session, error) {
	v, err := revokeSetScript.Run(ctx, r.c, r.orderKeys(ctx, key), r.prefix, r.channel, reason, tenant, user, conn, orderTTL).Result()
	if err != nil {
		return nil, err
	}
	return decodeSessions(v)
}

// ListUser implements Store.
func (r *Redis) ListUser(ctx context.Context, tenantID, userID string) ([]Session, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	v, err := listScript.Run(ctx, r.c, []string{r.userKey(tenantID, userID)}, r.prefix).Result()
	if err := r.check(); err != nil {
		return nil, err
	}
	if err == nil {
		var out []Session
		if out, err = decodeSessions(v); err == nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("sessions: redis list user %s/%s: %w", tenantID, userID, err)
}

// Remember implements OnceCache with SET NX.
func (r *Redis) Remember(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := checkTTL(key, ttl); err != nil {
		return false, fmt.Errorf("sessions: remember: %w", err)
	}
	err := r.c.SetArgs(ctx, r.prefix+"once:"+key, "1", redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil): // NX refused: seen before
		return false, nil
	default:
		return false, fmt.Errorf("sessions: redis remember: %w", err)
	}
}

// Put implements OnceCache.
func (r *Redis) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(key, ttl); err != nil {
		return fmt.Errorf("sessions: put: %w", err)
	}
	if err := r.c.Set(ctx, r.onceKey(key), value, ttl).Err(); err != nil {
		return fmt.Errorf("sessions: redis put: %w", err)
	}
	return nil
}

// Take implements OnceCache with GETDEL, which is atomic.
func (r *Redis) Take(ctx context.Context, key string) ([]byte, error) {
	return onceRead("take", r.c.GetDel(ctx, r.onceKey(key)))
}

// onceKey is where Put keeps the value of key.
func (r *Redis) onceKey(key string) string { return r.prefix + "take:" + key }

// onceRead is the answer of a read (op) of a OnceCache key: a missing or
// expired key is ErrNotFound.
func onceRead(op string, cmd *redis.StringCmd) ([]byte, error) {
	v, err := cmd.Bytes()
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, redis.Nil):
		return nil, ErrNotFound
	default:
		return nil, fmt.Errorf("sessions: redis %s: %w", op, err)
	}
}

// Allow implements Limiter.
func (r *Redis) Allow(ctx context.Context, key string, limit int, window time.Duration) (Decision, error) {
	interval, err := gcraInterval(key, limit, window)
	if err != nil {
		return Decision{}, fmt.Errorf("sessions: allow: %w", err)
	}
	res, err := gcraScript.Run(ctx, r.c, []string{r.prefix + "rl:" + key},
		interval.Microseconds(), window.Microseconds()).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("sessions: redis allow: %w", err)
	}
	if len(res) != 3 {
		return Decision{}, fmt.Errorf("sessions: redis allow: unexpected reply %v", res)
	}
	return Decision{
		Allowed:    res[0] == 1,
		Limit:      limit,
		Remaining:  int(res[1]),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
	}, nil
}

// Subscription health: a silent connection is pinged after healthInterval
// and given up for dead if the pong does not arrive within another.
const (
	healthInterval = 15 * time.Second
	maxBackoff     = 5 * time.Second
)

// Subscribe implements Store with Redis pub/sub. Pub/sub delivers at most
// once, so after a broken connection fn receives a ReasonResync revocation
// (when it breaks, and again once resubscribed) telling caches to drop
// everything.
func (r *Redis) Subscribe(ctx context.Context, fn func(Revocation)) error {
	ps, err := r.subscribe(ctx)
	if err != nil {
		return fmt.Errorf("sessions: redis subscribe: %w", err)
	}
	sub := newSubscriber(fn)
	go sub.run(ctx)
	go r.listen(ctx, ps, sub)
	return nil
}

// subscribe opens a subscription and waits for Redis to confirm it.
func (r *Redis) subscribe(ctx context.Context) (*redis.PubSub, error) {
	ps := r.c.Subscribe(ctx, r.channel)
	if _, err := ps.ReceiveTimeout(ctx, maxBackoff); err != nil {
		ps.Close()
		return nil, err
	}
	return ps, nil
}

// listen receives revocations until ctx is done, resubscribing with backoff
// whenever the connection breaks.
func (r *Redis) listen(ctx context.Context, ps *redis.PubSub, sub *subscriber) {
	for {
		r.receive(ctx, ps, sub)
		ps.Close()
		if ctx.Err() != nil {
			return
		}
		sub.push(Revocation{Reason: ReasonResync, Down: true})
		backoff := 50 * time.Millisecond
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			var err error
			if ps, err = r.subscribe(ctx); err == nil {
				break
			}
			backoff = min(2*backoff, maxBackoff)
		}
		sub.push(Revocation{Reason: ReasonResync})
	}
}

// receive delivers messages from ps until it fails or ctx is done.
func (r *Redis) receive(ctx context.Context, ps *redis.PubSub, sub *subscriber) {
	// A blocked read does not watch ctx; closing the subscription ends it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, healthInterval)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged && ps.Ping(ctx) == nil {
				pinged = true
				continue
			}
			return
		}
		pinged = false
		if m, ok := msg.(*redis.Message); ok {
			var rev Revocation
			if json.Unmarshal([]byte(m.Payload), &rev) == nil &&
				(len(rev.SessionIDs) > 0 || rev.Reason == ReasonApplication && rev.ClientID != "") {
				sub.push(rev)
			}
		}
	}
}
