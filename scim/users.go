package scim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/store"
)

// patchRetries is how often a PATCH without If-Match is re-applied when a
// concurrent write changed the resource between read and write.
const patchRetries = 3

func (s *Server) createUser(c echo.Context) error {
	ctx := c.Request().Context()
	dir := directoryFrom(ctx)
	d, err := s.readResource(c, SchemaUser, SchemaEnterpriseUser)
	if err != nil {
		return err
	}
	u := store.User{DirectoryID: dir}
	if err := userFields(d, &u); err != nil {
		return err
	}
	if u.Attributes, err = encodeDoc(d); err != nil {
		return err
	}
	// Everything the create reads and writes shares one transaction: on
	// PostgreSQL each transaction costs round trips of its own.
	var rv *store.Revocation
	err = s.writeTx(ctx, "users.create", func(ctx context.Context) error {
		// The store decides EmailVerified from the tenant's verified
		// domains in the INSERT itself (see emailVerified).
		if u, err = s.store.CreateDirectoryUser(ctx, u); err != nil {
			return userConflict(err)
		}
		// An SSO user adopted as inactive may have live sessions.
		if !u.Active {
			if rv, err = s.recordDeprovision(ctx, u, EventUserDeactivated); err != nil {
				return err
			}
		}
		ev, err := s.userEvent(ctx, u, d, false)
		if err != nil {
			return err
		}
		return s.emit(ctx, EventUserCreated, ev)
	})
	if err != nil {
		return err
	}
	if err := s.deprovision(ctx, u, rv); err != nil {
		return err
	}
	return s.writeUser(c, http.StatusCreated, dir, u)
}

func userConflict(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return &Error{Status: http.StatusConflict, ScimType: typeUniqueness, Detail: "a user with this userName already exists in this directory", Err: err}
	}
	return err
}

func (s *Server) writeUser(c echo.Context, status int, dir string, u store.User) error {
	d, err := s.userResource(dir, u)
	if err != nil {
		return err
	}
	return s.writeResource(c, status, dir, "Users", u.ID, u.Version, d)
}

// loadUser finds a user of the request's directory: another directory's or
// another tenant's user is not found, like a missing one.
func (s *Server) loadUser(ctx context.Context, id string) (store.User, error) {
	return loadIn(ctx, "User", store.PrefixUser, id, s.store.User, func(u store.User) string { return u.DirectoryID })
}

// loadIn reads the resource id (of the given kind, whose ids start with
// prefix) with get, and answers 404 unless it is one of the request's
// directory: a malformed id and another directory's or another tenant's
// resource are not found, like a missing one.
func loadIn[T any](ctx context.Context, kind, prefix, id string, get func(context.Context, string) (T, error), directory func(T) string) (T, error) {
	var none T
	if !store.HasPrefix(id, prefix) {
		return none, notFound(kind, id)
	}
	r, err := get(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && directory(r) != directoryFrom(ctx)) {
		return none, notFound(kind, id)
	}
	return r, err
}

func (s *Server) getUser(c echo.Context) error {
	ctx := c.Request().Context()
	u, err := s.loadUser(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	return s.writeUser(c, http.StatusOK, directoryFrom(ctx), u)
}

type listResponse struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	Resources    []doc    `json:"Resources"`
}

// listQuery is what a list request asks for.
type listQuery struct {
	filter       store.Filter
	sort         store.Sort
	start, count int // startIndex (1-based) and count
}

// listParams reads filter, sortBy and sortOrder, startIndex (1-based) and
// count (RFC 7644 §3.4.2): out-of-range values are clamped as the RFC says,
// garbage is refused.
func (s *Server) listParams(c echo.Context, ft filterTranslator) (listQuery, error) {
	q := listQuery{start: 1, count: 100}
	if raw := c.QueryParam("filter"); strings.TrimSpace(raw) != "" {
		e, err := ParseFilter(raw)
		if err != nil {
			return q, err
		}
		if q.filter, err = ft.translate(e); err != nil {
			return q, err
		}
	}
	if v := strings.TrimSpace(c.QueryParam("sortBy")); v != "" {
		field, err := ft.sortField(v)
		if err != nil {
			return q, err
		}
		q.sort.Field = field
		switch o := strings.TrimSpace(c.QueryParam("sortOrder")); {
		case o == "", strings.EqualFold(o, "ascending"):
		case strings.EqualFold(o, "descending"):
			q.sort.Descending = true
		default:
			return q, badValue("sortOrder must be ascending or descending")
		}
	}
	if v := c.QueryParam("startIndex"); v != "" {
		n, err := listInt(v)
		if err != nil {
			return q, badValue("startIndex must be an integer")
		}
		q.start = max(n, 1)
	}
	if v := c.QueryParam("count"); v != "" {
		n, err := listInt(v)
		if err != nil {
			return q, badValue("count must be an integer")
		}
		q.count = min(max(n, 0), s.maxCount)
	}
	return q, nil
}

// listInt reads startIndex or count. An integer too large for an int is
// still an integer (RFC 7644 §3.4.2.4 caps count and answers a startIndex
// past the end with an empty page): it is taken as the largest (or
// smallest) int, which the caller then bounds.
func listInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if !errors.Is(err, strconv.ErrRange) {
		return n, err
	}
	// Atoi stops at the overflow: the rest must be digits too.
	digits := strings.TrimLeft(v, "+-")
	if len(v)-len(digits) > 1 || strings.Trim(digits, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	if v[0] == '-' {
		return math.MinInt, nil
	}
	return math.MaxInt, nil
}

func (s *Server) listUsers(c echo.Context) error {
	dir := directoryFrom(c.Request().Context())
	return listResources(c, s, userFilters, func(ctx context.Context, q listQuery, offset, limit int) ([]store.User, int, error) {
		return s.store.FindUsers(ctx, store.UserQuery{DirectoryID: dir, Filter: q.filter, Sort: q.sort, Offset: offset, Limit: limit})
	}, func(_ context.Context, u store.User) (doc, error) { return s.userResource(dir, u) })
}

// listResources answers a list request (RFC 7644 §3.4.2) of the request's
// directory: find reads the page the request's filter, startIndex and
// count ask for, and resource makes each of its items a document, which
// the request's attributes and excludedAttributes then project.
func listResources[T any](c echo.Context, s *Server, ft filterTranslator,
	find func(ctx context.Context, q listQuery, offset, limit int) ([]T, int, error),
	resource func(ctx context.Context, item T) (doc, error)) error {
	ctx := c.Request().Context()
	q, err := s.listParams(c, ft)
	if err != nil {
		return err
	}
	start, count := q.start, q.count
	// count=0 asks for the total alone; the store is asked for one row.
	items, total, err := find(ctx, q, start-1, max(count, 1))
	if err != nil {
		return filterFailure(err)
	}
	if count == 0 {
		items = nil
	}
	out := listResponse{Schemas: []string{SchemaListResponse}, TotalResults: total, StartIndex: start, Resources: make([]doc, 0, len(items))}
	for _, it := range items {
		d, err := resource(ctx, it)
		if err != nil {
			return err
		}
		out.Resources = append(out.Resources, project(d, c.QueryParam("attributes"), c.QueryParam("excludedAttributes")))
	}
	out.ItemsPerPage = len(out.Resources)
	return writeJSON(c, http.StatusOK, out)
}

// filterFailure: the store refuses a comparison it cannot render (already
// screened by the translator); that is the client's filter, not our bug.
func filterFailure(err error) error {
	if errors.Is(err, store.ErrInvalid) {
		return &Error{Status: http.StatusBadRequest, ScimType: typeInvalidFilter, Detail: strings.TrimPrefix(err.Error(), "store: "), Err: err}
	}
	return err
}

func (s *Server) replaceUser(c echo.Context) error {
	want, err := ifMatch(c.Request().Header.Get("If-Match"))
	if err != nil {
		return err
	}
	d, err := s.readResource(c, SchemaUser, SchemaEnterpriseUser)
	if err != nil {
		return err
	}
	return s.writeUserChange(c, func(ctx context.Context) (store.User, doc, int64, error) {
		old, err := s.loadUser(ctx, c.Param("id"))
		if err != nil {
			return old, nil, 0, err
		}
		// RFC 7644 lets a replacement either clear an omitted attribute or
		// give it a value of the server's choosing. For active the only
		// safe one is what it was: a PUT that leaves it out (or sends
		// null) must not bring a deprovisioned user back. Reactivating
		// takes active: true.
		if v, ok := d["active"]; !ok || v == nil {
			d["active"] = old.Active
		}
		return old, d, want.version(old.Version), nil
	})
}

func (s *Server) patchUser(c echo.Context) error {
	want, err := ifMatch(c.Request().Header.Get("If-Match"))
	if err != nil {
		return err
	}
	req, err := s.readPatch(c, SchemaUser)
	if err != nil {
		return err
	}
	if len(req.Operations) == 0 {
		// Nothing to change: the user as it is, no write, no event.
		ctx := c.Request().Context()
		u, err := s.loadUser(ctx, c.Param("id"))
		if err != nil {
			return err
		}
		if !want.holds(u.Version) {
			return store.ErrVersionMismatch
		}
		return s.writeUser(c, http.StatusOK, directoryFrom(ctx), u)
	}
	return retryUnversioned(want.none(), func() error {
		load := func(ctx context.Context) (store.User, doc, int64, error) {
			old, err := s.loadUser(ctx, c.Param("id"))
			if err != nil {
				return old, nil, 0, err
			}
			d, err := decodeDoc(old.Attributes)
			if err != nil {
				return old, nil, 0, err
			}
			if err := applyPatch(d, req.Operations, SchemaUser); err != nil {
				return old, nil, 0, err
			}
			// As for PUT: removing active (or setting it to null) leaves
			// the user as they were; only active: true reactivates.
			if v, ok := d["active"]; !ok || v == nil {
				d["active"] = old.Active
			}
			version := want.version(old.Version)
			if version == 0 {
				version = old.Version
			}
			return old, d, version, nil
		}
		return s.writeUserChange(c, load)
	})
}

// retryUnversioned runs apply, a PATCH that reads and writes in one
// transaction, again when it lost a race with a concurrent write and the
// client sent no If-Match (unversioned): the client asked for its change,
// not for a version.
func retryUnversioned(unversioned bool, apply func() error) error {
	for attempt := 0; ; attempt++ {
		err := apply()
		if unversioned && attempt < patchRetries && errors.Is(err, store.ErrVersionMismatch) {
			continue
		}
		return err
	}
}

// writeUserChange runs load (which reads the user and computes its new
// document, d, to be written if the stored version is ifVersion) and the
// write in one transaction (PUT and PATCH), announces the change and, when
// the user is now inactive, revokes their sessions before answering.
func (s *Server) writeUserChange(c echo.Context, load func(ctx context.Context) (old store.User, d doc, ifVersion int64, err error)) error {
	var (
		old, u store.User
		rv     *store.Revocation
	)
	err := s.writeTx(c.Request().Context(), "users."+strings.ToLower(c.Request().Method), func(ctx context.Context) error {
		var (
			d         doc
			ifVersion int64
			err       error
		)
		if old, d, ifVersion, err = load(ctx); err != nil {
			return err
		}
		u = old
		if err := userFields(d, &u); err != nil {
			return err
		}
		if !strings.EqualFold(u.Email, old.Email) {
			if u.EmailVerified, err = s.emailVerified(ctx, u.Email); err != nil {
				return err
			}
		}
		if u.Attributes, err = encodeDoc(d); err != nil {
			return err
		}
		if unchangedUser(old, u) {
			// Nothing to write or announce; the answer is the user as
			// stored, with the version it had. An inactive user's
			// sessions are still ended, as below: the order is
			// idempotent and sends nothing when none is left.
			if ifVersion != 0 && ifVersion != old.Version {
				return store.ErrVersionMismatch
			}
			u = old
			if !u.Active {
				rv, err = s.recordDeprovision(ctx, u, EventUserUpdated)
			}
			return err
		}
		if u, err = s.store.UpdateUser(ctx, u, ifVersion); err != nil {
			return userConflict(err)
		}
		typ := EventUserUpdated
		if old.Active && !u.Active {
			typ = EventUserDeactivated
		}
		// Revoke whenever the user is inactive, not only on the
		// transition: a retried request must still end what an earlier
		// one could not (the order is idempotent).
		if !u.Active {
			if rv, err = s.recordDeprovision(ctx, u, typ); err != nil {
				return err
			}
		}
		ev, err := s.userEvent(ctx, u, d, true)
		if err != nil {
			return err
		}
		return s.emit(ctx, typ, ev)
	})
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.deprovision(ctx, u, rv); err != nil {
		return err
	}
	return s.writeUser(c, http.StatusOK, directoryFrom(ctx), u)
}

func (s *Server) deleteUser(c echo.Context) error {
	ctx := c.Request().Context()
	want, err := ifMatch(c.Request().Header.Get("If-Match"))
	if err != nil {
		return err
	}
	u, err := s.loadUser(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	d, err := decodeDoc(u.Attributes)
	if err != nil {
		return err
	}
	var rv *store.Revocation
	err = s.writeTx(ctx, "users.delete", func(ctx context.Context) error {
		if !want.none() {
			// The versioned write checks If-Match and holds the row
			// until the delete commits, so no change slips in between.
			if _, err := s.store.UpdateUser(ctx, u, want.version(u.Version)); err != nil {
				return err
			}
		}
		ev, err := s.userEvent(ctx, u, d, true)
		if err != nil {
			return err
		}
		ev.State = "inactive"
		if err := s.touchGroupsOf(ctx, u.ID); err != nil {
			return err
		}
		if err := s.store.DeleteUser(ctx, u.ID); err != nil {
			return err
		}
		if rv, err = s.recordDeprovision(ctx, u, EventUserDeleted); err != nil {
			return err
		}
		return s.emit(ctx, EventUserDeleted, ev)
	})
	if err != nil {
		return err
	}
	if err := s.deprovision(ctx, u, rv); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// touchGroupsOf gives every group userID is a member of a new version
// (and lastModified), in the transaction of ctx, before the user and so
// their memberships are deleted: the groups' representations lose a
// member, and a client holding the old ETag must get the new members
// (200, not 304 to If-None-Match) and be refused a stale If-Match (RFC
// 7644 §3.14). Groups are bumped before the user's row is deleted, the
// order in which a membership PATCH takes its locks (group, then user).
func (s *Server) touchGroupsOf(ctx context.Context, userID string) error {
	const pageSize = 500
	q := store.GroupQuery{DirectoryID: directoryFrom(ctx), Limit: pageSize,
		Filter: store.Cmp{Field: "member", Op: store.OpEq, Value: userID}}
	for {
		gs, _, err := s.store.FindGroups(ctx, q)
		if err != nil {
			return fmt.Errorf("groups of %s: %w", userID, err)
		}
		for _, g := range gs {
			if err := s.touchGroup(ctx, g); err != nil {
				return err
			}
		}
		if len(gs) < pageSize {
			return nil
		}
		q.Offset += pageSize
	}
}

// touchGroup writes g back unchanged, so that its version moves on. A
// concurrent change of g (its version moved between the read and the
// write) is retried on the group as it now is: it is not the client's
// If-Match that failed.
func (s *Server) touchGroup(ctx context.Context, g store.Group) error {
	for attempt := 0; ; attempt++ {
		_, err := s.store.UpdateGroup(ctx, g, g.Version)
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted meanwhile: no representation to renew
		}
		if !errors.Is(err, store.ErrVersionMismatch) || attempt == 4 {
			if err != nil {
				return fmt.Errorf("new version of group %s: %w", g.ID, err)
			}
			return nil
		}
		id := g.ID
		if g, err = s.store.Group(ctx, id); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reread group %s: %w", id, err)
		}
	}
}

// recordDeprovision records, in the transaction of ctx, the order to end
// every session of u: it commits with the deactivation or deletion, or
// not at all, so a session store outage cannot leave a deprovisioned user
// signed in.
func (s *Server) recordDeprovision(ctx context.Context, u store.User, why string) (*store.Revocation, error) {
	rv, err := s.store.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeUser, TenantID: u.TenantID, SubjectID: u.ID, Reason: "scim:" + why})
	if err != nil {
		return nil, fmt.Errorf("record revocation of %s: %w", u.ID, err)
	}
	return &rv, nil
}

// deprovision applies rv (if any) once its transaction has committed: the
// user's sessions end on every node and the applications that got tokens
// in them are sent back-channel logouts. If the session store is down the
// revocation stays queued and is applied as soon as it answers again, and
// the request still succeeds: the change and its revocation are durable.
// It then calls the OnDeprovision hook.
func (s *Server) deprovision(ctx context.Context, u store.User, rv *store.Revocation) error {
	if rv == nil {
		return nil
	}
	ended, err := s.revoker.Apply(ctx, *rv)
	if err != nil {
		s.log.WarnContext(ctx, "scim deprovisioned user; revocation queued until the session store answers",
			"tenant_id", u.TenantID, "user_id", u.ID, "revocation", rv.ID, "err", err)
	}
	if s.onDeprov != nil {
		if err := s.onDeprov(ctx, u.TenantID, u.ID); err != nil {
			return fmt.Errorf("deprovision hook for %s: %w", u.ID, err)
		}
	}
	s.log.InfoContext(ctx, "scim deprovisioned user", "tenant_id", u.TenantID, "user_id", u.ID, "sessions_revoked", len(ended))
	return nil
}

// emailVerified: an address is verified when its domain is one the tenant
// has proven it owns; the directory is the tenant's own IdP speaking.
func (s *Server) emailVerified(ctx context.Context, email string) (bool, error) {
	domain, ok := store.EmailDomain(email)
	if !ok {
		return false, nil
	}
	d, err := s.store.Domain(ctx, domain)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up domain: %w", err)
	}
	return d.Verified, nil
}
