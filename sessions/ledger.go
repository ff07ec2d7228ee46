package sessions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Ledger keeps tombstones — short records of credentials revoked and
// accounts switched off — where a restore of the database does not reach.
//
// The database is the only place an operator API key's revocation, a
// directory token's or client secret's rotation, a disabled operator, a
// paused tenant or a deprovisioned user is written. Restored from a backup
// taken before such a change, it brings the key, the token, the account
// back to life, and nothing in the database itself can tell. Redis is not
// restored with the database (its data is the newer; the runbook says to
// keep it), so the store writes a tombstone into Redis before it commits
// each such change and, when a node starts (and on `idbroker
// restore-check`), applies again every tombstone the database does not
// reflect. The content is the store's (package store encodes and
// interprets it); the ledger only keeps it.
//
// Tombstones have no expiry of their own: a backup may be restored months
// after it was taken, and a revoked key must stay revoked whatever its
// age. Each is a few hundred bytes, one per revocation (an undone change —
// a user reactivated, a tenant resumed — deletes its own). The store
// forgets those older than the operator's tombstone horizon (tied to the
// backup retention: no older backup is restored) with Forget, which
// remembers the highest number forgotten, so that a database restored
// from a backup older than that can be told.
type Ledger interface {
	// Put writes the tombstone key, replacing one of the same key, and
	// numbers it after every tombstone written before.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes the tombstone key; a missing one is no error.
	Delete(ctx context.Context, key string) error
	// Since returns the tombstones numbered after seq (0: all of them)
	// and the number of the last one written: the next call passes it
	// to read only what is newer.
	Since(ctx context.Context, seq int64) (map[string][]byte, int64, error)
}

// Ledger keys, under the prefix: the tombstones by key (a hash), their
// numbers (a sorted set scored by number) and the last number given.
const (
	ledgerKey    = "tombstones"
	ledgerSeqKey = "tombstones:seq"
	ledgerNumKey = "tombstones:num"
	// ledgerGoneKey is the highest number Forget removed.
	ledgerGoneKey = "tombstones:forgotten"
)

// RedisLedger is a Ledger in Redis, beside the sessions: three keys
// without expiry, which no eviction policy but allkeys-* removes.
type RedisLedger struct {
	c                        redis.UniversalClient
	key, seqKey, byNum, gone string
}

// NewRedisLedger returns the ledger in c under prefix ("" is
// DefaultPrefix), the same Redis as the sessions'.
func NewRedisLedger(c redis.UniversalClient, prefix string) *RedisLedger {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &RedisLedger{c: c, key: prefix + ledgerKey, seqKey: prefix + ledgerSeqKey, byNum: prefix + ledgerNumKey, gone: prefix + ledgerGoneKey}
}

// OpenRedisLedger connects to a redis:// or rediss:// URL for a ledger,
// without waiting for the server: a command that revokes a key must
// revoke it even when Redis is away (Put then fails, and says so).
// Close releases the connection.
func OpenRedisLedger(url string) (*RedisLedger, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("sessions: redis url: %w", err)
	}
	return NewRedisLedger(redis.NewClient(opts), ""), nil
}

// putScript writes a tombstone and its number in one step, so that no
// copy of the data holds one without the other.
// KEYS: tombstones, seq, num. ARGV: key, value.
var putScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], n, ARGV[1])
return n
`)

// deleteScript removes a tombstone and its number.
// KEYS: tombstones, num. ARGV: key.
var deleteScript = redis.NewScript(`
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)

// Put implements Ledger.
func (l *RedisLedger) Put(ctx context.Context, key string, value []byte) error {
	if err := putScript.Run(ctx, l.c, []string{l.key, l.seqKey, l.byNum}, key, value).Err(); err != nil {
		return fmt.Errorf("sessions: write tombstone: %w", err)
	}
	return nil
}

// Delete implements Ledger.
func (l *RedisLedger) Delete(ctx context.Context, key string) error {
	if err := deleteScript.Run(ctx, l.c, []string{l.key, l.byNum}, key).Err(); err != nil {
		return fmt.Errorf("sessions: delete tombstone: %w", err)
	}
	return nil
}

// forgetScript removes tombstones and raises the forgotten mark to the
// highest of their numbers, in one step.
// KEYS: tombstones, num, forgotten. ARGV: keys.
var forgetScript = redis.NewScript(`
local m = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
for _, k in ipairs(ARGV) do
  local s = redis.call('ZSCORE', KEYS[2], k)
  if s and tonumber(s) > m then m = tonumber(s) end
  redis.call('HDEL', KEYS[1], k)
  redis.call('ZREM', KEYS[2], k)
end
redis.call('SET', KEYS[3], m)
return m
`)

// Forget deletes the tombstones keys, past the horizon, and remembers the
// highest number among them (Forgotten).
func (l *RedisLedger) Forget(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 500)]
		keys = keys[len(batch):]
		args := make([]any, len(batch))
		for i, k := range batch {
			args[i] = k
		}
		if err := forgetScript.Run(ctx, l.c, []string{l.key, l.byNum, l.gone}, args...).Err(); err != nil {
			return fmt.Errorf("sessions: forget tombstones: %w", err)
		}
	}
	return nil
}

// Forgotten is the highest number Forget removed (0: none).
func (l *RedisLedger) Forgotten(ctx context.Context) (int64, error) {
	n, err := l.c.Get(ctx, l.gone).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("sessions: read the tombstones forgotten: %w", err)
	}
	return n, nil
}

// Since implements Ledger.
func (l *RedisLedger) Since(ctx context.Context, seq int64) (map[string][]byte, int64, error) {
	// The last number first: a tombstone written in between is read
	// now and again next time, never missed.
	last, err := l.c.Get(ctx, l.seqKey).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, fmt.Errorf("sessions: read the tombstones' number: %w", err)
	}
	keys, err := l.c.ZRangeByScore(ctx, l.byNum, &redis.ZRangeBy{Min: "(" + strconv.FormatInt(seq, 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("sessions: read tombstones: %w", err)
	}
	out := make(map[string][]byte, len(keys))
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		keys = keys[len(batch):]
		vals, err := l.c.HMGet(ctx, l.key, batch...).Result()
		if err != nil {
			return nil, 0, fmt.Errorf("sessions: read tombstones: %w", err)
		}
		for i, v := range vals {
			if s, ok := v.(string); ok {
				out[batch[i]] = []byte(s)
			}
		}
	}
	return out, last, nil
}

// Close closes the client, for a ledger from OpenRedisLedger.
func (l *RedisLedger) Close() error { return l.c.Close() }

// MemoryLedger is a Ledger in process, for tests: a deployment without
// Redis has nowhere a database restore does not reach (see the
// operations guide, "Restoring from a backup").
type MemoryLedger struct {
	mu         sync.Mutex
	last, gone int64
	m          map[string][]byte
	num        map[string]int64
}

// NewMemoryLedger returns an empty MemoryLedger.
func NewMemoryLedger() *MemoryLedger {
	return &MemoryLedger{m: map[string][]byte{}, num: map[string]int64{}}
}

// Put implements Ledger.
func (l *MemoryLedger) Put(_ context.Context, key string, value []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last++
	l.m[key], l.num[key] = append([]byte(nil), value...), l.last
	return nil
}

// Delete implements Ledger.
func (l *MemoryLedger) Delete(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
	delete(l.num, key)
	return nil
}

// Since implements Ledger.
func (l *MemoryLedger) Since(_ context.Context, seq int64) (map[string][]byte, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range l.m {
		if l.num[k] > seq {
			out[k] = append([]byte(nil), v...)
		}
	}
	return out, l.last, nil
}

// Forget implements the Forget of RedisLedger.
func (l *MemoryLedger) Forget(_ context.Context, keys []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if n, ok := l.num[k]; ok && n > l.gone {
			l.gone = n
		}
		delete(l.m, k)
		delete(l.num, k)
	}
	return nil
}

// Forgotten implements the Forgotten of RedisLedger.
func (l *MemoryLedger) Forgotten(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gone, nil
}
