package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// UserSessions lists a user's live broker sessions for the support page;
// the session stores of package sessions implement it.
type UserSessions interface {
	ListUser(ctx context.Context, tenantID, userID string) ([]sessions.Session, error)
}

// RevokeUserFunc ends every broker session of user id of the tenant in
// ctx on behalf of actor, running also in the revocation's transaction
// (adminportal.API.RevokeUserSessions: the operator API's own code path).
type RevokeUserFunc func(ctx context.Context, actor store.Actor, id string, also ...func(ctx context.Context, u store.User) error) error

// supportKind is what the support box took a query for.
type supportKind string

const (
	kindReference supportKind = "reference"
	kindEmail     supportKind = "email"
	kindDomain    supportKind = "domain"
)

// kindOf reads the support box: an email has an @, a domain a dot, and
// anything else is the reference id of an end user's error page.
func kindOf(q string) supportKind {
	switch {
	case strings.Contains(q, "@"):
		return kindEmail
	case strings.Contains(q, "."):
		return kindDomain
	}
	return kindReference
}

// maxSupportQuery bounds the box: an email is at most 320 characters.
const maxSupportQuery = 320

// support is the support desk's one box: paste the reference of an end
// user's error page, a user's email or a domain, and see the failed
// sign-in, the user in their tenant, or the tenant that owns the domain.
// Operators only: it reads across tenants, each read under the tenant
// found.
func (c *Console) support(ec echo.Context) error {
	q := strings.TrimSpace(ec.QueryParam("q"))
	d := map[string]any{"Query": q}
	render := func(status int) error {
		return c.render(ec, status, "support.html", page{Title: "Support", Nav: "support", D: d})
	}
	if q == "" {
		return render(http.StatusOK)
	}
	if len(q) > maxSupportQuery {
		d["Invalid"] = "That is too long to be a reference, an email or a domain."
		return render(http.StatusBadRequest)
	}
	kind := kindOf(q)
	d["Kind"] = string(kind)
	var err error
	switch kind {
	case kindReference:
		err = c.supportReference(ec, q, d)
	case kindEmail:
		err = c.supportEmail(ec, q, d)
	case kindDomain:
		err = c.supportDomain(ec, q, d)
	}
	if err != nil {
		return err
	}
	return render(http.StatusOK)
}

// failureRow is a failed sign-in as the support page shows it.
type failureRow struct {
	At, Reference                string
	Tenant                       store.Tenant
	ConnectionID, ConnectionName string
	ConnectionType, ClientID     string
	ReasonCode, Reason           string
}

// supportReference finds the failed sign-in an error page's reference
// names. The page showed the request id; the authentication.failed event
// of that request keeps it.
func (c *Console) supportReference(ec echo.Context, ref string, d map[string]any) error {
	if !httpserverID(ref) {
		d["Invalid"] = "A reference is the code under “Reference” on the error page, letters and digits."
		return nil
	}
	ctx := ec.Request().Context()
	ev, err := c.cfg.Store.FailedSignIn(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the page says nothing is kept under it, and why that may be
	}
	if err != nil {
		return err
	}
	var data struct {
		ConnectionID   string `json:"connection_id"`
		ConnectionType string `json:"connection_type"`
		ClientID       string `json:"client_id"`
		ReasonCode     string `json:"reason_code"`
		Reason         string `json:"reason"`
	}
	_ = json.Unmarshal(ev.Data, &data)
	row := failureRow{At: fmtTime(&ev.CreatedAt), Reference: ref, ConnectionID: data.ConnectionID, ConnectionType: data.ConnectionType,
		ClientID: data.ClientID, ReasonCode: data.ReasonCode, Reason: data.Reason}
	tctx := store.WithTenant(ctx, ev.TenantID)
	t, err := c.cfg.Store.Tenant(tctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	row.Tenant = t
	if t.ID != "" {
		conns, err := c.cfg.Store.Connections(tctx)
		if err != nil {
			return err
		}
		for _, conn := range conns {
			if conn.ID == data.ConnectionID {
				row.ConnectionName = conn.Name
			}
		}
	}
	d["Failure"] = row
	return nil
}

// httpserverID reports whether s can be a request id (what the error page
// shows): the server's own are 32 hex digits, a proxy's may differ.
func httpserverID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '_', b == ':':
		default:
			return false
		}
	}
	return true
}

// userRow is a user found by email, with what a support call needs.
type userRow struct {
	store.User
	Tenant    store.Tenant
	Directory string // the directory's name; "" for a user of SSO alone
	SignIns   []signInRow
	Sessions  []sessionRow
	// SessionsUnknown is set when the session store did not answer.
	SessionsUnknown bool
}

type signInRow struct {
	At, Outcome, Connection, ReasonCode, Reason, Reference string
}

// sessionRow shows a session without its id: the id is the SSO cookie's
// value, a credential.
type sessionRow struct {
	Started, Expires, ConnectionID string
	Apps                           int
}

// recentSignIns is how many of a user's latest sign-ins the page shows.
const recentSignIns = 10

// maxEmailTenants bounds the tenants an email's sign-ins lead the support
// page to.
const maxEmailTenants = 20

// supportEmail finds the users with an email: in the tenant that owns the
// email's domain (verified), in the tenant the operator names (tenant_id),
// and in the tenants where the email signed in within the events kept.
func (c *Console) supportEmail(ec echo.Context, email string, d map[string]any) error {
	ctx := ec.Request().Context()
	var tenantIDs []string
	_, domain, _ := strings.Cut(email, "@")
	if id, err := c.cfg.Store.ResolveDomain(ctx, strings.ToLower(domain)); err == nil {
		tenantIDs = append(tenantIDs, id)
		d["DomainTenant"] = id
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if tid := strings.TrimSpace(ec.QueryParam("tenant_id")); tid != "" {
		d["TenantID"] = tid
		if !store.HasPrefix(tid, store.PrefixTenant) {
			d["Invalid"] = "No tenant has that id."
			return nil
		}
		if len(tenantIDs) == 0 || tenantIDs[0] != tid {
			tenantIDs = append(tenantIDs, tid)
		}
	}
	// And every tenant where the email signed in lately, whoever owns
	// its domain: a contractor, a domain not verified yet.
	signedIn, err := c.cfg.Store.SignInTenants(ctx, email, maxEmailTenants)
	if err != nil {
		return err
	}
	for _, tid := range signedIn {
		if !slices.Contains(tenantIDs, tid) {
			tenantIDs = append(tenantIDs, tid)
		}
	}
	var rows []userRow
	for _, tid := range tenantIDs {
		tctx := store.WithTenant(ctx, tid)
		t, err := c.cfg.Store.Tenant(tctx)
		if errors.Is(err, store.ErrNotFound) {
			d["Invalid"] = "No tenant has that id."
			continue
		}
		if err != nil {
			return err
		}
		us, _, err := c.cfg.Store.FindUsers(tctx, store.UserQuery{Filter: store.Cmp{Field: "email", Op: store.OpEq, Value: email}, Limit: 20})
		if err != nil {
			return err
		}
		if len(us) == 0 {
			continue
		}
		dirs, err := c.cfg.Store.Directories(tctx)
		if err != nil {
			return err
		}
		conns, err := c.cfg.Store.Connections(tctx)
		if err != nil {
			return err
		}
		connName := map[string]string{}
		for _, conn := range conns {
			connName[conn.ID] = conn.Name
		}
		// The sign-in log is by email, as the portal's: the same rows the
		// tenant's admin sees, failures with the reference shown.
		log, err := c.cfg.Store.SignInLog(tctx, store.LogQuery{Actor: email, Limit: recentSignIns})
		if err != nil {
			return err
		}
		signIns := make([]signInRow, 0, len(log.Rows))
		for _, e := range log.Rows {
			var data struct {
				ConnectionID string `json:"connection_id"`
				ReasonCode   string `json:"reason_code"`
				Reason       string `json:"reason"`
				RequestID    string `json:"request_id"`
			}
			_ = json.Unmarshal(e.Data, &data)
			r := signInRow{At: fmtTime(&e.CreatedAt), Outcome: "succeeded", Connection: connName[data.ConnectionID],
				ReasonCode: data.ReasonCode, Reason: data.Reason, Reference: data.RequestID}
			if r.Connection == "" {
				r.Connection = data.ConnectionID
			}
			if e.Type == store.SignInFailed {
				r.Outcome = "failed"
			}
			signIns = append(signIns, r)
		}
		for _, u := range us {
			r := userRow{User: u, Tenant: t, SignIns: signIns}
			for _, dir := range dirs {
				if dir.ID == u.DirectoryID {
					r.Directory = dir.Name
				}
			}
			if c.cfg.Sessions != nil {
				ss, err := c.cfg.Sessions.ListUser(ctx, tid, u.ID)
				if err != nil {
					// The rest of the page still helps; the button
					// still works (the revocation is queued).
					c.log.WarnContext(ctx, "console: list a user's sessions", "tenant_id", tid, "user_id", u.ID, "err", err)
					r.SessionsUnknown = true
				}
				for _, s := range ss {
					r.Sessions = append(r.Sessions, sessionRow{Started: fmtTime(&s.AuthTime), Expires: fmtTime(&s.ExpiresAt),
						ConnectionID: s.ConnectionID, Apps: len(s.Apps)})
				}
			}
			rows = append(rows, r)
		}
	}
	d["Users"] = rows
	d["CanRevoke"] = c.cfg.RevokeUser != nil
	return nil
}

// supportDomain names the tenant that has verified a domain. Unverified
// domains are each tenant's own data: the tenants page searches names.
func (c *Console) supportDomain(ec echo.Context, domain string, d map[string]any) error {
	ctx := ec.Request().Context()
	id, err := c.cfg.Store.ResolveDomain(ctx, strings.ToLower(domain))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	t, err := c.cfg.Store.Tenant(store.WithTenant(ctx, id))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	d["Tenant"] = t
	return nil
}

// revokeUser ends every session of a user through the operator API's code
// path, which writes the tenant's audit row; the operators' trail gets
// its own row in the same transaction.
func (c *Console) revokeUser(ec echo.Context) error {
	if c.cfg.RevokeUser == nil {
		return c.notFound(ec)
	}
	id := ec.Param("id")
	if !store.HasPrefix(id, store.PrefixUser) {
		return c.notFound(ec)
	}
	ctx := ec.Request().Context()
	tenantID, err := c.cfg.Store.ResolveUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return c.notFound(ec)
	}
	if err != nil {
		return err
	}
	ctx = store.WithTenant(ctx, tenantID)
	httpserver.SetTenantID(ctx, tenantID)
	s, _ := sessionOf(ec)
	who := actor(ec, s.op.ID)
	err = c.cfg.RevokeUser(ctx, who, id, func(ctx context.Context, u store.User) error {
		// By id, as the tenant's row: the trail outlives a person erased.
		return c.auditOperator(ctx, who, "user.sessions_revoked", store.Resource{Type: "user", ID: u.ID},
			map[string]any{"tenant_id": tenantID})
	})
	var he *httpserver.Error
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		return c.notFound(ec)
	}
	if err != nil {
		return err
	}
	back := url.Values{"q": {ec.FormValue("q")}, "notice": {"sessions_revoked"}, "id": {id}}
	if tid := ec.FormValue("tenant_id"); tid != "" {
		back.Set("tenant_id", tid)
	}
	return ec.Redirect(http.StatusSeeOther, Path+"/support?"+back.Encode())
}
