package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"
)

const directoryCols = "tenant_id, id, name, token_hash, created_at, updated_at"

// directoryReadCols are directoryCols and what a rotation keeps (0105).
const directoryReadCols = directoryCols + ", previous_token_expires_at"

func scanDirectory(r row) (Directory, error) {
	var d Directory
	err := r.Scan(&d.TenantID, &d.ID, &d.Name, &d.TokenHash, timeDest{&d.CreatedAt}, timeDest{&d.UpdatedAt},
		nullTimeDest{&d.PreviousTokenExpiresAt})
	return d, err
}

// CreateDirectory adds a SCIM directory to the tenant in ctx.
func (db *DB) CreateDirectory(ctx context.Context, d Directory) (Directory, error) {
	d.Name = strings.TrimSpace(d.Name)
	if d.Name == "" || len(d.TokenHash) == 0 {
		return Directory{}, fmt.Errorf("%w: a directory needs a name and a token hash", ErrInvalid)
	}
	if d.ID == "" {
		d.ID = NewID(PrefixDirectory)
	}
	d.CreatedAt = db.now()
	d.UpdatedAt = d.CreatedAt
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		d.TenantID = tenantID
		_, err := q.exec(ctx, "INSERT INTO directories ("+directoryCols+") VALUES ($1, $2, $3, $4, $5, $6)",
			d.TenantID, d.ID, d.Name, d.TokenHash, db.d.timeArg(d.CreatedAt), db.d.timeArg(d.UpdatedAt))
		return err
	})
	return d, db.wrap("create directory", err)
}

// Directory returns one directory of the tenant in ctx.
func (db *DB) Directory(ctx context.Context, id string) (Directory, error) {
	var d Directory
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		var err error
		d, err = scanDirectory(q.queryRow(ctx, "SELECT "+directoryReadCols+" FROM directories WHERE tenant_id = $1 AND id = $2", tenantID, id))
		return err
	})
	return d, db.wrap("get directory", err)
}

// Directories lists the directories of the tenant in ctx.
func (db *DB) Directories(ctx context.Context) ([]Directory, error) {
	var out []Directory
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		rs, err := q.query(ctx, "SELECT "+directoryReadCols+" FROM directories WHERE tenant_id = $1 ORDER BY id", tenantID)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanDirectory)
		return err
	})
	return out, db.wrap("list directories", err)
}

// DeleteDirectory deletes directory id of the tenant in ctx and returns it
// as it was, with how many users it let go. Its token stops working with
// the commit; its groups, their memberships and its SCIM error log go with
// it. Its users do not: they are the tenant's people, whose ids are the
// "sub" applications know and whose sessions the IdP governs, so they stay,
// active or not as the directory left them, belonging to no directory. The
// next directory that pushes the same verified email adopts them, ids
// kept, as it adopts a person who signed in by SSO first.
func (db *DB) DeleteDirectory(ctx context.Context, id string) (Directory, int, error) {
	var (
		d        Directory
		released int64
	)
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		var err error
		d, err = scanDirectory(q.queryRow(ctx, "SELECT "+directoryReadCols+" FROM directories WHERE tenant_id = $1 AND id = $2"+db.d.forUpdate(), tenantID, id))
		if err != nil {
			return err
		}
		// Its tokens end with it, also in a database restored from
		// before (tombstones.go): the directory comes back, its tokens
		// do not.
		if err := db.buryDirectoryTokens(ctx, q, tenantID, id, db.now(), []byte{}, nil); err != nil {
			return err
		}
		// Explicitly rather than by the foreign key's SET NULL, which on
		// SQLite would null the tenant column of the composite key too.
		released, err = q.exec(ctx, `UPDATE users SET directory_id = NULL, version = version + 1, updated_at = $3
			WHERE tenant_id = $1 AND directory_id = $2`, tenantID, id, db.d.timeArg(db.now()))
		if err != nil {
			return err
		}
		_, err = q.exec(ctx, "DELETE FROM directories WHERE tenant_id = $1 AND id = $2", tenantID, id)
		return err
	})
	return d, int(released), db.wrap("delete directory", err)
}

// SetDirectoryToken replaces a directory's bearer token hash; the old
// token stops working at once (and so does a previous one still kept).
func (db *DB) SetDirectoryToken(ctx context.Context, id string, tokenHash []byte) error {
	_, err := db.RotateDirectoryToken(ctx, id, tokenHash, 0)
	return err
}

// RotateDirectoryToken replaces a directory's bearer token hash. With a
// positive overlap the token it replaces keeps authenticating until
// now+overlap, which it returns (nil without one), so that the IdP can be
// given the new token while the old one still works; a previous token kept
// from an earlier rotation stops either way.
func (db *DB) RotateDirectoryToken(ctx context.Context, id string, tokenHash []byte, overlap time.Duration) (*time.Time, error) {
	if len(tokenHash) == 0 || overlap < 0 {
		return nil, fmt.Errorf("%w: rotation needs a token hash and an overlap of zero or more", ErrInvalid)
	}
	now := db.now()
	var until *time.Time
	var untilArg any
	if overlap > 0 {
		t := now.Add(overlap)
		until, untilArg = &t, db.d.timeArg(t)
	}
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		// previous_token_hash takes the row's token_hash as it was before
		// this UPDATE (both dialects read the old row on the right).
		prev := "NULL"
		if until != nil {
			prev = "token_hash"
		}
		if err := db.buryDirectoryTokens(ctx, q, tenantID, id, now, tokenHash, until); err != nil {
			return err
		}
		n, err := q.exec(ctx, "UPDATE directories SET previous_token_hash = "+prev+`, previous_token_expires_at = $5,
			token_hash = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2`,
			tenantID, id, tokenHash, db.d.timeArg(now), untilArg)
		if err == nil && n == 0 {
			return ErrNotFound
		}
		return err
	})
	return until, db.wrap("rotate directory token", err)
}

// EndDirectoryTokenOverlap stops the token that the last rotation kept
// working, before its overlap ends, and reports whether one was still in
// its overlap.
func (db *DB) EndDirectoryTokenOverlap(ctx context.Context, id string) (bool, error) {
	var ended bool
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		var until *time.Time
		if err := q.queryRow(ctx, "SELECT previous_token_expires_at FROM directories WHERE tenant_id = $1 AND id = $2",
			tenantID, id).Scan(nullTimeDest{&until}); err != nil {
			return err
		}
		now := db.now()
		ended = until != nil && now.Before(*until)
		if ended {
			if err := db.buryDirectoryTokens(ctx, q, tenantID, id, now, nil, nil); err != nil {
				return err
			}
		}
		_, err := q.exec(ctx, `UPDATE directories SET previous_token_hash = NULL, previous_token_expires_at = NULL,
			updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND (previous_token_hash IS NOT NULL OR previous_token_expires_at IS NOT NULL)`,
			tenantID, id, db.d.timeArg(now))
		return err
	})
	return ended, db.wrap("end directory token overlap", err)
}

// buryDirectoryTokens keeps outside the database (tombstones.go) the end
// of the directory's tokens that a change at now ends: the previous one
// kept from an earlier rotation, at now; and, for a rotation to next (an
// empty next: the directory's deletion), the current one (unless it is
// next: set again, it ends nothing), at until when the rotation keeps it
// in an overlap, else at now. A restored
// database that still holds one of them ends it again.
func (db *DB) buryDirectoryTokens(ctx context.Context, q querier, tenantID, id string, now time.Time, next []byte, until *time.Time) error {
	if db.ledger == nil {
		return nil
	}
	var cur, prev []byte
	if err := q.queryRow(ctx, "SELECT token_hash, previous_token_hash FROM directories WHERE tenant_id = $1 AND id = $2",
		tenantID, id).Scan(&cur, &prev); err != nil {
		return err
	}
	if len(prev) > 0 && !bytes.Equal(prev, next) {
		db.bury(ctx, Tombstone{Kind: TombDirectoryToken, ID: id, TenantID: tenantID, Hash: prev, At: now})
	}
	if next != nil && len(cur) > 0 && !bytes.Equal(cur, next) {
		end := now
		if until != nil {
			end = *until
		}
		db.bury(ctx, Tombstone{Kind: TombDirectoryToken, ID: id, TenantID: tenantID, Hash: cur, At: end})
	}
	return nil
}
