package adminportal

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/store"
)

// revokeUserSessions ends every broker session of a user, everywhere: the
// revocation fans out to every broker node, whose introspection answers
// active:false at once, and the applications that got tokens receive
// back-channel logouts. The user id names no tenant, so it is resolved
// first and every later call runs under that tenant.
func (a *API) revokeUserSessions(c echo.Context) error {
	if err := refuseBody(c); err != nil {
		return err
	}
	ctx, id, err := a.userTenant(c)
	if err != nil {
		return err
	}
	if err := a.RevokeUserSessions(ctx, a.actor(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// userTenant resolves the path's user id, which names no tenant, to the
// request's context under the user's tenant: an operator API key is the
// one cross-tenant credential, and every store call after this runs
// under the tenant it finds. An id that is not a user's is 404.
func (a *API) userTenant(c echo.Context) (context.Context, string, error) {
	id := c.Param("id")
	if !store.HasPrefix(id, store.PrefixUser) {
		return nil, "", notFound("user")
	}
	ctx := c.Request().Context()
	tenantID, err := a.store.ResolveUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", notFound("user")
	}
	if err != nil {
		return nil, "", fmt.Errorf("resolve user: %w", err)
	}
	return withTenant(ctx, tenantID), id, nil
}

// RevokeUserSessions ends every broker session of user id of the tenant in
// ctx on behalf of actor, as POST /users/{id}/revoke_sessions does: the
// console's button takes this one code path. Each func in also runs in
// the revocation's transaction, after its audit row (the console adds the
// operators' own row there). An unknown user is the API's 404 error.
func (a *API) RevokeUserSessions(ctx context.Context, actor store.Actor, id string, also ...func(ctx context.Context, u store.User) error) error {
	tenantID, _ := store.TenantFrom(ctx)
	u, err := a.store.User(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("user")
	}
	if err != nil {
		return fmt.Errorf("load user: %w", err)
	}
	// The order to end the sessions commits with its audit row, then is
	// applied (the revoker announces the sessions it ended); if the session
	// store is down it stays queued and is applied as soon as it answers
	// (see events.Revoker).
	var rv store.Revocation
	err = a.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		rv, err = a.store.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeUser, TenantID: tenantID, SubjectID: u.ID, Reason: "operator"})
		if err != nil {
			return fmt.Errorf("record revocation: %w", err)
		}
		// The session.revoked event comes from the revoker, with the ids
		// of the sessions the order ended, as for every other cause.
		// The user by id alone: the audit chain keeps its rows for the
		// tenant's life, and a person deleted over SCIM must not stay in
		// it by their email (see "Data retention and erasure").
		if err := a.appendAudit(ctx, actor, "user.sessions_revoked", store.Resource{Type: "user", ID: u.ID},
			map[string]any{"revocation_id": rv.ID}); err != nil {
			return err
		}
		for _, fn := range also {
			if err := fn(ctx, u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.applyRevocation(ctx, &rv)
	return nil
}

// deleteUser erases a user who signed in by SSO alone (a person's request
// to be forgotten, or an account closed at the IdP): their row and the
// IdP identities linked to it go, their sessions end everywhere in the
// same transaction's revocation, and a later sign-in of the same person
// is a new user with a new id. A directory's user belongs to its SCIM
// client, which would push them back: 409, deprovision them at the IdP.
// What stays of them is documented (events until their retention; audit
// rows and usage by id).
func (a *API) deleteUser(c echo.Context) error {
	if err := refuseBody(c); err != nil {
		return err
	}
	ctx, id, err := a.userTenant(c)
	if err != nil {
		return err
	}
	tenantID, _ := store.TenantFrom(ctx)
	u, err := a.store.User(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("user")
	}
	if err != nil {
		return fmt.Errorf("load user: %w", err)
	}
	if u.DirectoryID != "" {
		return conflict("managed_by_directory", fmt.Sprintf("user %s is provisioned by directory %s: deprovision or delete them in the identity provider that pushes it", u.ID, u.DirectoryID), nil)
	}
	var rv store.Revocation
	err = a.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		// The order to end the sessions commits with the deletion, as a
		// SCIM deprovisioning's does: a session store that is down
		// cannot leave the deleted user signed in.
		rv, err = a.store.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeUser, TenantID: tenantID, SubjectID: u.ID, Reason: "operator"})
		if err != nil {
			return fmt.Errorf("record revocation: %w", err)
		}
		if err := a.store.DeleteUser(ctx, u.ID); err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		return a.audit(ctx, c, "user.deleted", store.Resource{Type: "user", ID: u.ID},
			map[string]any{"revocation_id": rv.ID})
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("user") // deleted at the same moment
	}
	if err != nil {
		return err
	}
	a.applyRevocation(ctx, &rv)
	return c.NoContent(http.StatusNoContent)
}
