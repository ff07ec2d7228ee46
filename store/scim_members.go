package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// memberChunk bounds the ids of one statement, and so its bound
// parameters; longer lists take several statements in one transaction.
const memberChunk = 500

// AddDirectoryMembers adds users to a group of the tenant in ctx and
// returns those that were not members already, in the order given. Every
// user must belong to the group's own directory: a user of another
// directory (or tenant), or an unknown id, fails the whole change with
// ErrNotFound and adds no one. It touches only the
// named rows and bumps the group's version when someone was added.
func (db *DB) AddDirectoryMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error) {
	ids := dedupe(userIDs)
	if len(ids) == 0 {
		return nil, nil
	}
	var added []string
	err := db.changeMembers(ctx, "add directory members", groupID, func(q querier, tenantID string) (bool, error) {
		err := chunked(ids, func(ids []string) error {
			got, err := db.addDirectoryMembers(ctx, q, tenantID, groupID, ids)
			added = append(added, got...)
			return err
		})
		return len(added) > 0, err
	})
	if err != nil {
		return nil, db.wrap("add directory members", err)
	}
	return added, nil
}

func (db *DB) addDirectoryMembers(ctx context.Context, q querier, tenantID, groupID string, ids []string) ([]string, error) {
	in, args := inList(3, ids)
	var known int
	err := q.queryRow(ctx, `SELECT count(*) FROM users u JOIN groups g ON g.tenant_id = u.tenant_id AND g.directory_id = u.directory_id
			WHERE u.tenant_id = $1 AND g.id = $2 AND u.id IN (`+in+`)`,
		append([]any{tenantID, groupID}, args...)...).Scan(&known)
	if err != nil {
		return nil, err
	}
	if known != len(ids) {
		return nil, fmt.Errorf("%w: %d of %d members are not users of the group's directory", ErrNotFound, len(ids)-known, len(ids))
	}
	rs, err := q.query(ctx, `INSERT INTO group_members (tenant_id, group_id, user_id)
		SELECT $1, $2, u.id FROM users u WHERE u.tenant_id = $1 AND u.id IN (`+in+`)
		ON CONFLICT DO NOTHING RETURNING user_id`,
		append([]any{tenantID, groupID}, args...)...)
	if err != nil {
		return nil, err
	}
	got, err := collect(rs, scanString)
	if err != nil {
		return nil, err
	}
	return inOrder(ids, got), nil
}

// RemoveDirectoryMembers removes users from a group of the tenant in ctx
// and returns those that were members, in the order given; the others are
// ignored. The group's version changes only when someone was removed.
func (db *DB) RemoveDirectoryMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error) {
	ids := dedupe(userIDs)
	if len(ids) == 0 {
		return nil, nil
	}
	var removed []string
	err := db.changeMembers(ctx, "remove directory members", groupID, func(q querier, tenantID string) (bool, error) {
		err := chunked(ids, func(ids []string) error {
			in, args := inList(3, ids)
			rs, err := q.query(ctx, `DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND user_id IN (`+in+`)
				RETURNING user_id`, append([]any{tenantID, groupID}, args...)...)
			if err != nil {
				return err
			}
			got, err := collect(rs, scanString)
			removed = append(removed, inOrder(ids, got)...)
			return err
		})
		return len(removed) > 0, err
	})
	if err != nil {
		return nil, db.wrap("remove directory members", err)
	}
	return removed, nil
}

// chunked calls fn on consecutive pieces of ids of at most memberChunk.
func chunked(ids []string, fn func([]string) error) error {
	for len(ids) > 0 {
		n := min(len(ids), memberChunk)
		if err := fn(ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// dedupe drops duplicate ids, keeping the first of each.
func dedupe(userIDs []string) []string {
	seen := make(map[string]bool, len(userIDs))
	out := make([]string, 0, len(userIDs))
	for _, id := range userIDs {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// inList renders placeholders $first… for ids, bound, never spliced.
func inList(first int, ids []string) (string, []any) {
	var b strings.Builder
	args := make([]any, len(ids))
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(first+i))
		args[i] = id
	}
	return b.String(), args
}

// inOrder returns the ids of want that are in got, in want's order.
func inOrder(want, got []string) []string {
	if len(got) == 0 {
		return nil
	}
	in := make(map[string]bool, len(got))
	for _, id := range got {
		in[id] = true
	}
	out := make([]string, 0, len(got))
	for _, id := range want {
		if in[id] {
			out = append(out, id)
		}
	}
	return out
}

func scanString(r row) (string, error) {
	var s string
	return s, r.Scan(&s)
}
