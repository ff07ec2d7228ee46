package store

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"
)

const signingKeyCols = "id, alg, status, private_key, created_at, retire_at"

func (db *DB) scanSigningKey(r row) (SigningKey, error) {
	var k SigningKey
	var sealed []byte
	if err := r.Scan(&k.ID, &k.Alg, &k.Status, &sealed, timeDest{&k.CreatedAt}, nullTimeDest{&k.RetireAt}); err != nil {
		return SigningKey{}, err
	}
	plain, err := db.cipher.Open(sealed, aad("signing_keys", k.ID))
	if err != nil {
		return SigningKey{}, fmt.Errorf("open signing key %s: %w", k.ID, err)
	}
	k.PrivateKey = plain
	return k, nil
}

// CreateSigningKey stores a key, its private half sealed. Two active keys
// of one algorithm are ErrConflict.
func (db *DB) CreateSigningKey(ctx context.Context, k SigningKey) (SigningKey, error) {
	if (k.Alg != "RS256" && k.Alg != "ES256") || len(k.PrivateKey) == 0 {
		return SigningKey{}, fmt.Errorf("%w: signing key needs alg RS256 or ES256 and a private key", ErrInvalid)
	}
	if k.ID == "" {
		k.ID = NewID(PrefixSigningKey)
	}
	if k.Status == "" {
		k.Status = KeyActive
	}
	k.CreatedAt = db.now()
	sealed, err := db.cipher.Seal(k.PrivateKey, aad("signing_keys", k.ID))
	if err != nil {
		return SigningKey{}, fmt.Errorf("store: seal signing key: %w", err)
	}
	err = db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "INSERT INTO signing_keys ("+signingKeyCols+") VALUES ($1, $2, $3, $4, $5, $6)",
			k.ID, k.Alg, k.Status, sealed, db.d.timeArg(k.CreatedAt), db.optTime(k.RetireAt))
		return err
	})
	return k, db.wrap("create signing key", err)
}

// SigningKeys lists the keys that are active or still overlapping, oldest
// first.
func (db *DB) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	var out []SigningKey
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, "SELECT "+signingKeyCols+" FROM signing_keys WHERE status IN ('active', 'overlap') ORDER BY created_at, id")
		if err != nil {
			return err
		}
		out, err = collect(rs, db.scanSigningKey)
		return err
	})
	return out, db.wrap("list signing keys", err)
}

// SetSigningKeyStatus moves a key along its rotation.
func (db *DB) SetSigningKeyStatus(ctx context.Context, id string, status SigningKeyStatus, retireAt *time.Time) error {
	if status != KeyActive && status != KeyOverlap && status != KeyRetired {
		return fmt.Errorf("%w: signing key status %q", ErrInvalid, status)
	}
	err := db.global(ctx, true, func(q querier) error {
		n, err := q.exec(ctx, "UPDATE signing_keys SET status = $2, retire_at = $3 WHERE id = $1", id, status, db.optTime(retireAt))
		if err == nil && n == 0 {
			return ErrNotFound
		}
		return err
	})
	return db.wrap("set signing key status", err)
}

const apiKeyCols = "id, name, hash, prefix, created_at, last_used_at, revoked_at"

func scanAPIKey(r row) (APIKey, error) {
	var k APIKey
	err := r.Scan(&k.ID, &k.Name, &k.Hash, &k.Prefix, timeDest{&k.CreatedAt}, nullTimeDest{&k.LastUsedAt}, nullTimeDest{&k.RevokedAt})
	return k, err
}

// CreateAPIKey stores an operator key by its hash.
func (db *DB) CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error) {
	if len(k.Hash) == 0 {
		return APIKey{}, fmt.Errorf("%w: api key hash is empty", ErrInvalid)
	}
	if k.ID == "" {
		k.ID = NewID(PrefixAPIKey)
	}
	k.CreatedAt = db.now()
	err := db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "INSERT INTO api_keys (id, name, hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)",
			k.ID, k.Name, k.Hash, k.Prefix, db.d.timeArg(k.CreatedAt))
		return err
	})
	return k, db.wrap("create api key", err)
}

// AuthenticateAPIKey finds the unrevoked key with this hash. The indexed
// lookup is by hash; the final comparison is constant-time so that the
// answer's timing does not depend on how much of a guess matched.
func (db *DB) AuthenticateAPIKey(ctx context.Context, hash []byte) (APIKey, error) {
	if len(hash) == 0 {
		return APIKey{}, ErrNotFound
	}
	var k APIKey
	err := db.global(ctx, false, func(q querier) error {
		var err error
		k, err = scanAPIKey(q.queryRow(ctx, "SELECT "+apiKeyCols+" FROM api_keys WHERE hash = $1 AND revoked_at IS NULL", hash))
		return err
	})
	if err != nil {
		return APIKey{}, db.wrap("authenticate api key", err)
	}
	if subtle.ConstantTimeCompare(k.Hash, hash) != 1 {
		return APIKey{}, ErrNotFound
	}
	return k, nil
}

// TouchAPIKey records that key id authenticated a request at at, unless
// it was already recorded less than a minute earlier: enough for an
// operator to tell whether a key is still in use before revoking it,
// without a write per request.
func (db *DB) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	err := db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
			id, db.d.timeArg(at), db.d.timeArg(at.Add(-APIKeyTouchInterval)))
		return err
	})
	return db.wrap("touch api key", err)
}

// APIKeyTouchInterval is how stale an API key's LastUsedAt may be.
const APIKeyTouchInterval = time.Minute

// ListAPIKeys lists every operator key, revoked ones included.
func (db *DB) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	var out []APIKey
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, "SELECT "+apiKeyCols+" FROM api_keys ORDER BY id")
		if err != nil {
			return err
		}
		out, err = collect(rs, scanAPIKey)
		return err
	})
	return out, db.wrap("list api keys", err)
}

// RevokeAPIKey stops a key from authenticating.
func (db *DB) RevokeAPIKey(ctx context.Context, id string) error {
	err := db.global(ctx, true, func(q querier) error {
		n, err := q.exec(ctx, "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", id, db.d.timeArg(db.now()))
		if err == nil && n == 0 {
			return ErrNotFound
		}
		if err == nil {
			// Kept outside the database before the commit: a restore
			// must not bring the key back (tombstones.go).
			db.bury(ctx, Tombstone{Kind: TombAPIKey, ID: id})
		}
		return err
	})
	return db.wrap("revoke api key", err)
}

func (db *DB) optTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return db.d.timeArg(*t)
}
