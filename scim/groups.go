package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/store"
)

// Groups keep their members in the store's membership table, never in the
// document: a membership change touches only the rows it names, so adding
// one person to a 50,000-member group costs what adding them to an empty
// one does. members is "returned by default" (RFC 7643 §4.2), so GET
// /Groups/{id} and lists carry them unless excludedAttributes=members (what
// Entra ID sends) or ?attributes= leaves them out. A list page whose groups
// hold more than maxListedMembers members in all is refused with tooMany
// rather than silently cut, unless it is the page's first (a page of one
// group, Okta's lookup by displayName, is always answered).

// maxListedMembers bounds the member references one list answer carries
// (Server.maxMembers, which tests lower).
const maxListedMembers = 10000

func memberConflict(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Status: http.StatusBadRequest, ScimType: typeInvalidValue, Detail: "a member is not a user of this directory", Err: err}
	}
	return err
}

func groupConflict(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return &Error{Status: http.StatusConflict, ScimType: typeUniqueness, Detail: "a group with this displayName already exists", Err: err}
	}
	return err
}

func (s *Server) createGroup(c echo.Context) error {
	ctx := c.Request().Context()
	dir := directoryFrom(ctx)
	d, members, err := s.readGroup(c)
	if err != nil {
		return err
	}
	g := store.Group{DirectoryID: dir}
	if err := groupFields(d, &g); err != nil {
		return err
	}
	if g.Attributes, err = encodeDoc(d); err != nil {
		return err
	}
	err = s.writeTx(ctx, "groups.create", func(ctx context.Context) error {
		if g, err = s.store.CreateGroup(ctx, g); err != nil {
			return groupConflict(err)
		}
		if err := s.emit(ctx, EventGroupCreated, groupEvent(g)); err != nil {
			return err
		}
		if len(members) > 0 {
			added, err := s.store.AddDirectoryMembers(ctx, g.ID, members)
			if err != nil {
				return memberConflict(err)
			}
			if len(added) > 0 {
				g.Version++ // the store's bump, not read back
			}
			return s.emitMembership(ctx, EventGroupUserAdded, g, added)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeGroup(c, http.StatusCreated, g, members)
}

// readGroup reads a POST or PUT body of a group: its document, and its
// members apart, which are kept as membership rows rather than in it.
func (s *Server) readGroup(c echo.Context) (doc, []string, error) {
	d, err := s.readResource(c, SchemaGroup)
	if err != nil {
		return nil, nil, err
	}
	members, err := memberIDs(d["members"])
	if err != nil {
		return nil, nil, err
	}
	delete(d, "members")
	return d, members, nil
}

func (s *Server) writeGroup(c echo.Context, status int, g store.Group, members []string) error {
	dir := directoryFrom(c.Request().Context())
	if members == nil {
		members = []string{}
	}
	d, err := s.groupResource(dir, g, members)
	if err != nil {
		return err
	}
	return s.writeResource(c, status, dir, "Groups", g.ID, g.Version, d)
}

// loadGroup finds a group of the request's directory, as loadUser a user.
func (s *Server) loadGroup(ctx context.Context, id string) (store.Group, error) {
	return loadIn(ctx, "Group", store.PrefixGroup, id, s.store.Group, func(g store.Group) string { return g.DirectoryID })
}

// allMembers pages through a group's members.
func (s *Server) allMembers(ctx context.Context, groupID string) ([]string, error) {
	return s.members(ctx, groupID, -1)
}

// members pages through a group's members, failing with tooManyMembers
// past budget of them (budget < 0: no limit).
func (s *Server) members(ctx context.Context, groupID string, budget int) ([]string, error) {
	var out []string
	p := store.Page{Limit: 100}
	for {
		ids, next, err := s.store.GroupMembers(ctx, groupID, p)
		if err != nil {
			return nil, err
		}
		out = append(out, ids...)
		if budget >= 0 && len(out) > budget {
			return nil, s.tooManyMembers()
		}
		if next == "" {
			return out, nil
		}
		p.After = next
	}
}

func (s *Server) tooManyMembers() *Error {
	return &Error{Status: http.StatusBadRequest, ScimType: typeTooMany,
		Detail: fmt.Sprintf("these groups have more than %d members in all: ask with excludedAttributes=members, a smaller count, or read each group", s.maxMembers)}
}

// wantsMembers: members are returned unless excluded or, with
// ?attributes=, not asked for.
func wantsMembers(c echo.Context, byDefault bool) bool {
	has := func(list string) bool {
		for _, a := range strings.Split(list, ",") {
			a = strings.ToLower(strings.TrimSpace(a))
			if a == "members" || strings.HasPrefix(a, "members.") || strings.HasSuffix(a, ":members") {
				return true
			}
		}
		return false
	}
	if a := c.QueryParam("attributes"); a != "" {
		return has(a)
	}
	if has(c.QueryParam("excludedAttributes")) {
		return false
	}
	return byDefault
}

func (s *Server) getGroup(c echo.Context) error {
	ctx := c.Request().Context()
	g, err := s.loadGroup(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	var members []string
	if wantsMembers(c, true) {
		if members, err = s.allMembers(ctx, g.ID); err != nil {
			return err
		}
	}
	return s.writeGroup(c, http.StatusOK, g, members)
}

func (s *Server) listGroups(c echo.Context) error {
	dir := directoryFrom(c.Request().Context())
	withMembers, budget, first := wantsMembers(c, true), s.maxMembers, true
	return listResources(c, s, groupFilters, func(ctx context.Context, q listQuery, offset, limit int) ([]store.Group, int, error) {
		return s.store.FindGroups(ctx, store.GroupQuery{DirectoryID: dir, Filter: q.filter, Sort: q.sort, Offset: offset, Limit: limit})
	}, func(ctx context.Context, g store.Group) (doc, error) {
		var members []string
		if withMembers {
			// A page's first group is answered whole, as GET
			// /Groups/{id} would answer it: Okta finds the group it
			// pushes with filter=displayName eq "…", members and all,
			// and a refusal would fail the push of any group larger
			// than the budget. The budget bounds what the others add.
			b := budget
			if first {
				b = -1
			}
			var err error
			if members, err = s.members(ctx, g.ID, b); err != nil {
				return nil, err
			}
			budget = max(budget-len(members), 0)
		}
		first = false
		return s.groupResource(dir, g, members)
	})
}

func (s *Server) replaceGroup(c echo.Context) error {
	ctx := c.Request().Context()
	want, err := ifMatch(c.Request().Header.Get("If-Match"))
	if err != nil {
		return err
	}
	d, members, err := s.readGroup(c)
	if err != nil {
		return err
	}
	var g store.Group
	if err := groupFields(d, &g); err != nil {
		return err
	}
	if g.Attributes, err = encodeDoc(d); err != nil {
		return err
	}
	err = s.writeTx(ctx, "groups.put", func(ctx context.Context) error {
		old, err := s.loadGroup(ctx, c.Param("id"))
		if err != nil {
			return err
		}
		if g, err = s.updateGroup(ctx, old, g, want.version(old.Version)); err != nil {
			return err
		}
		// PUT carries the whole member list, so reading the current one
		// to announce the difference costs no more than the request.
		return s.replaceMembers(ctx, &g, members)
	})
	if err != nil {
		return err
	}
	return s.writeGroup(c, http.StatusOK, g, members)
}

// updateGroup writes next's names and document over old (read in the
// transaction of ctx) if the stored version is ifVersion (0: any) and
// announces it, and returns the group as it now is. A write that would
// store nothing new is skipped: no new version, no event.
func (s *Server) updateGroup(ctx context.Context, old, next store.Group, ifVersion int64) (store.Group, error) {
	if ifVersion != 0 && ifVersion != old.Version {
		return old, store.ErrVersionMismatch
	}
	next.ID = old.ID
	if unchangedGroup(old, next) {
		return old, nil
	}
	g, err := s.store.UpdateGroup(ctx, next, ifVersion)
	if err != nil {
		return old, groupConflict(err)
	}
	return g, s.emit(ctx, EventGroupUpdated, groupEvent(g))
}

// replaceMembers makes members the group's members and announces who came
// and went.
func (s *Server) replaceMembers(ctx context.Context, g *store.Group, members []string) error {
	cur, err := s.allMembers(ctx, g.ID)
	if err != nil {
		return err
	}
	add, remove := diff(cur, members)
	if len(add) > 0 {
		added, err := s.store.AddDirectoryMembers(ctx, g.ID, add)
		if err != nil {
			return memberConflict(err)
		}
		if len(added) > 0 {
			g.Version++
		}
		if err := s.emitMembership(ctx, EventGroupUserAdded, *g, added); err != nil {
			return err
		}
	}
	if len(remove) > 0 {
		removed, err := s.store.RemoveDirectoryMembers(ctx, g.ID, remove)
		if err != nil {
			return err
		}
		if len(removed) > 0 {
			g.Version++
		}
		return s.emitMembership(ctx, EventGroupUserRemove, *g, removed)
	}
	return nil
}

func diff(cur, next []string) (added, removed []string) {
	in := make(map[string]bool, len(cur))
	for _, id := range cur {
		in[id] = true
	}
	want := make(map[string]bool, len(next))
	for _, id := range next {
		want[id] = true
		if !in[id] {
			added = append(added, id)
		}
	}
	for _, id := range cur {
		if !want[id] {
			removed = append(removed, id)
		}
	}
	return added, removed
}

// memberOp is one PATCH operation on members.
type memberOp struct {
	op  string // add, remove, replace, clear
	ids []string
}

// splitMemberOps separates operations on members from the rest, and joins
// consecutive adds (or removes) into one: Entra ID may send 1,000 one-member
// operations, which one statement each made 1,000 round trips.
func splitMemberOps(ops []patchOp) ([]memberOp, []patchOp, error) {
	mops, rest, err := splitMemberOpsApart(ops)
	if err != nil {
		return nil, nil, err
	}
	var joined []memberOp
	for _, m := range mops {
		if n := len(joined); n > 0 && joined[n-1].op == m.op && (m.op == "add" || m.op == "remove") {
			joined[n-1].ids = append(joined[n-1].ids, m.ids...)
			continue
		}
		m.ids = slices.Clone(m.ids)
		joined = append(joined, m)
	}
	return joined, rest, nil
}

func splitMemberOpsApart(ops []patchOp) ([]memberOp, []patchOp, error) {
	var mops []memberOp
	var rest []patchOp
	for i, op := range ops {
		if op.Path == "" {
			obj := op.Value.(map[string]any)
			k, v, ok := getFold(obj, "members")
			if !ok {
				// Named by its schema URN (RFC 7644 §3.10).
				k, v, ok = getFold(obj, SchemaGroup+":members")
			}
			if !ok {
				rest = append(rest, op)
				continue
			}
			ids, err := memberIDs(v)
			if err != nil {
				return nil, nil, err
			}
			kind := op.Op
			mops = append(mops, memberOp{op: kind, ids: ids})
			others := make(map[string]any, len(obj)-1)
			for ok, ov := range obj {
				if ok != k {
					others[ok] = ov
				}
			}
			if len(others) > 0 {
				rest = append(rest, patchOp{Op: op.Op, Value: others})
			}
			continue
		}
		t, err := parseTarget(op.Path, SchemaGroup)
		if err != nil {
			return nil, nil, err
		}
		if !strings.EqualFold(t.attr, "members") || t.ext != "" {
			rest = append(rest, op)
			continue
		}
		switch {
		case t.filter != nil:
			// members[value eq "usr_…"] (or several, or'ed).
			if op.Op != "remove" || t.sub != "" {
				return nil, nil, newError(http.StatusBadRequest, typeInvalidPath, "Operations[%d]: only remove takes members[value eq …]", i)
			}
			ids, ok := memberFilterIDs(t.filter)
			if !ok {
				return nil, nil, newError(http.StatusBadRequest, typeInvalidFilter, "Operations[%d]: a members filter must be value eq \"<user id>\" (or several joined by or)", i)
			}
			mops = append(mops, memberOp{op: "remove", ids: ids})
		case t.sub != "":
			return nil, nil, newError(http.StatusBadRequest, typeInvalidPath, "Operations[%d]: members.%s cannot be patched", i, t.sub)
		case op.Op == "remove" && op.Value == nil:
			mops = append(mops, memberOp{op: "clear"})
		default:
			ids, err := memberIDs(op.Value)
			if err != nil {
				return nil, nil, err
			}
			mops = append(mops, memberOp{op: op.Op, ids: ids})
		}
	}
	return mops, rest, nil
}

func memberFilterIDs(f Expr) ([]string, bool) {
	switch f := f.(type) {
	case Compare:
		id, ok := f.Value.(string)
		if f.Op != "eq" || !strings.EqualFold(f.Path.Attr, "value") || f.Path.Sub != "" || !ok {
			return nil, false
		}
		return []string{id}, true
	case Logical:
		if f.Op != "or" {
			return nil, false
		}
		l, ok1 := memberFilterIDs(f.Left)
		r, ok2 := memberFilterIDs(f.Right)
		return append(l, r...), ok1 && ok2
	}
	return nil, false
}

// patchGroup applies attribute operations to the document and membership
// operations to the membership rows, in one transaction. It answers 204:
// echoing the group back would mean reading every member. A request that
// names attributes (or excludedAttributes) asks for the group, which RFC
// 7644 §3.5.2 then has answered with 200: it gets what it named.
func (s *Server) patchGroup(c echo.Context) error {
	ctx := c.Request().Context()
	want, err := ifMatch(c.Request().Header.Get("If-Match"))
	if err != nil {
		return err
	}
	req, err := s.readPatch(c, SchemaGroup)
	if err != nil {
		return err
	}
	mops, rest, err := splitMemberOps(req.Operations)
	if err != nil {
		return err
	}
	id := c.Param("id")
	var g store.Group
	if len(req.Operations) == 0 {
		// Nothing to change: no write, no event (see patchRequest.validate).
		if g, err = s.loadGroup(ctx, id); err != nil {
			return err
		}
		if !want.holds(g.Version) {
			return store.ErrVersionMismatch
		}
		return s.patchedGroup(c, g)
	}
	err = retryUnversioned(want.none(), func() error {
		return s.writeTx(ctx, "groups.patch", func(ctx context.Context) error {
			return s.applyGroupPatch(ctx, id, want, rest, mops, &g)
		})
	})
	if err != nil {
		return err
	}
	return s.patchedGroup(c, g)
}

// patchedGroup answers a group PATCH: 204, or the group when the request
// names attributes (see patchGroup).
func (s *Server) patchedGroup(c echo.Context, g store.Group) error {
	if c.QueryParam("attributes") == "" && c.QueryParam("excludedAttributes") == "" {
		c.Response().Header().Set("ETag", etag(g.Version))
		return c.NoContent(http.StatusNoContent)
	}
	var members []string
	if wantsMembers(c, true) {
		var err error
		if members, err = s.allMembers(c.Request().Context(), g.ID); err != nil {
			return err
		}
	}
	return s.writeGroup(c, http.StatusOK, g, members)
}

// applyGroupPatch is one attempt of patchGroup, inside its transaction;
// out receives the group as written.
func (s *Server) applyGroupPatch(ctx context.Context, id string, want precondition, rest []patchOp, mops []memberOp, out *store.Group) error {
	g, err := s.loadGroup(ctx, id)
	if err != nil {
		return err
	}
	if !want.holds(g.Version) {
		return store.ErrVersionMismatch
	}
	if len(rest) > 0 {
		d, err := decodeDoc(g.Attributes)
		if err != nil {
			return err
		}
		if err := applyPatch(d, rest, SchemaGroup); err != nil {
			return err
		}
		delete(d, "members")
		ng := g
		if err := groupFields(d, &ng); err != nil {
			return err
		}
		if ng.Attributes, err = encodeDoc(d); err != nil {
			return err
		}
		if g, err = s.updateGroup(ctx, g, ng, g.Version); err != nil {
			return err
		}
	}
	for _, m := range mops {
		if err := s.applyMemberOp(ctx, &g, m); err != nil {
			return err
		}
	}
	*out = g
	return nil
}

func (s *Server) applyMemberOp(ctx context.Context, g *store.Group, m memberOp) error {
	switch m.op {
	case "add":
		if len(m.ids) == 0 {
			return nil
		}
		added, err := s.store.AddDirectoryMembers(ctx, g.ID, m.ids)
		if err != nil {
			return memberConflict(err)
		}
		if len(added) > 0 {
			g.Version++
		}
		return s.emitMembership(ctx, EventGroupUserAdded, *g, added)
	case "remove":
		if len(m.ids) == 0 {
			return nil
		}
		removed, err := s.store.RemoveDirectoryMembers(ctx, g.ID, m.ids)
		if err != nil {
			return err
		}
		if len(removed) > 0 {
			g.Version++
		}
		return s.emitMembership(ctx, EventGroupUserRemove, *g, removed)
	case "clear":
		return s.replaceMembers(ctx, g, nil)
	default: // replace
		return s.replaceMembers(ctx, g, m.ids)
	}
}

func (s *Server) deleteGroup(c echo.Context) error {
	ctx := c.Request().Context()
	want, err := ifMatch(c.Request().Header.Get("If-Match"))
	if err != nil {
		return err
	}
	g, err := s.loadGroup(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	err = s.writeTx(ctx, "groups.delete", func(ctx context.Context) error {
		if !want.none() {
			// As for users: the versioned write checks If-Match and
			// holds the row until the delete commits.
			if _, err := s.store.UpdateGroup(ctx, g, want.version(g.Version)); err != nil {
				return err
			}
		}
		if err := s.store.DeleteGroup(ctx, g.ID); err != nil {
			return err
		}
		return s.emit(ctx, EventGroupDeleted, groupEvent(g))
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
