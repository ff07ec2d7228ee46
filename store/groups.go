package store

import (
	"context"
	"fmt"
	"strings"
)

const groupCols = "tenant_id, id, directory_id, external_id, display_name, attributes, version, created_at, updated_at"

func scanGroup(r row) (Group, error) {
	var g Group
	err := r.Scan(&g.TenantID, &g.ID, &g.DirectoryID, &g.ExternalID, &g.DisplayName, jsonDest{&g.Attributes},
		&g.Version, timeDest{&g.CreatedAt}, timeDest{&g.UpdatedAt})
	return g, err
}

// CreateGroup adds a group to a directory of the tenant in ctx.
func (db *DB) CreateGroup(ctx context.Context, g Group) (Group, error) {
	if strings.TrimSpace(g.DisplayName) == "" || g.DirectoryID == "" {
		return Group{}, fmt.Errorf("%w: a group needs a directory and a display name", ErrInvalid)
	}
	if g.ID == "" {
		g.ID = NewID(PrefixGroup)
	}
	g.Version = 1
	g.CreatedAt = db.now()
	g.UpdatedAt = g.CreatedAt
	attrs, err := jsonArg(g.Attributes)
	if err != nil {
		return Group{}, err
	}
	err = db.scoped(ctx, func(q querier, tenantID string) error {
		g.TenantID = tenantID
		_, err := q.exec(ctx, "INSERT INTO groups ("+groupCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
			g.TenantID, g.ID, g.DirectoryID, g.ExternalID, g.DisplayName, attrs, g.Version,
			db.d.timeArg(g.CreatedAt), db.d.timeArg(g.UpdatedAt))
		return err
	})
	return g, db.wrap("create group", err)
}

// Group returns one group of the tenant in ctx.
func (db *DB) Group(ctx context.Context, id string) (Group, error) {
	var g Group
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		var err error
		g, err = scanGroup(q.queryRow(ctx, "SELECT "+groupCols+" FROM groups WHERE tenant_id = $1 AND id = $2", tenantID, id))
		return err
	})
	return g, db.wrap("get group", err)
}

// UpdateGroup replaces a group's names and attributes (not its members).
func (db *DB) UpdateGroup(ctx context.Context, g Group, ifVersion int64) (Group, error) {
	if strings.TrimSpace(g.DisplayName) == "" {
		return Group{}, fmt.Errorf("%w: a group needs a display name", ErrInvalid)
	}
	attrs, err := jsonArg(g.Attributes)
	if err != nil {
		return Group{}, err
	}
	err = db.scoped(ctx, func(q querier, tenantID string) error {
		old, err := scanGroup(q.queryRow(ctx, "SELECT "+groupCols+" FROM groups WHERE tenant_id = $1 AND id = $2", tenantID, g.ID))
		if err != nil {
			return err
		}
		if ifVersion != 0 && ifVersion != old.Version {
			return ErrVersionMismatch
		}
		g.TenantID, g.DirectoryID, g.CreatedAt = tenantID, old.DirectoryID, old.CreatedAt
		g.Version, g.UpdatedAt = old.Version+1, db.now()
		n, err := q.exec(ctx, `UPDATE groups SET external_id = $3, display_name = $4, attributes = $5, version = $6, updated_at = $7
			WHERE tenant_id = $1 AND id = $2 AND version = $8`,
			tenantID, g.ID, g.ExternalID, g.DisplayName, attrs, g.Version, db.d.timeArg(g.UpdatedAt), old.Version)
		if err == nil && n == 0 {
			return ErrVersionMismatch
		}
		return err
	})
	return g, db.wrap("update group", err)
}

// DeleteGroup removes a group and its memberships.
func (db *DB) DeleteGroup(ctx context.Context, id string) error {
	return db.deleteRow(ctx, "groups", "group", id)
}

// FindGroups lists the groups of the tenant in ctx that match q.
func (db *DB) FindGroups(ctx context.Context, q GroupQuery) ([]Group, int, error) {
	return find(ctx, db, groupsTable, q.DirectoryID, q.Filter, q.Sort, q.Limit, q.Offset)
}

var groupsTable = filtered[Group]{"groups", groupCols, groupFields, scanGroup}

// changeMembers locks the group's row first (PostgreSQL; SQLite's one
// writer already serialises) so that concurrent membership changes queue
// rather than interleave, then runs fn, and bumps the group's version only
// when fn reports a change: a client re-sending members it already has
// (Entra and Okta do) must not look like a change to whoever follows
// versions. A user id of another tenant fails the foreign key and is
// reported as ErrNotFound.
func (db *DB) changeMembers(ctx context.Context, op, groupID string, fn func(q querier, tenantID string) (changed bool, err error)) error {
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		var one int
		err := q.queryRow(ctx, "SELECT 1 FROM groups WHERE tenant_id = $1 AND id = $2"+db.d.forUpdate(), tenantID, groupID).Scan(&one)
		if db.d.isNoRows(err) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		changed, err := fn(q, tenantID)
		if err != nil || !changed {
			return err
		}
		_, err = q.exec(ctx, "UPDATE groups SET version = version + 1, updated_at = $3 WHERE tenant_id = $1 AND id = $2",
			tenantID, groupID, db.d.timeArg(db.now()))
		return err
	})
	return db.wrap(op, err)
}

// GroupMembers pages through a group's member ids.
func (db *DB) GroupMembers(ctx context.Context, groupID string, p Page) ([]string, string, error) {
	p = p.Normalize()
	var out []string
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		rs, err := q.query(ctx, `SELECT user_id FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND user_id > $3
			ORDER BY user_id LIMIT $4`, tenantID, groupID, p.After, p.Limit+1)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanString)
		return err
	})
	if err != nil {
		return nil, "", db.wrap("group members", err)
	}
	out, next := cut(out, p.Limit, func(s string) string { return s })
	return out, next, nil
}
