package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// The audit chains are keyed (migrations 0109 and 0110). A plain SHA-256
// chain only re-hashes to itself: whoever can write the database can
// change a row and re-compute every hash after it. So each row also has a
// mac, an HMAC-SHA256 of its hash under an audit key that the database
// holds only sealed under the master key, which is never in the database:
// the same writer can re-compute the hashes but no mac, and since a row's
// hash covers every row before it, each later mac then fails. The hashes
// stay the SHA-256 chain every build computes, so that a build from before
// the keys (which writes no mac) and a newer one can share a chain during a
// rolling upgrade; the rows it writes are vouched for by the next mac.
//
// Migration 0109 alone keyed the hash itself (HMAC-SHA256 over what the
// SHA-256 covers); its rows have a key_version and no mac, and are still
// checked that way. That is transitional: no build writes such rows now.
//
// A key is a random 256-bit value, made once by the first broker that
// appends a row and sealed like any other secret: a master key rotation
// re-wraps it (`idbroker keys rewrap`) and every row hashed with it stays
// verifiable. Rows name the version of the key of their mac in
// key_version; 0 for a row without one. The key's creation time is bound
// into its seal (Since): no operator row without hashes is newer.

// ErrAuditKey is a row that names an audit key the database does not have,
// or a key that does not open under the master key (replaced, or another
// database's).
var ErrAuditKey = errors.New("store: audit key not available")

// AuditKeys checks audit rows: their hashes (Hash) and macs (MACOK), each
// mac under the key of its version.
type AuditKeys struct {
	keys map[int][]byte
	// since is when the first key was made: no operator row without
	// hashes is newer.
	since time.Time
}

// Since is when the chains were first keyed (zero when they are not yet):
// every row written since has a key version.
func (k *AuditKeys) Since() time.Time { return k.since }

// Hash re-computes the chain link of e: AuditHash, except for a row that
// migration 0109 keyed (a key version and no mac), whose hash is the
// HMAC-SHA256 under that key.
func (k *AuditKeys) Hash(e AuditEvent) (string, error) {
	if !Keyed0109(e) {
		return AuditHash(e)
	}
	key, err := k.key(e.KeyVersion)
	if err != nil {
		return "", err
	}
	return auditMAC(key, e)
}

// Keyed0109 reports whether e was written under migration 0109 alone: its
// hash, not a mac, is keyed. Such a row vouches for the chain up to it as
// a mac does.
func Keyed0109(e AuditEvent) bool { return e.KeyVersion > 0 && e.MAC == "" }

// MACOK reports whether e's mac is the HMAC-SHA256 of its hash under the
// key its KeyVersion names; an error is a key the database does not have.
// A row without a mac is for the caller to judge (see audit.Verify).
func (k *AuditKeys) MACOK(e AuditEvent) (bool, error) {
	key, err := k.key(e.KeyVersion)
	if err != nil {
		return false, err
	}
	want, err := hex.DecodeString(e.MAC)
	if err != nil {
		return false, nil
	}
	return hmac.Equal(want, hashMAC(key, e.Hash)), nil
}

func (k *AuditKeys) key(version int) ([]byte, error) {
	key, ok := k.keys[version]
	if !ok {
		return nil, fmt.Errorf("%w: no audit key version %d", ErrAuditKey, version)
	}
	return key, nil
}

// sealAudit sets e's hash (the SHA-256 chain link over e.PrevHash) and its
// mac under key, which is audit key version.
func sealAudit(e *AuditEvent, version int, key []byte) error {
	h, err := AuditHash(*e)
	if err != nil {
		return err
	}
	e.Hash, e.KeyVersion = h, version
	e.MAC = hex.EncodeToString(hashMAC(key, h))
	return nil
}

// hashMAC is the mac of a row whose hash is hash.
func hashMAC(key []byte, hash string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(hash))
	return m.Sum(nil)
}

// OperatorHash is Hash of a row of the operators' trail.
func (k *AuditKeys) OperatorHash(e OperatorAuditEvent) (string, error) { return k.Hash(e.asAudit()) }

// auditMAC is the chain link migration 0109 wrote: HMAC-SHA256 under key
// over what AuditHash hashes, hex-encoded. Only checked now (Hash).
func auditMAC(key []byte, e AuditEvent) (string, error) {
	body, err := auditBody(e)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(e.PrevHash))
	m.Write([]byte{0})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil)), nil
}

// auditKeyAAD binds a sealed audit key to its row: its id, version and
// creation time (the cut-over) cannot be changed without the key failing
// to open.
func (db *DB) auditKeyAAD(id string, version int, created time.Time) []byte {
	return aad("audit_keys", id, strconv.Itoa(version), created.UTC().Format(time.RFC3339Nano))
}

// openedAuditKeys caches audit keys by their sealed bytes, so an append
// opens the key once per process, not once per row. Keyed by the sealed
// value rather than the version: the cache can never name a key the
// database does not hold (a key made in a transaction that rolled back is
// simply never read again), and a rewrapped key is a new entry.
type openedAuditKeys struct{ m sync.Map }

func (db *DB) openAuditKey(id string, version int, created time.Time, sealed []byte) ([]byte, error) {
	if k, ok := db.auditKeyCache.m.Load(string(sealed)); ok {
		return k.([]byte), nil
	}
	k, err := db.cipher.Open(sealed, db.auditKeyAAD(id, version, created))
	if err != nil {
		return nil, fmt.Errorf("%w: version %d does not open under the master key: %v", ErrAuditKey, version, err)
	}
	db.auditKeyCache.m.Store(string(sealed), k)
	return k, nil
}

// createAuditKey makes audit key version 1 in q's transaction, unless a
// concurrent writer made it first (then theirs is used).
func (db *DB) createAuditKey(ctx context.Context, q querier, at time.Time) error {
	_, err := db.insertAuditKey(ctx, q, 1, at)
	return err
}

// insertAuditKey adds audit key version in q's transaction, dated no later
// than at; false when that version exists already (a concurrent writer's).
func (db *DB) insertAuditKey(ctx context.Context, q querier, version int, at time.Time) (bool, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return false, err
	}
	id := "audkey_" + strconv.Itoa(version)
	// The key is no newer than the row it is made for: every row hashed
	// with it is dated at or after the cut-over.
	created := db.now().UTC().Truncate(time.Microsecond)
	if at = at.UTC().Truncate(time.Microsecond); at.Before(created) {
		created = at
	}
	sealed, err := db.cipher.Seal(key, db.auditKeyAAD(id, version, created))
	if err != nil {
		return false, fmt.Errorf("seal audit key: %w", err)
	}
	n, err := q.exec(ctx, "INSERT INTO audit_keys (id, version, mac_key, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
		id, version, sealed, db.d.timeArg(created))
	return n == 1, err
}

// RotateAuditKey adds a new audit key, the next version, and returns it.
// New rows get their mac under it: this process's at once, other
// processes' within AuditKeyRecheck. Older keys stay, so that every row
// keeps verifying; what a rotation gives is that rows written from now on
// cannot be vouched for by whoever held an earlier key (after a leak of the
// master key together with the database). Rotating while a rotation runs
// elsewhere fails with ErrConflict: run it again.
func (db *DB) RotateAuditKey(ctx context.Context) (int, error) {
	var version int
	err := db.global(ctx, true, func(q querier) error {
		if err := q.queryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM audit_keys").Scan(&version); err != nil {
			return err
		}
		version++
		made, err := db.insertAuditKey(ctx, q, version, db.now())
		if err != nil {
			return err
		}
		if !made {
			return fmt.Errorf("%w: audit key version %d was made at the same time", ErrConflict, version)
		}
		return nil
	})
	if err != nil {
		return 0, db.wrap("rotate audit key", err)
	}
	// This process's appends use the new key from here on; the cache
	// entry is replaced, not compared (it names an older version).
	db.auditCurrent.Store(nil)
	return version, nil
}

// currentAuditKey is the key appends use, once it is known to be
// committed: then an append reads nothing more than before keys existed,
// except once per AuditKeyRecheck, to take up a key another process
// rotated in (RotateAuditKey).
type currentAuditKey struct {
	version int
	key     []byte
	until   time.Time // monotonic: read the newest version again after
}

// AuditKeyRecheck is how long a process appends under the audit key it
// knows before it looks for a newer one: the longest a rotation made
// elsewhere waits to be used everywhere.
const AuditKeyRecheck = time.Minute

// auditKey is the key a new row of a chain, dated at, is hashed with: the
// newest version. Before any key exists, the first is made in q's
// transaction, so it is stored exactly when the row hashed with it is.
//
// Once a key is known to be committed (EnsureAuditKey, which serve calls
// at start, or an append in a transaction of its own that committed: see
// rememberAuditKey) it is used without reading the table: keys are never
// removed, so it stays valid. Until then each append reads it, because a
// key read in a caller's transaction may be that transaction's own, gone
// if it rolls back.
func (db *DB) auditKey(ctx context.Context, q querier, at time.Time) (int, []byte, error) {
	if k := db.auditCurrent.Load(); k != nil && time.Now().Before(k.until) {
		return k.version, k.key, nil
	}
	for attempt := 0; ; attempt++ {
		var (
			id      string
			version int
			sealed  []byte
			created time.Time
		)
		err := q.queryRow(ctx, "SELECT id, version, mac_key, created_at FROM audit_keys ORDER BY version DESC LIMIT 1").
			Scan(&id, &version, &sealed, timeDest{&created})
		if db.d.isNoRows(err) && attempt == 0 {
			if err := db.createAuditKey(ctx, q, at); err != nil {
				return 0, nil, fmt.Errorf("create audit key: %w", err)
			}
			continue
		}
		if err != nil {
			return 0, nil, fmt.Errorf("read audit key: %w", err)
		}
		key, err := db.openAuditKey(id, version, created, sealed)
		return version, key, err
	}
}

// AuditKeys reads every audit key, for verifying the chains. A key that
// does not open under the master key is an error naming it: no row hashed
// with it could be checked.
func (db *DB) AuditKeys(ctx context.Context) (*AuditKeys, error) {
	out := &AuditKeys{keys: map[int][]byte{}}
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, "SELECT id, version, mac_key, created_at FROM audit_keys ORDER BY version")
		if err != nil {
			return err
		}
		type sealedKey struct {
			id      string
			version int
			sealed  []byte
			created time.Time
		}
		rows, err := collect(rs, func(r row) (sealedKey, error) {
			var k sealedKey
			err := r.Scan(&k.id, &k.version, &k.sealed, timeDest{&k.created})
			return k, err
		})
		if err != nil {
			return err
		}
		for _, r := range rows {
			key, err := db.openAuditKey(r.id, r.version, r.created, r.sealed)
			if err != nil {
				return err
			}
			out.keys[r.version] = key
			if out.since.IsZero() || r.created.Before(out.since) {
				out.since = r.created
			}
		}
		return nil
	})
	return out, db.wrap("read audit keys", err)
}

// EnsureAuditKey makes the first audit key if there is none yet, in a
// transaction of its own; serve calls it at start so that appends find it.
// (An append makes it too when it is missing, in the append's transaction.)
func (db *DB) EnsureAuditKey(ctx context.Context) error {
	var version int
	var key []byte
	err := db.global(ctx, true, func(q querier) (err error) {
		version, key, err = db.auditKey(ctx, q, db.now())
		return err
	})
	if err != nil {
		return db.wrap("ensure audit key", err)
	}
	db.rememberAuditKey(ctx, version, key)
	return nil
}

// rememberAuditKey makes version the key appends use without reading it
// for AuditKeyRecheck, when it is known to be committed: the transaction
// that read (or made) it was ctx's own and has committed, or a key was
// already known (then the table was not empty, so the newest version read
// is a committed one, not one the caller's transaction made). Not when
// ctx carries a caller's transaction and no key was known: that may be
// the first key, made in it, gone if it rolls back.
func (db *DB) rememberAuditKey(ctx context.Context, version int, key []byte) {
	cur := db.auditCurrent.Load()
	if _, inTx := ctx.Value(txKey{}).(*txState); inTx && cur == nil {
		return
	}
	if cur != nil && cur.version > version {
		return
	}
	db.auditCurrent.CompareAndSwap(cur, &currentAuditKey{version, key, time.Now().Add(db.auditRecheck())})
}

// auditRecheck is AuditKeyRecheck, or a test's shorter one.
func (db *DB) auditRecheck() time.Duration {
	if db.auditKeyRecheck > 0 {
		return db.auditKeyRecheck
	}
	return AuditKeyRecheck
}

// AuditHead is the head of the audit chain of the tenant in ctx: how many
// rows it has and the hash of the newest ("" for none). Each append takes
// the next seq after the newest, so the newest seq is the count, read in
// one step however long the chain; a checkpoint of it is checked by a
// walk of the whole chain (audit.VerifyAnchored), which counts.
func (db *DB) AuditHead(ctx context.Context) (rows int, hash string, err error) {
	err = db.scopedRead(ctx, func(q querier, tenantID string) error {
		err := q.queryRow(ctx, "SELECT seq, hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1", tenantID).Scan(&rows, &hash)
		if db.d.isNoRows(err) {
			return nil
		}
		return err
	})
	return rows, hash, db.wrap("audit head", err)
}

// OperatorAuditHead is the head of the operators' chain: its chained rows
// (those from before migration 0081 have no hashes and are not counted)
// and the hash of the newest.
func (db *DB) OperatorAuditHead(ctx context.Context) (rows int, hash string, err error) {
	err = db.global(ctx, false, func(q querier) error {
		return q.queryRow(ctx, `SELECT count(*), COALESCE((SELECT hash FROM operator_audit ORDER BY seq DESC LIMIT 1), '')
			FROM operator_audit WHERE hash <> ''`).Scan(&rows, &hash)
	})
	return rows, hash, db.wrap("operator audit head", err)
}
