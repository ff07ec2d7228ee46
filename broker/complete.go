package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/idbroker/idbroker/connections"
	"github.com/idbroker/idbroker/connections/oidc"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/tracing"
	"github.com/idbroker/idbroker/store"
)

// Event types of contract section 5 that the broker emits.
const (
	EventAuthSucceeded = "authentication.succeeded"
	EventAuthFailed    = "authentication.failed"
)

var _ connections.CompleteFunc = (*Provider)(nil).Complete

// Complete receives a finished upstream login from package connections.
// On success it provisions the user (just in time), opens the broker
// session, sets the SSO cookie and returns the browser to the application
// with a code. On failure the tenant admin gets the precise reason (an
// authentication.failed event) and the user a generic page with a
// reference id.
func (p *Provider) Complete(ctx context.Context, w http.ResponseWriter, r *http.Request, conn store.Connection, res connections.Result, upstreamErr error) {
	// connections hands over the plain request and response; the pages
	// and redirects below want an echo.Context, made on the echo the
	// request came through.
	c := p.ec.NewContext(r.WithContext(ctx), w)
	tenantKnown(ctx, conn.TenantID)
	if tracing.Recording(ctx) {
		tracing.SetConnection(ctx, conn.ID)
	}
	if err := p.complete(c, conn, res, upstreamErr); err != nil {
		p.log.ErrorContext(ctx, "broker: complete login", "err", err, "connection_id", conn.ID)
	}
}

func (p *Provider) complete(c echo.Context, conn store.Connection, res connections.Result, upstreamErr error) error {
	if errors.Is(upstreamErr, connections.ErrBusy) {
		// The tenant's sign-ins already use its share of this node: the
		// answer was left unread, so posting it again in a second (a
		// reload) can finish this sign-in. Not the IdP's failure (no
		// event) and not this node's (429, not 503: it serves the other
		// tenants; the refusal is counted in rate_limited_total).
		c.Response().Header().Set("Retry-After", busyRetryAfter)
		return p.page(c, http.StatusTooManyRequests, pageBusyTenant)
	}
	if conn.TenantID == "" && errors.Is(upstreamErr, connections.ErrUpstream) {
		// The connection could not be loaded (its database is down): it
		// is not an unknown one, and the IdP's answer may be a real
		// sign-in the user can repeat in a moment.
		return p.internal(c, upstreamErr)
	}
	if errors.Is(upstreamErr, connections.ErrUnavailable) {
		// The session store could not be read (Redis down): the broker's
		// outage, a 503 the browser may retry and a failure in the
		// tenant's SLO, not a sign-in the IdP failed (no
		// authentication.failed event blaming it).
		sloTenant(c.Request().Context(), conn.TenantID)
		return p.internal(c, upstreamErr)
	}
	if reason, ok := unverifiable(conn, res, upstreamErr); ok {
		return p.refuseUnverified(c, conn, reason, upstreamErr)
	}
	ctx := store.WithTenant(c.Request().Context(), conn.TenantID)
	// From here the answer is this tenant's sign-in completion, whatever
	// it is (see MeasureSignIn).
	sloTenant(ctx, conn.TenantID)
	fail := func(code, reason, clientID string) error {
		p.failed(ctx, c, conn, clientID, code, reason)
		return p.page(c, http.StatusForbidden, failedPage(code))
	}
	// The upstream's own verdict comes first: a response that failed
	// validation says why (signature, audience, replay…), whether or not
	// it named the application request it answers.
	if upstreamErr != nil {
		clientID := ""
		if res.RequestID != "" {
			a, err := p.takePending(ctx, res.RequestID)
			switch {
			case err == nil:
				clientID = a.ClientID
			case !errors.Is(err, errExpired):
				p.log.ErrorContext(ctx, "broker: take the failed login's request", "err", err)
			}
		}
		code := connections.Reason(upstreamErr)
		if code == "" {
			code = ReasonUpstream
		}
		if errors.Is(upstreamErr, connections.ErrUpstream) {
			// The IdP could not be reached on the way back (its token
			// endpoint or JWKS down, or answering 5xx): the user's
			// sign-in was fine and one started again in a moment may
			// succeed, so they are told it is unavailable (503 with
			// Retry-After, as at the start), not that it failed. The
			// tenant admin is told which URL failed. It is the tenant's
			// IdP's outage, not the broker's: the tenant's SLO counts it
			// as refused, as it did the 403 it was, not as a failure.
			p.failed(ctx, c, conn, clientID, code, upstreamErr.Error())
			sloOutcome(ctx, http.StatusForbidden)
			return p.page(c, http.StatusServiceUnavailable, pageConnectorDown)
		}
		return fail(code, upstreamErr.Error(), clientID)
	}
	if res.RequestID == "" {
		return p.completeIdPInitiated(ctx, c, conn, res, fail)
	}
	a, err := p.takePending(ctx, res.RequestID)
	if err != nil {
		if errors.Is(err, errExpired) {
			p.failed(ctx, c, conn, "", ReasonRequestExpired, "login request expired or already completed")
			return p.page(c, http.StatusBadRequest, pageExpired)
		}
		return p.internal(c, err)
	}
	if a.Browser != "" && (conn.Type == oidc.Name || p.https) && !p.sameBrowser(c, a.Browser) {
		return fail(connections.Reason(connections.ErrRequestMismatch),
			"the IdP's answer was opened in another browser than the one that started the sign-in (a link passed on, or an attempt to sign someone in to another account): start again from the application", a.ClientID)
	}
	if tracing.Recording(ctx) {
		var span trace.Span
		ctx, span = p.traceSignIn(ctx, a, conn)
		defer span.End()
		c.SetRequest(c.Request().WithContext(ctx))
		fail = func(code, reason, clientID string) error {
			tracing.Fail(span, code)
			p.failed(ctx, c, conn, clientID, code, reason)
			return p.page(c, http.StatusForbidden, failedPage(code))
		}
	}
	if a.ConnectionID != conn.ID {
		return fail(ReasonConnectionMismatch, "the identity provider answered on another connection than the login began on", a.ClientID)
	}
	// The session's id is drawn first so that the sign-in's event can name
	// it in the transaction below; the session itself is created after the
	// commit, once its claims (groups) are known.
	sid := store.NewID(store.PrefixSession)
	// Usage is billed once per authorization request.
	u, cl, err := p.provision(ctx, conn, res.Profile, sid, a.ClientID, a.ID, nil)
	if lf, ok := errors.AsType[*loginFailure](err); ok {
		return fail(lf.code, lf.reason, a.ClientID)
	}
	if err != nil {
		return p.internal(c, err)
	}
	// A session store that fails here leaves the event and the usage of a
	// sign-in the IdP and the store accepted, as the usage alone did
	// before; the browser gets the internal-error page.
	s, cookie, code, err := p.newSession(ctx, &a, sid, conn.TenantID, u.ID, conn.ID, cl, res.Profile.AuthTime, replacedSessions(a.Held, conn.TenantID, u.ID))
	if err != nil {
		return p.internal(c, err)
	}
	if err := p.stillAllowed(ctx, conn, u.ID, sid); err != nil {
		if lf, ok := errors.AsType[*loginFailure](err); ok {
			return fail(lf.code, lf.reason, a.ClientID)
		}
		return p.internal(c, err)
	}
	p.setCookie(c, cookie, s.ExpiresAt)
	return p.sendCode(c, a, code)
}

// failedPage is what the end user is told of a sign-in refused with
// reason code: a connection or tenant switched off while they were at
// the IdP gets the page the start would have shown them (nothing to
// retry, their IT administrator to ask), every other reason the generic
// one.
func failedPage(code string) pageText {
	switch code {
	case connections.Reason(connections.ErrConnectionInactive):
		return pageConnInactive
	case connections.Reason(connections.ErrTenantInactive):
		return pageTenantPaused
	}
	return pageLoginFailed
}

// stillAllowed closes the race between provision and the session: a
// deprovisioning, a pause or a deactivation that commits after provision
// read the user, tenant and connection as active, but before session sid
// existed, had its revocation applied to a session store without it, and
// nothing would ever end it. So, once the session exists, they are read
// again, from the database: a change committed before this read is seen,
// and the session is ended here (a *loginFailure); one committed after it
// finds the session when its revocation is applied. A store that cannot
// answer ends the session too (an error): it cannot be vouched for.
func (p *Provider) stillAllowed(ctx context.Context, conn store.Connection, userID, sid string) error {
	var lf *loginFailure
	st, err := p.store.Standing(ctx, conn.ID, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		err, lf = nil, &loginFailure{connections.Reason(connections.ErrTenantInactive), "tenant is deleted"}
	case err != nil:
	case !st.Tenant.Live():
		lf = &loginFailure{connections.Reason(connections.ErrTenantInactive), "tenant is " + string(st.Tenant)}
	case st.Connection != store.ConnectionActive:
		lf = &loginFailure{connections.Reason(connections.ErrConnectionInactive), "connection is not active"}
	case !st.UserActive:
		lf = &loginFailure{ReasonUserDeactivated, "user " + userID + " is deactivated"}
	}
	if err == nil && lf == nil {
		return nil
	}
	why := "sign-in raced a change that ends its sessions"
	if err != nil {
		why = "sign-in could not be checked again"
	}
	p.endNewSession(ctx, conn.TenantID, sid, why)
	if err != nil {
		return fmt.Errorf("broker: check the sign-in again: %w", err)
	}
	return lf
}

// endNewSession ends session sid, which no code or cookie has reached
// yet, durably: through the revocation queue when there is one, so that a
// session store that fails now still ends it once it answers.
// Each step is detached from the request (a browser that leaves must not
// leave the session behind) and bounded on its own, so that a database
// that hangs still leaves the direct revocation its time.
func (p *Provider) endNewSession(ctx context.Context, tenantID, sid, why string) {
	if p.revoker != nil {
		rctx, cancel := detached(ctx)
		rv, err := p.store.RecordRevocation(rctx, store.Revocation{Kind: store.RevokeSession, TenantID: tenantID, SubjectID: sid, Reason: why})
		cancel()
		if err == nil {
			actx, cancel := detached(ctx)
			defer cancel()
			if _, err := p.revoker.Apply(actx, rv); err != nil {
				p.log.WarnContext(ctx, "broker: revocation of a refused sign-in's session queued until the session store answers",
					"sid", sid, "revocation", rv.ID, "err", err)
			}
			return
		}
		p.log.ErrorContext(ctx, "broker: record revocation; revoking directly", "sid", sid, "err", err)
	}
	ectx, cancel := detached(ctx)
	defer cancel()
	if err := p.endSessionNow(ectx, sid); err != nil {
		p.log.ErrorContext(ctx, "broker: end a refused sign-in's session", "sid", sid, "err", err)
	}
}

// loginFailure is a sign-in refused for a reason the tenant admin is told
// (reason_code and reason of authentication.failed).
type loginFailure struct{ code, reason string }

func (e *loginFailure) Error() string { return "broker: sign-in refused: " + e.code + ": " + e.reason }

// provision is what every accepted upstream login does in the store,
// whether an application asked for it or the IdP sent it unsolicited: the
// tenant's status gate, the user (just in time), the usage records that
// meter it (billed exactly when it happened, once per loginID), the
// user's directory groups and the authentication.succeeded event naming
// session sid and clientID, with extra added to its data. It returns the
// user and the claims of the session to open, or a *loginFailure.
func (p *Provider) provision(ctx context.Context, conn store.Connection, prof connections.Profile, sid, clientID, loginID string, extra map[string]any) (store.User, userClaims, error) {
	if conn.Status != store.ConnectionActive {
		return store.User{}, userClaims{}, &loginFailure{connections.Reason(connections.ErrConnectionInactive), "connection is not active"}
	}
	if prof.IdPSubject == "" {
		return store.User{}, userClaims{}, &loginFailure{connections.Reason(connections.ErrProfile), "the identity provider sent no subject"}
	}
	attrs, _ := json.Marshal(prof.Raw)
	var (
		u         store.User
		dirGroups []string
	)
	// One transaction: on SQLite the reads run on the writer's
	// connection, whose cache no other writer invalidates, and the whole
	// is one group-commit member; on PostgreSQL it is one transaction
	// instead of four. Two first sign-ins of one new user at once (two
	// tabs, two nodes) race to create them; the loser's retry finds the
	// winner's user.
	err := retryConflict(func() error {
		return p.store.InTx(ctx, func(ctx context.Context) error {
			gate, err := p.store.SignInGate(ctx)
			if err != nil {
				return err
			}
			if !gate.Status.Live() {
				return errTenantNotLive{gate.Status}
			}
			jit := store.User{
				Email:         prof.Email,
				EmailVerified: prof.EmailVerified,
				GivenName:     prof.GivenName,
				FamilyName:    prof.FamilyName,
				DisplayName:   prof.Name,
				Active:        true,
				Attributes:    attrs,
			}
			if prof.KeyScheme != "" {
				prev := prof.PreviousIdPSubject
				if prev == prof.IdPSubject {
					prev = ""
				}
				// An id the IdP never reassigns (Entra's tenant and
				// object id): the user linked under the connection's key
				// of before keeps their id, and no one holding another
				// such id is taken for this person.
				u, err = p.store.UpsertStableSSOUser(ctx, conn.ID, prof.IdPSubject, store.StableSSOKey{
					Scheme: prof.KeyScheme, Previous: prev,
					SamePerson: func(u store.User) bool { return samePerson(u, prof) },
				}, jit)
			} else {
				u, err = p.store.UpsertSSOUser(ctx, conn.ID, prof.IdPSubject, jit)
			}
			if err != nil || !u.Active {
				return err
			}
			if gate.Policy == store.SignInDirectoryUsers && u.DirectoryID == "" {
				// The user the upsert found or made tells it, with no
				// read of its own: a user made just in time, or one
				// no directory of the tenant provisioned (made by a
				// sign-in before the policy, or released by a deleted
				// directory). The error rolls back whatever the upsert
				// wrote: no user is made, no subject linked.
				return errNotProvisioned{email: prof.Email}
			}
			if p.usage != nil {
				if err := p.usage.Login(ctx, u.ID, loginID); err != nil {
					return err
				}
			}
			if dirGroups, err = p.store.UserGroupNames(ctx, u.ID); err != nil {
				return err
			}
			data := map[string]any{
				"connection_id": conn.ID, "connection_type": conn.Type, "user_id": u.ID, "email": u.Email,
				"session_id": sid, "client_id": clientID, "request_id": httpserver.RequestID(ctx),
			}
			if prof.GroupsOverage {
				// For the vendor to alert on: the application got no
				// IdP groups for this user though they have some.
				data["groups_overage"] = true
			}
			maps.Copy(data, extra)
			return p.appendEvent(ctx, conn.TenantID, EventAuthSucceeded, data)
		})
	})
	if nl, ok := errors.AsType[errTenantNotLive](err); ok {
		return store.User{}, userClaims{}, &loginFailure{connections.Reason(connections.ErrTenantInactive), "tenant is " + string(nl.status)}
	}
	if np, ok := errors.AsType[errNotProvisioned](err); ok {
		return store.User{}, userClaims{}, &loginFailure{ReasonUserNotProvisioned, np.Error()}
	}
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return store.User{}, userClaims{}, &loginFailure{connections.Reason(connections.ErrProfile), "profile refused: " + err.Error()}
		}
		return store.User{}, userClaims{}, err
	}
	if !u.Active {
		return store.User{}, userClaims{}, &loginFailure{ReasonUserDeactivated, "user " + u.ID + " is deactivated"}
	}
	if prof.GroupsOverage {
		// Once per sign-in, after the transaction's retries.
		p.log.WarnContext(ctx, "broker: the IdP left the user's groups out (group overage): the application gets none of them from the IdP",
			"connection_id", conn.ID, "tenant_id", conn.TenantID, "user_id", u.ID, "session_id", sid)
	}
	groups := append(slices.Clone(prof.Groups), dirGroups...)
	slices.Sort(groups)
	groups = slices.Compact(groups)
	// Nil when the IdP left the user's groups out (group overage) and
	// nothing else gave any: the tokens then carry no groups claim,
	// rather than [] that an application would take for "in no group"
	// and drop the user's roles by.
	switch {
	case len(groups) > 0:
	case prof.GroupsOverage:
		groups = nil
	default:
		groups = []string{}
	}
	name := u.DisplayName
	if name == "" {
		name = joinName(u.GivenName, u.FamilyName)
	}
	return u, userClaims{
		Email: u.Email, EmailVerified: u.EmailVerified, Name: name, GivenName: u.GivenName, FamilyName: u.FamilyName,
		Groups: groups, ConnectionType: string(conn.Type), IdPSubject: prof.IdPSubject,
	}, nil
}

// samePerson reports whether u, linked to the connection under keys of
// before, may be the person prof describes: unless the attributes
// recorded at u's last sign-in give prof.PersonAttribute another value (a
// UPN of a person who left, given since to someone else, is a NameID that
// now names another object id).
func samePerson(u store.User, prof connections.Profile) bool {
	if prof.PersonAttribute == "" {
		return true
	}
	var rec map[string]any
	if json.Unmarshal(u.Attributes, &rec) != nil {
		return true
	}
	was, ok := firstString(rec[prof.PersonAttribute])
	if !ok {
		return true
	}
	now, _ := firstString(prof.Raw[prof.PersonAttribute])
	return strings.EqualFold(strings.TrimSpace(was), strings.TrimSpace(now))
}

// firstString is an attribute's value as recorded: a string or the first
// of a list of them.
func firstString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, v != ""
	case []string:
		if len(v) > 0 {
			return v[0], v[0] != ""
		}
	case []any:
		if len(v) > 0 {
			s, ok := v[0].(string)
			return s, ok && s != ""
		}
	}
	return "", false
}

// traceSignIn records, in the trace of the sign-in's authorization request,
// the upstream IdP round trip (from the browser leaving for the IdP to its
// answer arriving here) and starts, as its child, the span of what follows
// (provisioning, session, code), which the caller ends. Both are linked to
// the ACS or callback request's own span, in the trace of its own. ctx
// must carry a recording span (tracing.Recording).
func (p *Provider) traceSignIn(ctx context.Context, a pending, conn store.Connection) (context.Context, trace.Span) {
	tracing.SetClient(ctx, a.ClientID)
	ids := []attribute.KeyValue{
		tracing.TenantKey.String(conn.TenantID),
		tracing.ConnectionKey.String(conn.ID),
		tracing.ConnectionTypeKey.String(string(conn.Type)),
		tracing.ClientKey.String(a.ClientID),
	}
	ctx, upstream := tracing.StartFrom(ctx, a.Trace, SpanUpstream, a.Begun, ids...)
	ctx, span := tracing.Start(ctx, SpanComplete)
	span.SetAttributes(ids...)
	upstream.End()
	return ctx, span
}

// The names of the spans a sign-in adds to its authorization request's
// trace.
const (
	SpanUpstream = "sso.upstream"
	SpanComplete = "sso.complete"
)

// errTenantNotLive stops the completing transaction of a sign-in to a
// tenant that is not live (paused, cancelled…).
type errTenantNotLive struct{ status store.TenantStatus }

func (e errTenantNotLive) Error() string { return "broker: tenant is " + string(e.status) }

// errNotProvisioned stops the completing transaction of a sign-in to a
// tenant whose sign-in policy is store.SignInDirectoryUsers by someone
// none of its directories provisioned.
type errNotProvisioned struct{ email string }

func (e errNotProvisioned) Error() string {
	return "only users provisioned by one of the tenant's directories may sign in (sign_in_policy directory_users), and " +
		e.email + " is none of them: have the directory (SCIM) provision them first, or set the policy back to any"
}

// retryConflict runs fn up to three times while it fails with
// store.ErrConflict.
func retryConflict(fn func() error) error {
	err := fn()
	for i := 0; i < 2 && errors.Is(err, store.ErrConflict); i++ {
		err = fn()
	}
	return err
}

func joinName(given, family string) string {
	switch {
	case given == "":
		return family
	case family == "":
		return given
	}
	return given + " " + family
}

// Reasons of a failed login that the broker itself decides, beside the
// connection's (connections.Reason): the stable reason_code of
// authentication.failed.
const (
	ReasonNoRequest          = "no_application_request"
	ReasonRequestExpired     = "request_expired"
	ReasonConnectionMismatch = "connection_mismatch"
	ReasonUserDeactivated    = "user_deactivated"
	ReasonUserNotProvisioned = "user_not_provisioned"
	ReasonUpstream           = "upstream_error"
)

// failed records why a login failed, for the tenant admin: the
// authentication.failed event and the tenant's audit row, written
// together, carry the stable reason_code and the precise reason, and the
// log line the reference id the user was shown. Only answers that named a
// real connection and carried something to verify get here (see
// unverifiable): junk writes nothing. Past failureRecordBurst a minute
// on one connection, failures are only logged (failureSample).
func (p *Provider) failed(ctx context.Context, c echo.Context, conn store.Connection, clientID, code, reason string) {
	ref := httpserver.RequestID(ctx)
	reason = connections.OneLine(reason, maxReason)
	p.log.WarnContext(ctx, "broker: login failed", "reason_code", code, "reason", reason,
		"reference", ref, "tenant_id", conn.TenantID, "connection_id", conn.ID, "client_id", clientID)
	if p.onSignInFailed != nil {
		p.onSignInFailed(code)
	}
	if record, first := p.failures.allow(conn.ID, p.now()); !record {
		if first {
			p.log.WarnContext(ctx, "broker: too many failed logins on this connection; the rest of this minute's are logged, not recorded as events or audit rows",
				"tenant_id", conn.TenantID, "connection_id", conn.ID, "recorded", failureRecordBurst)
		}
		return
	}
	data := map[string]any{
		"connection_id": conn.ID, "connection_type": conn.Type, "client_id": clientID,
		"reason_code": code, "reason": reason, "request_id": ref,
	}
	// The audit row keeps the reason with email addresses reduced to
	// their domain: the chain keeps its rows for the tenant's life, and
	// cannot forget a person later erased. The event, with the whole
	// reason, goes with the event retention.
	details, _ := json.Marshal(map[string]any{
		"connection_type": conn.Type, "client_id": clientID, "reason_code": code, "reason": maskEmails(reason),
	})
	err := p.store.InTx(store.WithTenant(ctx, conn.TenantID), func(ctx context.Context) error {
		if err := p.appendEvent(ctx, conn.TenantID, EventAuthFailed, data); err != nil {
			return err
		}
		_, err := p.store.AppendAudit(ctx, store.AuditEvent{
			TenantID:  conn.TenantID,
			Actor:     loginActor(c),
			Action:    EventAuthFailed,
			Resource:  store.Resource{Type: "connection", ID: conn.ID, Name: conn.Name},
			Context:   details,
			RequestID: ref,
		})
		return err
	})
	if err != nil {
		p.log.ErrorContext(ctx, "broker: record failed login", "err", fmt.Errorf("broker: %w", err))
	}
}

// maxReason bounds the reason of a failed login kept in the log, the
// event and the audit row. Connectors already cut what an IdP wrote (its
// error_description, its StatusMessage) to a few hundred bytes; this is
// the backstop for any error text that reaches here whole, so that an IdP
// cannot fill the tenant's trail with one answer.
const maxReason = 2048

// loginActor is the browser behind a sign-in, as audit rows name it: a
// user not known yet (the login failed), with the client address (behind
// trusted proxies, as the server determines it) and User-Agent.
func loginActor(c echo.Context) store.Actor {
	ua := c.Request().UserAgent()
	if len(ua) > maxUserAgent {
		ua = strings.ToValidUTF8(ua[:maxUserAgent], "")
	}
	return store.Actor{Type: "user", IP: c.RealIP(), UserAgent: ua}
}

// emailAddress finds what looks like an email address in a reason.
var emailAddress = regexp.MustCompile(`[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)`)

// maskEmails replaces the local part of every email address in s, keeping
// its domain (which says which organisation's IdP answered).
func maskEmails(s string) string {
	return emailAddress.ReplaceAllString(s, "[redacted]@$1")
}

// maxUserAgent keeps a hostile User-Agent from bloating audit rows.
const maxUserAgent = 512

func (p *Provider) event(ctx context.Context, tenantID, typ string, data map[string]any) {
	if err := p.appendEvent(ctx, tenantID, typ, data); err != nil {
		p.log.ErrorContext(ctx, "broker: append event", "type", typ, "err", fmt.Errorf("broker: %w", err))
	}
}

func (p *Provider) appendEvent(ctx context.Context, tenantID, typ string, data map[string]any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = p.store.AppendEvent(ctx, store.Event{TenantID: tenantID, Type: typ, Data: b})
	return err
}
