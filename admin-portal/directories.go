package adminportal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// DirectoryTokenPrefix starts every SCIM directory bearer token, so that a
// leaked one is recognisable to people and secret scanners.
const DirectoryTokenPrefix = "idb_scim"

// mountDirectories registers the directory calls of contract section 4.
// Calls under /directories/{id} name no tenant: the directory id is
// resolved to its tenant first (operator keys are cross-tenant), and every
// store call after runs under that tenant.
func (a *API) mountDirectories(g, tenant *echo.Group) {
	if a.scimBaseURL == nil {
		return
	}
	tenant.POST("/directories", a.createDirectory)
	getAndHead(tenant, "/directories", a.listDirectories)
	d := g.Group("/directories/:dir", a.loadDirectory)
	getAndHead(d, "", a.getDirectory)
	d.DELETE("", a.deleteDirectory)
	d.POST("/token", a.rotateDirectoryToken)
	d.DELETE("/token/previous", a.endDirectoryTokenOverlap)
	getAndHead(d, "/users", a.listDirectoryUsers)
	getAndHead(d, "/users/:usr", a.getDirectoryUser)
	getAndHead(d, "/groups", a.listDirectoryGroups)
	getAndHead(d, "/groups/:grp", a.getDirectoryGroup)
}

// directoryJSON is a directory as the API shows it. BearerToken is set
// only in the answers that mint one: only its hash is kept.
type directoryJSON struct {
	ID          string  `json:"id"`
	TenantID    string  `json:"tenant_id"`
	Name        string  `json:"name"`
	SCIMBaseURL string  `json:"scim_base_url"`
	BearerToken *string `json:"bearer_token,omitempty"`
	// PreviousTokenExpiresAt is set while a rotation's replaced token
	// still works, and absent otherwise.
	PreviousTokenExpiresAt *time.Time `json:"previous_token_expires_at,omitempty"`
	CreatedAt              time.Time  `json:"created_at"`
	UpdatedAt              time.Time  `json:"updated_at"`
}

func (a *API) toDirectoryJSON(d store.Directory, token string) directoryJSON {
	out := directoryJSON{
		ID: d.ID, TenantID: d.TenantID, Name: d.Name, SCIMBaseURL: a.scimBaseURL(d.ID),
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
	if token != "" {
		out.BearerToken = &token
	}
	if exp := d.PreviousTokenExpiresAt; exp != nil && exp.After(time.Now()) {
		out.PreviousTokenExpiresAt = exp
	}
	return out
}

func directoryResource(d store.Directory) store.Resource {
	return store.Resource{Type: "directory", ID: d.ID, Name: d.Name}
}

type createDirectoryRequest struct {
	Name string `json:"name"`
}

// createDirectory adds a SCIM directory to the tenant and mints its bearer
// token, shown once. The directory and its audit row commit together.
func (a *API) createDirectory(c echo.Context) error {
	var req createDirectoryRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	name, err := checkName("name", req.Name)
	if err != nil {
		return err
	}
	token := secrets.NewToken(DirectoryTokenPrefix)
	var d store.Directory
	err = a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		var err error
		d, err = a.store.CreateDirectory(ctx, store.Directory{Name: name, TokenHash: secrets.HashToken(token)})
		if err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
		return a.audit(ctx, c, "directory.created", directoryResource(d), nil)
	})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, a.toDirectoryJSON(d, token))
}

func (a *API) listDirectories(c echo.Context) error {
	if err := onlyParams(c, "limit", "after"); err != nil {
		return err
	}
	p, err := parsePage(c, store.PrefixDirectory)
	if err != nil {
		return err
	}
	dirs, err := a.store.Directories(c.Request().Context())
	if err != nil {
		return fmt.Errorf("list directories: %w", err)
	}
	dirs, next := pageInMemory(dirs, func(d store.Directory) string { return d.ID }, p)
	out := make([]directoryJSON, len(dirs))
	for i, d := range dirs {
		out[i] = a.toDirectoryJSON(d, "")
	}
	return c.JSON(http.StatusOK, newList(out, next))
}

// loadDirectory resolves the :dir of directory routes to its tenant and
// loads the directory; unknown and malformed ids are the same 404.
func (a *API) loadDirectory(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("dir")
		if !store.HasPrefix(id, store.PrefixDirectory) {
			return notFound("directory")
		}
		ctx := c.Request().Context()
		tenantID, err := a.store.ResolveDirectory(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return notFound("directory")
		}
		if err != nil {
			return fmt.Errorf("resolve directory: %w", err)
		}
		ctx = withTenant(ctx, tenantID)
		d, err := a.store.Directory(ctx, id)
		if errors.Is(err, store.ErrNotFound) { // deleted in between
			return notFound("directory")
		}
		if err != nil {
			return fmt.Errorf("load directory %s: %w", id, err)
		}
		c.SetRequest(c.Request().WithContext(ctx))
		c.Set(directoryCtxKey, d)
		return next(c)
	}
}

const directoryCtxKey = "adminportal.directory"

func directoryOf(c echo.Context) store.Directory {
	d, _ := c.Get(directoryCtxKey).(store.Directory)
	return d
}

func (a *API) getDirectory(c echo.Context) error {
	return c.JSON(http.StatusOK, a.toDirectoryJSON(directoryOf(c), ""))
}

// EventDirectoryDeleted announces a deleted directory (WorkOS's name for
// it): consumers that mirror a directory's users and groups drop them.
const EventDirectoryDeleted = "dsync.deleted"

// deleteDirectory deletes a directory: its token stops working, its
// groups go, and its users stay the tenant's people, in no directory (see
// store.DeleteDirectory). The delete, its event and its audit row commit
// together.
func (a *API) deleteDirectory(c echo.Context) error {
	d := directoryOf(c)
	err := a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		gone, released, err := a.store.DeleteDirectory(ctx, d.ID)
		if errors.Is(err, store.ErrNotFound) { // deleted in between
			return notFound("directory")
		}
		if err != nil {
			return fmt.Errorf("delete directory %s: %w", d.ID, err)
		}
		data, err := json.Marshal(map[string]any{
			"id": gone.ID, "tenant_id": gone.TenantID, "name": gone.Name, "users_released": released,
		})
		if err != nil {
			return fmt.Errorf("encode %s: %w", EventDirectoryDeleted, err)
		}
		if _, err := a.store.AppendEvent(ctx, store.Event{TenantID: gone.TenantID, Type: EventDirectoryDeleted, Data: data}); err != nil {
			return fmt.Errorf("append %s: %w", EventDirectoryDeleted, err)
		}
		return a.audit(ctx, c, "directory.deleted", directoryResource(gone), map[string]any{"users_released": released})
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type rotateDirectoryTokenRequest struct {
	// PreviousTokenExpiresIn is how many seconds the replaced token keeps
	// working; absent or 0: it stops at once.
	PreviousTokenExpiresIn int64 `json:"previous_token_expires_in"`
}

// rotateDirectoryToken mints a new bearer token. By default the old one
// stops working with this call's commit, on every node (tokens are looked
// up, not cached: a remembered one is checked again in each write's first
// round trip). With previous_token_expires_in it keeps working until then,
// so that the IdP's provisioning can be switched to the new token without
// refused calls in between; the answer says until when.
func (a *API) rotateDirectoryToken(c echo.Context) error {
	d := directoryOf(c)
	var req rotateDirectoryTokenRequest
	if err := decodeOptionalJSON(c, &req); err != nil {
		return err
	}
	overlap, err := overlapOf("previous_token_expires_in", req.PreviousTokenExpiresIn)
	if err != nil {
		return err
	}
	token := secrets.NewToken(DirectoryTokenPrefix)
	var until *time.Time
	err = a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		var err error
		if until, err = a.store.RotateDirectoryToken(ctx, d.ID, secrets.HashToken(token), overlap); err != nil {
			return fmt.Errorf("rotate directory token: %w", err)
		}
		return a.audit(ctx, c, "directory.token_rotated", directoryResource(d),
			map[string]any{"previous_token_expires_at": until})
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("directory")
	}
	if err != nil {
		return err
	}
	d.UpdatedAt = time.Now().UTC()
	out := a.toDirectoryJSON(d, token)
	out.PreviousTokenExpiresAt = until
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// endDirectoryTokenOverlap stops the token the last rotation kept working,
// before its overlap ends: for a replaced token found leaked once the IdP
// already holds the new one. Idempotent: 204 whether or not one was
// still working; the audit trail records only an overlap actually ended.
func (a *API) endDirectoryTokenOverlap(c echo.Context) error {
	d := directoryOf(c)
	err := a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		ended, err := a.store.EndDirectoryTokenOverlap(ctx, d.ID)
		if err != nil || !ended {
			return err
		}
		return a.audit(ctx, c, "directory.previous_token_revoked", directoryResource(d), nil)
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("directory")
	}
	if err != nil {
		return fmt.Errorf("end directory token overlap: %w", err)
	}
	return c.NoContent(http.StatusNoContent)
}

// directoryUserJSON is a SCIM-provisioned user as the operator API shows
// it: the normalised fields, not the SCIM document.
type directoryUserJSON struct {
	ID          string      `json:"id"`
	DirectoryID string      `json:"directory_id"`
	TenantID    string      `json:"tenant_id"`
	ExternalID  *string     `json:"external_id"`
	UserName    string      `json:"user_name"`
	Email       *string     `json:"email"`
	Emails      []emailJSON `json:"emails"`
	FirstName   *string     `json:"first_name"`
	LastName    *string     `json:"last_name"`
	DisplayName *string     `json:"display_name"`
	State       string      `json:"state"` // active or inactive
	Groups      []string    `json:"groups"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

type emailJSON struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary"`
}

// optional maps "" to null, so that clients need not guess whether an
// empty string is a value.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toDirectoryUserJSON(u store.User, groups []string) directoryUserJSON {
	out := directoryUserJSON{
		ID: u.ID, DirectoryID: u.DirectoryID, TenantID: u.TenantID, ExternalID: optional(u.ExternalID),
		UserName: u.UserName, Email: optional(u.Email), Emails: scimEmails(u),
		FirstName: optional(u.GivenName), LastName: optional(u.FamilyName), DisplayName: optional(u.DisplayName),
		State: "active", Groups: groups, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
	if !u.Active {
		out.State = "inactive"
	}
	if out.Groups == nil {
		out.Groups = []string{}
	}
	return out
}

// scimEmails reads the emails of the SCIM document the IdP sent; the
// store keeps the primary one in a column of its own.
func scimEmails(u store.User) []emailJSON {
	var doc struct {
		Emails []struct {
			Value   string `json:"value"`
			Type    string `json:"type"`
			Primary any    `json:"primary"` // Entra sends "True" as often as true
		} `json:"emails"`
	}
	out := []emailJSON{}
	if len(u.Attributes) > 0 && json.Unmarshal(u.Attributes, &doc) == nil {
		for _, e := range doc.Emails {
			v := strings.TrimSpace(e.Value)
			if v == "" {
				continue
			}
			var primary bool
			switch p := e.Primary.(type) {
			case bool:
				primary = p
			case string:
				primary = strings.EqualFold(p, "true")
			}
			out = append(out, emailJSON{Value: v, Type: e.Type, Primary: primary})
		}
	}
	if len(out) == 0 && u.Email != "" {
		out = append(out, emailJSON{Value: u.Email, Primary: true})
	}
	return out
}

// listDirectoryUsers pages through the users the directory provisioned,
// in creation order, with the names of their groups; ?group= keeps the
// members of one of its groups. A parameter it does not know is refused:
// ignored, a filter would answer every user as if they matched.
func (a *API) listDirectoryUsers(c echo.Context) error {
	if err := onlyParams(c, "limit", "after", "group"); err != nil {
		return err
	}
	p, err := parsePage(c, store.PrefixUser)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var (
		users []store.User
		next  string
	)
	if gid := c.QueryParam("group"); gid != "" {
		if _, err := a.directoryGroup(c, gid); err != nil {
			return err
		}
		ids, nextID, err := a.store.GroupMembers(ctx, gid, p)
		if err != nil {
			return fmt.Errorf("members of %s: %w", gid, err)
		}
		for _, id := range ids {
			u, err := a.store.User(ctx, id)
			if errors.Is(err, store.ErrNotFound) { // deleted since
				continue
			}
			if err != nil {
				return fmt.Errorf("member %s: %w", id, err)
			}
			users = append(users, u)
		}
		next = nextID
	} else {
		q := store.UserQuery{DirectoryID: directoryOf(c).ID, Limit: p.Limit + 1}
		if p.After != "" {
			q.Filter = store.Cmp{Field: "id", Op: store.OpGt, Value: p.After}
		}
		found, _, err := a.store.FindUsers(ctx, q)
		if err != nil {
			return fmt.Errorf("list directory users: %w", err)
		}
		users, next = cutPage(found, p.Limit, func(u store.User) string { return u.ID })
	}
	out := make([]directoryUserJSON, 0, len(users))
	for _, u := range users {
		groups, err := a.store.UserGroupNames(ctx, u.ID)
		if err != nil {
			return fmt.Errorf("groups of %s: %w", u.ID, err)
		}
		out = append(out, toDirectoryUserJSON(u, groups))
	}
	return c.JSON(http.StatusOK, newList(out, next))
}

// getDirectoryUser answers one user of the directory, as its list shows
// them: what a consumer of a membership event (which names only the
// user's id) looks up.
func (a *API) getDirectoryUser(c echo.Context) error {
	id := c.Param("usr")
	if !store.HasPrefix(id, store.PrefixUser) {
		return notFound("user")
	}
	ctx := c.Request().Context()
	u, err := a.store.User(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.DirectoryID != directoryOf(c).ID) {
		return notFound("user")
	}
	if err != nil {
		return fmt.Errorf("get directory user %s: %w", id, err)
	}
	groups, err := a.store.UserGroupNames(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("groups of %s: %w", u.ID, err)
	}
	return c.JSON(http.StatusOK, toDirectoryUserJSON(u, groups))
}

// directoryGroup loads group id of the directory of c: 404 for a
// malformed id, or one of another directory or tenant.
func (a *API) directoryGroup(c echo.Context, id string) (store.Group, error) {
	if !store.HasPrefix(id, store.PrefixGroup) {
		return store.Group{}, notFound("group")
	}
	g, err := a.store.Group(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && g.DirectoryID != directoryOf(c).ID) {
		return store.Group{}, notFound("group")
	}
	if err != nil {
		return store.Group{}, fmt.Errorf("get directory group %s: %w", id, err)
	}
	return g, nil
}

// directoryGroupJSON is a SCIM group as the operator API shows it.
type directoryGroupJSON struct {
	ID          string    `json:"id"`
	DirectoryID string    `json:"directory_id"`
	TenantID    string    `json:"tenant_id"`
	ExternalID  *string   `json:"external_id"`
	Name        string    `json:"name"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toDirectoryGroupJSON(g store.Group) directoryGroupJSON {
	return directoryGroupJSON{
		ID: g.ID, DirectoryID: g.DirectoryID, TenantID: g.TenantID, ExternalID: optional(g.ExternalID),
		Name: g.DisplayName, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt,
	}
}

func (a *API) getDirectoryGroup(c echo.Context) error {
	g, err := a.directoryGroup(c, c.Param("grp"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toDirectoryGroupJSON(g))
}

func (a *API) listDirectoryGroups(c echo.Context) error {
	if err := onlyParams(c, "limit", "after"); err != nil {
		return err
	}
	p, err := parsePage(c, store.PrefixGroup)
	if err != nil {
		return err
	}
	q := store.GroupQuery{DirectoryID: directoryOf(c).ID, Limit: p.Limit + 1}
	if p.After != "" {
		q.Filter = store.Cmp{Field: "id", Op: store.OpGt, Value: p.After}
	}
	groups, _, err := a.store.FindGroups(c.Request().Context(), q)
	if err != nil {
		return fmt.Errorf("list directory groups: %w", err)
	}
	groups, next := cutPage(groups, p.Limit, func(g store.Group) string { return g.ID })
	out := make([]directoryGroupJSON, len(groups))
	for i, g := range groups {
		out[i] = toDirectoryGroupJSON(g)
	}
	return c.JSON(http.StatusOK, newList(out, next))
}

// cutPage trims a limit+1 result to limit and returns the cursor of the
// next page ("" on the last one).
func cutPage[T any](items []T, limit int, id func(T) string) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, id(items[limit-1])
}
