package store

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"strings"
	"time"
)

const applicationCols = `id, name, secret_hash, public, redirect_uris, post_logout_redirect_uris,
	backchannel_logout_uri, id_token_signing_alg, access_token_ttl_ms, id_token_ttl_ms,
	refresh_token_ttl_ms, created_at, updated_at, access_token_signing_alg, initiate_login_uri,
	previous_secret_hash, previous_secret_expires_at, refresh_token_reuse_interval_ms`

func scanApplication(r row) (Application, error) {
	var a Application
	var access, id, refresh, reuse int64
	err := r.Scan(&a.ID, &a.Name, &a.SecretHash, &a.Public, jsonDest{&a.RedirectURIs},
		jsonDest{&a.PostLogoutRedirectURIs}, &a.BackchannelLogoutURI, &a.IDTokenSigningAlg,
		&access, &id, &refresh, timeDest{&a.CreatedAt}, timeDest{&a.UpdatedAt}, &a.AccessTokenSigningAlg, &a.InitiateLoginURI,
		&a.PreviousSecretHash, nullTimeDest{&a.PreviousSecretExpiresAt}, &reuse)
	a.AccessTokenTTL = time.Duration(access) * time.Millisecond
	a.IDTokenTTL = time.Duration(id) * time.Millisecond
	a.RefreshTokenTTL = time.Duration(refresh) * time.Millisecond
	a.RefreshTokenReuseInterval = time.Duration(reuse) * time.Millisecond
	return a, err
}

// CreateApplication registers an OIDC client. A confidential client needs
// a SecretHash; a public one must not have one.
func (db *DB) CreateApplication(ctx context.Context, a Application) (Application, error) {
	a.Name = strings.TrimSpace(a.Name)
	switch {
	case a.Name == "":
		return Application{}, fmt.Errorf("%w: application name is empty", ErrInvalid)
	case len(a.RedirectURIs) == 0:
		return Application{}, fmt.Errorf("%w: an application needs a redirect uri", ErrInvalid)
	case a.Public && len(a.SecretHash) > 0, !a.Public && len(a.SecretHash) == 0:
		return Application{}, fmt.Errorf("%w: confidential clients (only) have a secret", ErrInvalid)
	case !validReuseInterval(a.RefreshTokenReuseInterval):
		return Application{}, fmt.Errorf("%w: the refresh token reuse interval is from 0 to %v", ErrInvalid, MaxRefreshTokenReuseInterval)
	}
	if a.IDTokenSigningAlg == "" {
		a.IDTokenSigningAlg = "RS256"
	}
	if a.ID == "" {
		a.ID = NewID(PrefixApplication)
	}
	if a.PostLogoutRedirectURIs == nil {
		a.PostLogoutRedirectURIs = []string{}
	}
	a.CreatedAt = db.now()
	a.UpdatedAt = a.CreatedAt
	a.PreviousSecretHash, a.PreviousSecretExpiresAt = nil, nil
	redirects, err := jsonArg(a.RedirectURIs)
	if err != nil {
		return Application{}, err
	}
	postLogout, err := jsonArg(a.PostLogoutRedirectURIs)
	if err != nil {
		return Application{}, err
	}
	err = db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "INSERT INTO applications ("+applicationCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
			a.ID, a.Name, a.SecretHash, a.Public, redirects, postLogout, a.BackchannelLogoutURI, a.IDTokenSigningAlg,
			a.AccessTokenTTL.Milliseconds(), a.IDTokenTTL.Milliseconds(), a.RefreshTokenTTL.Milliseconds(),
			db.d.timeArg(a.CreatedAt), db.d.timeArg(a.UpdatedAt), a.AccessTokenSigningAlg, a.InitiateLoginURI, nil, nil,
			a.RefreshTokenReuseInterval.Milliseconds())
		return err
	})
	return a, db.wrap("create application", err)
}

// Application returns one application by id (= client_id).
func (db *DB) Application(ctx context.Context, id string) (Application, error) {
	var a Application
	err := db.global(ctx, false, func(q querier) error {
		var err error
		a, err = scanApplication(q.queryRow(ctx, "SELECT "+applicationCols+" FROM applications WHERE id = $1", id))
		return err
	})
	return a, db.wrap("get application", err)
}

// ListApplications pages through applications in creation order.
func (db *DB) ListApplications(ctx context.Context, p Page) ([]Application, string, error) {
	p = p.Normalize()
	var out []Application
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, "SELECT "+applicationCols+" FROM applications WHERE id > $1 ORDER BY id LIMIT $2", p.After, p.Limit+1)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanApplication)
		return err
	})
	if err != nil {
		return nil, "", db.wrap("list applications", err)
	}
	out, next := cut(out, p.Limit, func(a Application) string { return a.ID })
	return out, next, nil
}

// RotateApplicationSecret makes hash the confidential application's
// secret hash. With a positive overlap the hash it replaces stays valid as
// PreviousSecretHash until now+overlap, so that the application can deploy
// the new secret while the old one still works; with none the old secret
// stops at this commit. A previous secret kept from an earlier rotation is
// dropped either way. A public application has no secret: ErrInvalid.
// Two rotations of one application at once: the later is ErrConflict.
func (db *DB) RotateApplicationSecret(ctx context.Context, id string, hash []byte, overlap time.Duration) (Application, error) {
	if len(hash) == 0 || overlap < 0 {
		return Application{}, fmt.Errorf("%w: rotation needs a secret hash and an overlap of zero or more", ErrInvalid)
	}
	var a Application
	err := db.global(ctx, true, func(q querier) error {
		var err error
		a, err = scanApplication(q.queryRow(ctx, "SELECT "+applicationCols+" FROM applications WHERE id = $1", id))
		if err != nil {
			return err
		}
		if a.Public {
			return fmt.Errorf("%w: a public application has no client secret", ErrInvalid)
		}
		old := a.SecretHash
		// The secrets this rotation ends are kept outside the database
		// first (tombstones.go): the one kept from an earlier rotation
		// now, this one now or when its overlap ends.
		if len(a.PreviousSecretHash) > 0 && !bytes.Equal(a.PreviousSecretHash, hash) {
			db.bury(ctx, Tombstone{Kind: TombApplicationSecret, ID: id, Hash: a.PreviousSecretHash})
		}
		a.SecretHash, a.PreviousSecretHash, a.PreviousSecretExpiresAt = hash, nil, nil
		var prevExp any
		a.UpdatedAt = db.now()
		end := a.UpdatedAt
		if overlap > 0 {
			exp := a.UpdatedAt.Add(overlap)
			a.PreviousSecretHash, a.PreviousSecretExpiresAt = old, &exp
			prevExp = db.d.timeArg(exp)
			end = exp
		}
		if !bytes.Equal(old, hash) { // set again, it ends nothing
			db.bury(ctx, Tombstone{Kind: TombApplicationSecret, ID: id, Hash: old, At: end})
		}
		// Compare and swap on the hash read: a rotation that committed in
		// between would otherwise be lost, its secret already handed out.
		n, err := q.exec(ctx, `UPDATE applications SET secret_hash = $2, previous_secret_hash = $3,
			previous_secret_expires_at = $4, updated_at = $5 WHERE id = $1 AND secret_hash = $6`,
			id, hash, a.PreviousSecretHash, prevExp, db.d.timeArg(a.UpdatedAt), old)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: the application's secret was rotated at the same time", ErrConflict)
		}
		return nil
	})
	return a, db.wrap("rotate application secret", err)
}

// EndApplicationSecretOverlap stops the secret that the last rotation
// kept working, before its overlap ends: the call for a replaced secret
// found leaked while the new one is already deployed. It returns the
// application and whether a previous secret was still in its overlap.
func (db *DB) EndApplicationSecretOverlap(ctx context.Context, id string) (Application, bool, error) {
	var (
		a     Application
		ended bool
	)
	err := db.global(ctx, true, func(q querier) error {
		var err error
		a, err = scanApplication(q.queryRow(ctx, "SELECT "+applicationCols+" FROM applications WHERE id = $1", id))
		if err != nil {
			return err
		}
		now := db.now()
		ended = len(a.PreviousSecretHash) > 0 && a.PreviousSecretExpiresAt != nil && now.Before(*a.PreviousSecretExpiresAt)
		if a.PreviousSecretHash == nil && a.PreviousSecretExpiresAt == nil {
			return nil
		}
		if len(a.PreviousSecretHash) > 0 {
			db.bury(ctx, Tombstone{Kind: TombApplicationSecret, ID: id, Hash: a.PreviousSecretHash, At: now})
		}
		a.PreviousSecretHash, a.PreviousSecretExpiresAt, a.UpdatedAt = nil, nil, now
		_, err = q.exec(ctx, `UPDATE applications SET previous_secret_hash = NULL, previous_secret_expires_at = NULL,
			updated_at = $2 WHERE id = $1`, id, db.d.timeArg(now))
		return err
	})
	return a, ended, db.wrap("end application secret overlap", err)
}

// SecretMatches reports whether sum (the SHA-256 of a presented client
// secret) is the application's secret, or its previous secret while the
// overlap of the last rotation lasts. Both are compared in constant time.
func (a Application) SecretMatches(sum []byte, now time.Time) bool {
	cur := subtle.ConstantTimeCompare(sum, a.SecretHash) == 1 && len(a.SecretHash) > 0
	prev := subtle.ConstantTimeCompare(sum, a.PreviousSecretHash) == 1 && len(a.PreviousSecretHash) > 0 &&
		a.PreviousSecretExpiresAt != nil && now.Before(*a.PreviousSecretExpiresAt)
	return cur || prev
}

// validReuseInterval reports whether d is a refresh token reuse interval
// the broker takes: whole milliseconds from 0 to the maximum.
func validReuseInterval(d time.Duration) bool {
	return d >= 0 && d <= MaxRefreshTokenReuseInterval && d%time.Millisecond == 0
}
