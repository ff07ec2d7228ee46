package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

const applicationCols = `id, name, secret_hash, public, redirect_uris, post_logout_redirect_uris,
	backchannel_logout_uri, id_token_signing_alg, access_token_ttl_ms, id_token_ttl_ms,
	refresh_token_ttl_ms, created_at, updated_at, access_token_signing_alg, initiate_login_uri`

func scanApplication(r row) (Application, error) {
	var a Application
	var access, id, refresh int64
	err := r.Scan(&a.ID, &a.Name, &a.SecretHash, &a.Public, jsonDest{&a.RedirectURIs},
		jsonDest{&a.PostLogoutRedirectURIs}, &a.BackchannelLogoutURI, &a.IDTokenSigningAlg,
		&access, &id, &refresh, timeDest{&a.CreatedAt}, timeDest{&a.UpdatedAt}, &a.AccessTokenSigningAlg, &a.InitiateLoginURI)
	a.AccessTokenTTL = time.Duration(access) * time.Millisecond
	a.IDTokenTTL = time.Duration(id) * time.Millisecond
	a.RefreshTokenTTL = time.Duration(refresh) * time.Millisecond
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
	redirects, err := jsonArg(a.RedirectURIs)
	if err != nil {
		return Application{}, err
	}
	postLogout, err := jsonArg(a.PostLogoutRedirectURIs)
	if err != nil {
		return Application{}, err
	}
	err = db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "INSERT INTO applications ("+applicationCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
			a.ID, a.Name, a.SecretHash, a.Public, redirects, postLogout, a.BackchannelLogoutURI, a.IDTokenSigningAlg,
			a.AccessTokenTTL.Milliseconds(), a.IDTokenTTL.Milliseconds(), a.RefreshTokenTTL.Milliseconds(),
			db.d.timeArg(a.CreatedAt), db.d.timeArg(a.UpdatedAt), a.AccessTokenSigningAlg, a.InitiateLoginURI)
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
