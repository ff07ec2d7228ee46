package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ApplicationUpdate names the fields of an application to change; a nil
// field is left as it is. The secret, the client type (public or not) and
// the signing algorithm are fixed at creation: changing them would break
// the tokens and clients already out there.
type ApplicationUpdate struct {
	Name                   *string
	RedirectURIs           *[]string
	PostLogoutRedirectURIs *[]string
	BackchannelLogoutURI   *string
	// InitiateLoginURI "" removes it.
	InitiateLoginURI *string
	// Lifetimes; zero means the broker default.
	AccessTokenTTL  *time.Duration
	IDTokenTTL      *time.Duration
	RefreshTokenTTL *time.Duration
	// RefreshTokenReuseInterval: 0 is strict rotation.
	RefreshTokenReuseInterval *time.Duration
}

// UpdateApplication changes application id (global) and returns it. The
// row is locked between read and write, so concurrent updates of
// different fields do not undo each other.
func (db *DB) UpdateApplication(ctx context.Context, id string, u ApplicationUpdate) (Application, error) {
	var a Application
	err := db.InTx(ctx, func(ctx context.Context) error {
		return db.global(ctx, true, func(q querier) error {
			var err error
			a, err = scanApplication(q.queryRow(ctx, "SELECT "+applicationCols+" FROM applications WHERE id = $1"+db.d.forUpdate(), id))
			if err != nil {
				return err
			}
			if err := u.apply(&a); err != nil {
				return err
			}
			redirects, err := jsonArg(a.RedirectURIs)
			if err != nil {
				return err
			}
			postLogout, err := jsonArg(a.PostLogoutRedirectURIs)
			if err != nil {
				return err
			}
			a.UpdatedAt = db.now()
			_, err = q.exec(ctx, `UPDATE applications SET name = $2, redirect_uris = $3, post_logout_redirect_uris = $4,
				backchannel_logout_uri = $5, access_token_ttl_ms = $6, id_token_ttl_ms = $7, refresh_token_ttl_ms = $8,
				updated_at = $9, initiate_login_uri = $10, refresh_token_reuse_interval_ms = $11 WHERE id = $1`,
				a.ID, a.Name, redirects, postLogout, a.BackchannelLogoutURI, a.AccessTokenTTL.Milliseconds(),
				a.IDTokenTTL.Milliseconds(), a.RefreshTokenTTL.Milliseconds(), db.d.timeArg(a.UpdatedAt), a.InitiateLoginURI,
				a.RefreshTokenReuseInterval.Milliseconds())
			return err
		})
	})
	return a, db.wrap("update application", err)
}

func (u ApplicationUpdate) apply(a *Application) error {
	if u.Name != nil {
		if a.Name = strings.TrimSpace(*u.Name); a.Name == "" {
			return fmt.Errorf("%w: application name is empty", ErrInvalid)
		}
	}
	if u.RedirectURIs != nil {
		if len(*u.RedirectURIs) == 0 {
			return fmt.Errorf("%w: an application needs a redirect uri", ErrInvalid)
		}
		a.RedirectURIs = append([]string(nil), *u.RedirectURIs...)
	}
	if u.PostLogoutRedirectURIs != nil {
		a.PostLogoutRedirectURIs = append([]string{}, *u.PostLogoutRedirectURIs...)
	}
	if u.BackchannelLogoutURI != nil {
		a.BackchannelLogoutURI = *u.BackchannelLogoutURI
	}
	if u.InitiateLoginURI != nil {
		a.InitiateLoginURI = *u.InitiateLoginURI
	}
	for _, f := range []struct {
		dst *time.Duration
		src *time.Duration
	}{{&a.AccessTokenTTL, u.AccessTokenTTL}, {&a.IDTokenTTL, u.IDTokenTTL}, {&a.RefreshTokenTTL, u.RefreshTokenTTL}} {
		if f.src == nil {
			continue
		}
		if *f.src < 0 {
			return fmt.Errorf("%w: a token lifetime cannot be negative", ErrInvalid)
		}
		*f.dst = *f.src
	}
	if u.RefreshTokenReuseInterval != nil {
		if !validReuseInterval(*u.RefreshTokenReuseInterval) {
			return fmt.Errorf("%w: the refresh token reuse interval is from 0 to %v", ErrInvalid, MaxRefreshTokenReuseInterval)
		}
		a.RefreshTokenReuseInterval = *u.RefreshTokenReuseInterval
	}
	return nil
}

// DeleteApplication removes application id (global). Its tokens stop
// working as soon as the broker's application cache forgets it.
func (db *DB) DeleteApplication(ctx context.Context, id string) error {
	err := db.global(ctx, true, func(q querier) error {
		if db.ledger != nil {
			// Its secrets end with it, also in a database restored from
			// before (tombstones.go): the application may come back, its
			// secrets do not.
			var cur, prev []byte
			err := q.queryRow(ctx, "SELECT secret_hash, previous_secret_hash FROM applications WHERE id = $1", id).Scan(&cur, &prev)
			if err != nil {
				return err
			}
			for _, h := range [][]byte{cur, prev} {
				if len(h) > 0 {
					db.bury(ctx, Tombstone{Kind: TombApplicationSecret, ID: id, Hash: h})
				}
			}
		}
		n, err := q.exec(ctx, "DELETE FROM applications WHERE id = $1", id)
		if err == nil && n == 0 {
			return ErrNotFound
		}
		return err
	})
	return db.wrap("delete application", err)
}
