package adminportal

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/sessions"
	"github.com/idbroker/idbroker/store"
)

// Input bounds.
const (
	maxNameLen       = 200
	maxCreateDomains = 50
)

// tenantJSON is a tenant as the API shows it.
type tenantJSON struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Status    string       `json:"status"`
	Tier      *string      `json:"tier"`
	Domains   []domainJSON `json:"domains"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
	// DeletedAt is set on a deleted tenant (GET /tenants?status=deleted).
	DeletedAt  *time.Time     `json:"deleted_at,omitempty"`
	RateLimits rateLimitsJSON `json:"rate_limits"`
	// SignInPolicy is who may sign in: any (a new subject becomes a user
	// just in time) or directory_users (only the tenant's directories'
	// users).
	SignInPolicy string `json:"sign_in_policy"`
}

// rateLimitsJSON are a tenant's rate-limit overrides; null means the
// default of its tier.
type rateLimitsJSON struct {
	SignInPerMinute *int `json:"sign_in_per_minute"`
}

func toTenantJSON(t store.Tenant, domains []store.Domain) tenantJSON {
	out := tenantJSON{
		ID:           t.ID,
		Name:         t.Name,
		Status:       string(t.Status),
		Domains:      make([]domainJSON, 0, len(domains)),
		CreatedAt:    t.CreatedAt,
		UpdatedAt:    t.UpdatedAt,
		DeletedAt:    t.DeletedAt,
		SignInPolicy: string(t.SignInPolicy),
	}
	if t.Tier != "" {
		out.Tier = &t.Tier
	}
	if t.SignInPerMinute > 0 {
		out.RateLimits.SignInPerMinute = &t.SignInPerMinute
	}
	for _, d := range domains {
		out.Domains = append(out.Domains, toDomainJSON(d))
	}
	return out
}

type createTenantRequest struct {
	Name    string          `json:"name"`
	Status  string          `json:"status"`
	Tier    string          `json:"tier"`
	Domains []domainRequest `json:"domains"`
	// SignInPolicy may be directory_users from the start: nobody signs in
	// until the directory made next provisions them.
	SignInPolicy string `json:"sign_in_policy"`
}

// createTenant registers a tenant and its domains in one transaction: a
// domain that cannot be claimed leaves no half-made tenant behind.
func (a *API) createTenant(c echo.Context) error {
	var req createTenantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	name, err := checkName("name", req.Name)
	if err != nil {
		return err
	}
	status := store.TenantActive
	switch store.TenantStatus(req.Status) {
	case "", store.TenantActive:
	case store.TenantTrial:
		status = store.TenantTrial
	default:
		return invalid("status", `status of a new tenant must be "active" or "trial"`)
	}
	tier, err := checkTier(req.Tier)
	if err != nil {
		return err
	}
	policy := store.SignInAny
	if req.SignInPolicy != "" {
		if policy, err = checkSignInPolicy(req.SignInPolicy); err != nil {
			return err
		}
	}
	if len(req.Domains) > maxCreateDomains {
		return invalid("domains", "at most %d domains can be added with the tenant", maxCreateDomains)
	}
	domains := make([]domainRequest, len(req.Domains))
	seen := make(map[string]bool, len(req.Domains))
	for i, d := range req.Domains {
		field := fmt.Sprintf("domains[%d].domain", i)
		name, err := normalizeDomain(d.Domain)
		if err != nil {
			return invalid(field, "%s: %v", field, err)
		}
		if seen[name] {
			return invalid(field, "%s: %s is listed twice", field, name)
		}
		seen[name] = true
		domains[i] = domainRequest{Domain: name, Verified: d.Verified}
	}

	var (
		t     store.Tenant
		added []store.Domain
	)
	err = a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		var err error
		t, err = a.store.CreateTenant(ctx, store.Tenant{Name: name, Status: status, Tier: tier, SignInPolicy: policy})
		if err != nil {
			return fmt.Errorf("create tenant: %w", err)
		}
		ctx = store.WithTenant(ctx, t.ID)
		if err := a.audit(ctx, c, "tenant.created", tenantResource(t), map[string]any{
			"status": t.Status, "tier": t.Tier, "sign_in_policy": t.SignInPolicy,
		}); err != nil {
			return err
		}
		for _, req := range domains {
			d, err := a.claimDomain(ctx, c, req)
			if err != nil {
				return err
			}
			added = append(added, d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	httpserver.SetTenantID(c.Request().Context(), t.ID)
	a.log.InfoContext(c.Request().Context(), "tenant created", "tenant_id", t.ID)
	return c.JSON(http.StatusCreated, toTenantJSON(t, added))
}

// listTenants pages through the tenants, of one status with ?status=;
// ?domain= finds the tenant holding that domain verified (the tenant its
// users' sign-ins go to). Any other parameter is a 400: ignored, a filter
// would answer every tenant as a match, and a backend taking the first one
// would act on the wrong customer.
func (a *API) listTenants(c echo.Context) error {
	if err := onlyParams(c, "limit", "after", "status", "domain"); err != nil {
		return err
	}
	p, err := parsePage(c, store.PrefixTenant)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	status := store.TenantStatus(c.QueryParam("status"))
	if status != "" && !status.Valid() {
		return invalid("status", "status must be one of trial, active, past_due, paused, cancelled, deleted")
	}
	var (
		tenants []store.Tenant
		next    string
	)
	if q, ok := c.QueryParams()["domain"]; ok {
		if tenants, err = a.tenantByDomain(ctx, q[0], status, p); err != nil {
			return err
		}
	} else if tenants, next, err = a.store.ListTenantsByStatus(ctx, status, p); err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	out := make([]tenantJSON, 0, len(tenants))
	for _, t := range tenants {
		domains, err := a.store.Domains(store.WithTenant(ctx, t.ID))
		if err != nil {
			return fmt.Errorf("list domains of %s: %w", t.ID, err)
		}
		out = append(out, toTenantJSON(t, domains))
	}
	return c.JSON(http.StatusOK, newList(out, next))
}

// tenantByDomain is the page of ?domain=: the tenant holding domain
// verified, if it has the status asked for (not deleted when none is) and
// sorts after the cursor; at most one.
func (a *API) tenantByDomain(ctx context.Context, domain string, status store.TenantStatus, p store.Page) ([]store.Tenant, error) {
	d, err := normalizeDomain(domain)
	if err != nil {
		return nil, invalid("domain", "domain must be a domain name, like acme.com")
	}
	id, err := a.store.ResolveDomain(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resolve domain: %w", err)
	}
	t, err := a.store.Tenant(withTenant(ctx, id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load tenant %s: %w", id, err)
	}
	switch {
	case status == "" && t.Status == store.TenantDeleted, status != "" && t.Status != status, p.After != "" && t.ID <= p.After:
		return nil, nil
	}
	return []store.Tenant{t}, nil
}

func (a *API) getTenant(c echo.Context) error {
	domains, err := a.store.Domains(c.Request().Context())
	if err != nil {
		return fmt.Errorf("list domains: %w", err)
	}
	return c.JSON(http.StatusOK, toTenantJSON(tenantOf(c), domains))
}

// updateTenantRequest is a PATCH: an absent field is left as it is. tier
// null removes the tier, as "" does (the tenant shows it as null); name,
// status, rate_limits and sign_in_policy always have a value, so null is
// refused.
type updateTenantRequest struct {
	Name         patchField[string]            `json:"name"`
	Status       patchField[string]            `json:"status"`
	Tier         patchField[string]            `json:"tier"`
	RateLimits   patchField[rateLimitsRequest] `json:"rate_limits"`
	SignInPolicy patchField[string]            `json:"sign_in_policy"`
}

// rateLimitsRequest sets overrides: a number sets one, null clears it (the
// tier's default applies again), an absent field is left as it is.
type rateLimitsRequest struct {
	SignInPerMinute json.RawMessage `json:"sign_in_per_minute"`
}

// change is one field of an audited update.
type change struct {
	From any `json:"from"`
	To   any `json:"to"`
}

// updateTenant changes name, tier or status. A status change follows the
// lifecycle (see checkTransition) and is announced as tenant.status_changed
// in the same transaction.
func (a *API) updateTenant(c echo.Context) error {
	var req updateTenantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := cmp.Or(refuseNull("name", req.Name.Null), refuseNull("status", req.Status.Null),
		refuseNull("rate_limits", req.RateLimits.Null), refuseNull("sign_in_policy", req.SignInPolicy.Null)); err != nil {
		return err
	}
	var u store.TenantUpdate
	if req.Name.Set {
		name, err := checkName("name", req.Name.Value)
		if err != nil {
			return err
		}
		u.Name = &name
	}
	if req.Tier.Set {
		tier, err := checkTier(req.Tier.Value) // null: Value is "", no tier
		if err != nil {
			return err
		}
		u.Tier = &tier
	}
	if req.Status.Set {
		s := store.TenantStatus(req.Status.Value)
		if !s.Valid() {
			return invalid("status", "status must be one of trial, active, past_due, paused, cancelled")
		}
		u.Status = &s
	}
	if req.RateLimits.Set {
		n, err := checkSignInLimit(req.RateLimits.Value.SignInPerMinute)
		if err != nil {
			return err
		}
		u.SignInPerMinute = n
	}
	if req.SignInPolicy.Set {
		p, err := checkSignInPolicy(req.SignInPolicy.Value)
		if err != nil {
			return err
		}
		u.SignInPolicy = &p
	}

	t, err := a.ChangeTenant(c.Request().Context(), a.actor(c), u)
	if err != nil {
		return err
	}
	domains, err := a.store.Domains(c.Request().Context())
	if err != nil {
		return fmt.Errorf("list domains: %w", err)
	}
	return c.JSON(http.StatusOK, toTenantJSON(t, domains))
}

// ChangeTenant applies u to the tenant in ctx on behalf of actor: the one
// code path of a tenant's change, shared by the operator API's PATCH and the
// console. A status change follows the lifecycle (see checkTransition), is
// audited and announced as tenant.status_changed in the same transaction,
// and a tenant left paused has its sessions ended everywhere (which sends
// the back-channel logouts). Errors are the API's (*httpserver.Error for a
// refused transition). Each func in also runs inside the transaction once
// the tenant has changed, with the tenant before and after: the console
// records which operator acted there, so that the change and its rows
// commit together.
func (a *API) ChangeTenant(ctx context.Context, actor store.Actor, u store.TenantUpdate, also ...func(ctx context.Context, before, after store.Tenant) error) (store.Tenant, error) {
	var (
		t  store.Tenant
		rv *store.Revocation
	)
	err := a.store.InTx(ctx, func(ctx context.Context) error {
		// Read again inside the transaction: the transition is checked
		// against the state being changed, not the one the caller saw.
		cur, err := a.store.Tenant(ctx)
		if err != nil {
			return fmt.Errorf("get tenant: %w", err)
		}
		changes := map[string]change{}
		if u.Name != nil && *u.Name != cur.Name {
			changes["name"] = change{cur.Name, *u.Name}
		}
		if u.Tier != nil && *u.Tier != cur.Tier {
			changes["tier"] = change{cur.Tier, *u.Tier}
		}
		if u.SignInPerMinute != nil && *u.SignInPerMinute != cur.SignInPerMinute {
			changes["rate_limits.sign_in_per_minute"] = change{limitOrNil(cur.SignInPerMinute), limitOrNil(*u.SignInPerMinute)}
		}
		if u.SignInPolicy != nil && *u.SignInPolicy != cur.SignInPolicy {
			changes["sign_in_policy"] = change{cur.SignInPolicy, *u.SignInPolicy}
		}
		if u.Status != nil && *u.Status != cur.Status {
			if err := checkTransition(cur.Status, *u.Status); err != nil {
				return err
			}
			changes["status"] = change{cur.Status, *u.Status}
		}
		// A paused or cancelled tenant signs no one in: end its sessions
		// everywhere (and so send back-channel logouts). Recorded on every
		// PATCH that leaves it so, so that a retry finishes whatever an
		// earlier one could not (the order is idempotent).
		next := cur.Status
		if u.Status != nil {
			next = *u.Status
		}
		if !next.Live() {
			if rv, err = a.recordTenantRevocation(ctx, cur.ID, "tenant."+string(next)); err != nil {
				return err
			}
		}
		if len(changes) == 0 {
			t = cur
			return nil
		}
		if next == store.TenantDeleted {
			// The chain's last step (cancelled → deleted) is the DELETE,
			// restorable alike; the PATCH's other fields change first.
			if t, err = a.patchThenDelete(ctx, actor, u, changes); err != nil {
				return err
			}
		} else {
			if t, err = a.store.UpdateTenant(ctx, u); err != nil {
				return fmt.Errorf("update tenant: %w", err)
			}
			if err := a.appendAudit(ctx, actor, "tenant.updated", tenantResource(t), map[string]any{"changes": changes}); err != nil {
				return err
			}
		}
		if _, ok := changes["status"]; ok {
			if err := a.statusChanged(ctx, cur.Status, t); err != nil {
				return err
			}
		}
		for _, f := range also {
			if err := f(ctx, cur, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.Tenant{}, err
	}
	// This node's routing cache learns of the change at once (the API's
	// middleware does it too, for every other change under /tenants/{id}).
	if a.connections != nil {
		a.connections.ForgetTenant(t.ID)
	}
	// A new tier or override needs telling no one: routing reads the
	// tenant's row, and its sign-in limit with it, on every sign-in.
	a.applyRevocation(ctx, rv)
	return t, nil
}

// patchThenDelete is a PATCH that moves a cancelled tenant to deleted, in
// the transaction of ctx: the other fields of u change, then the tenant is
// soft-deleted as DELETE /tenants/{id} does, audited as tenant.deleted with
// every change and the end of its restore window.
func (a *API) patchThenDelete(ctx context.Context, actor store.Actor, u store.TenantUpdate, changes map[string]change) (store.Tenant, error) {
	if len(changes) > 1 {
		rest := u
		rest.Status = nil
		if _, err := a.store.UpdateTenant(ctx, rest); err != nil {
			return store.Tenant{}, fmt.Errorf("update tenant: %w", err)
		}
	}
	t, err := a.store.SoftDeleteTenant(ctx)
	if err != nil {
		return store.Tenant{}, fmt.Errorf("delete tenant: %w", err)
	}
	err = a.appendAudit(ctx, actor, "tenant.deleted", tenantResource(t), map[string]any{
		"changes":       changes,
		"restore_until": t.DeletedAt.Add(RestoreWindow),
	})
	return t, err
}

// limitOrNil shows an unset override as null in the audit trail.
func limitOrNil(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

// statusChanged appends the tenant.status_changed event to the outbox.
func (a *API) statusChanged(ctx context.Context, from store.TenantStatus, t store.Tenant) error {
	data, err := json.Marshal(map[string]any{
		"tenant_id":       t.ID,
		"status":          t.Status,
		"previous_status": from,
	})
	if err != nil {
		return fmt.Errorf("encode tenant.status_changed: %w", err)
	}
	_, err = a.store.AppendEvent(ctx, store.Event{
		ID:       store.NewID(store.PrefixEvent),
		TenantID: t.ID,
		Type:     "tenant.status_changed",
		Data:     data,
	})
	if err != nil {
		return fmt.Errorf("append tenant.status_changed: %w", err)
	}
	return nil
}

// transitions is the tenant lifecycle, a chain: trial → active → past_due
// → paused → cancelled. Beside the chain, an operator may pause any live
// tenant and resume a paused one; every other move is refused, so a
// billing system that skips a step (a cancellation of an active tenant, a
// payment that clears past_due) goes through paused, where sign-ins stop
// and sessions end, as the step it skips would have had them. deleted is
// entered by DELETE from any status, or by a PATCH from cancelled, the
// chain's last step, and left by restore only; nothing returns to trial,
// nothing leaves cancelled but deletion.
var transitions = map[store.TenantStatus][]store.TenantStatus{
	store.TenantTrial:     {store.TenantActive, store.TenantPaused},
	store.TenantActive:    {store.TenantPastDue, store.TenantPaused},
	store.TenantPastDue:   {store.TenantPaused},
	store.TenantPaused:    {store.TenantActive, store.TenantCancelled},
	store.TenantCancelled: {store.TenantDeleted},
}

// checkTransition enforces transitions; anything else is 409.
func checkTransition(from, to store.TenantStatus) error {
	if slices.Contains(transitions[from], to) {
		return nil
	}
	article := "a"
	if from == store.TenantActive {
		article = "an" // the only status that starts with a vowel
	}
	msg := fmt.Sprintf("%s %s tenant cannot become %s", article, from, to)
	switch {
	case to == store.TenantDeleted:
		msg += ": delete it with DELETE /tenants/{id}, or cancel it first"
	default:
		msg += fmt.Sprintf(": it may become %s", joinStatuses(transitions[from]))
	}
	return conflict(codeInvalidTransition, msg, nil)
}

func joinStatuses(ss []store.TenantStatus) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}

// RestoreWindow is how long a deleted tenant stays restorable before the
// erase job removes it.
const RestoreWindow = 30 * 24 * time.Hour

// deleteTenant takes the tenant out of service at once: status deleted
// (its ids and credentials resolve nothing, so the API answers 404 for it
// and its objects and its directory tokens stop), audited and announced in
// one transaction, then its sessions end. The data stays restorable for
// RestoreWindow; then the erase job removes it.
func (a *API) deleteTenant(c echo.Context) error {
	ctx := c.Request().Context()
	cur := tenantOf(c)
	var (
		t  store.Tenant
		rv *store.Revocation
	)
	err := a.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if t, err = a.store.SoftDeleteTenant(ctx); err != nil {
			return fmt.Errorf("delete tenant: %w", err)
		}
		if err := a.appendAudit(ctx, a.actor(c), "tenant.deleted", tenantResource(t), map[string]any{
			"changes":       map[string]change{"status": {cur.Status, t.Status}},
			"restore_until": t.DeletedAt.Add(RestoreWindow),
		}); err != nil {
			return err
		}
		if err := a.statusChanged(ctx, cur.Status, t); err != nil {
			return err
		}
		rv, err = a.recordTenantRevocation(ctx, t.ID, "tenant.deleted")
		return err
	})
	if err != nil {
		return err
	}
	a.applyRevocation(ctx, rv)
	op, _ := operatorFrom(ctx)
	a.log.InfoContext(ctx, "tenant deleted; restorable until its erasure", "tenant_id", t.ID, "api_key_id", op.ID, "ip", c.RealIP())
	return c.NoContent(http.StatusNoContent)
}

// restoreTenant brings a deleted tenant back, in the status it had, within
// RestoreWindow of its deletion; after that it is 409 until the erase job
// has run, then 404 like any unknown tenant.
func (a *API) restoreTenant(c echo.Context) error {
	if err := refuseBody(c); err != nil {
		return err
	}
	id := c.Param("id")
	if !store.HasPrefix(id, store.PrefixTenant) {
		return notFound("tenant")
	}
	ctx := store.WithTenant(c.Request().Context(), id)
	httpserver.SetTenantID(ctx, id)
	var t store.Tenant
	err := a.store.InTx(ctx, func(ctx context.Context) error {
		// Past its window the tenant waits for the erase job, which must
		// not find it back in service halfway (RestoreWindow).
		cur, err := a.store.Tenant(ctx)
		if err == nil && cur.Status == store.TenantDeleted && cur.DeletedAt != nil {
			if until := cur.DeletedAt.Add(RestoreWindow); !a.now().Before(until) {
				return conflict(codeInvalidTransition, fmt.Sprintf("tenant %s can no longer be restored: its restore window ended at %s and it is being erased",
					cur.ID, until.UTC().Format(time.RFC3339)), nil)
			}
		}
		if t, err = a.store.RestoreTenant(ctx); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return a.notRestorable(ctx)
			}
			return fmt.Errorf("restore tenant: %w", err)
		}
		if err := a.appendAudit(ctx, a.actor(c), "tenant.restored", tenantResource(t), map[string]any{
			"changes": map[string]change{"status": {store.TenantDeleted, t.Status}},
		}); err != nil {
			return err
		}
		return a.statusChanged(ctx, store.TenantDeleted, t)
	})
	if err != nil {
		return err
	}
	if a.connections != nil {
		a.connections.ForgetTenant(t.ID)
	}
	domains, err := a.store.Domains(ctx)
	if err != nil {
		return fmt.Errorf("list domains: %w", err)
	}
	return c.JSON(http.StatusOK, toTenantJSON(t, domains))
}

// notRestorable answers a restore that found no deleted tenant: 409 for a
// tenant in service, which exists but is in no state to be restored, as
// the lifecycle's other refused transitions are; 404 for one that is
// unknown or already erased.
func (a *API) notRestorable(ctx context.Context) error {
	t, err := a.store.Tenant(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("tenant")
	}
	if err != nil {
		return fmt.Errorf("load tenant: %w", err)
	}
	return conflict(codeInvalidTransition, fmt.Sprintf("tenant %s is %s: only a deleted tenant can be restored", t.ID, t.Status), nil)
}

func tenantResource(t store.Tenant) store.Resource {
	return store.Resource{Type: "tenant", ID: t.ID, Name: t.Name}
}

// checkName trims a display name and refuses empty, overlong or control
// characters (which would garble logs and consoles).
func checkName(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", invalid(field, "%s is required", field)
	case !utf8.ValidString(s):
		return "", invalid(field, "%s must be valid UTF-8", field)
	case utf8.RuneCountInString(s) > maxNameLen:
		return "", invalid(field, "%s must be at most %d characters", field, maxNameLen)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "", invalid(field, "%s must not contain control characters", field)
	}
	return s, nil
}

// checkTier accepts the service tiers the broker knows, and "" for none.
func checkTier(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !store.ValidTier(s) {
		return "", invalid("tier", `tier must be "free", "growth" or "enterprise"`)
	}
	return s, nil
}

// checkSignInLimit reads a sign-in limit override: a whole number of
// sign-ins per minute, or null to clear it (a pointer to 0). Absent, it
// changes nothing (nil).
func checkSignInLimit(raw json.RawMessage) (*int, error) {
	const field = "rate_limits.sign_in_per_minute"
	if len(raw) == 0 {
		return nil, nil
	}
	n := 0
	if string(raw) != "null" {
		if err := json.Unmarshal(raw, &n); err != nil || n < 1 || n > store.MaxSignInPerMinute {
			return nil, invalid(field, "%s must be a whole number from 1 to %d, or null for the tier's default", field, store.MaxSignInPerMinute)
		}
	}
	return &n, nil
}

// recordTenantRevocation records, in the transaction of ctx, the order to
// end every session of the tenant (see store.RecordRevocation): it commits
// with the status change or deletion, or not at all. Without a sessions
// store (tests of the API alone) there are none to end.
func (a *API) recordTenantRevocation(ctx context.Context, tenantID, reason string) (*store.Revocation, error) {
	if a.revoker == nil {
		return nil, nil
	}
	rv, err := a.store.RecordRevocation(ctx, store.Revocation{Kind: store.RevokeTenant, TenantID: tenantID, Reason: reason})
	if err != nil {
		return nil, fmt.Errorf("record revocation of tenant %s: %w", tenantID, err)
	}
	return &rv, nil
}

// applyRevocation applies rv, if any, after its transaction committed. A
// session store that does not answer leaves it queued for the revokers'
// retries, and the request succeeds: the change and its revocation are
// durable, and the revocation takes effect as soon as the store is back.
func (a *API) applyRevocation(ctx context.Context, rv *store.Revocation) []sessions.Session {
	if rv == nil || a.revoker == nil {
		return nil
	}
	ended, err := a.revoker.Apply(ctx, *rv)
	if err != nil {
		a.log.WarnContext(ctx, "revocation queued until the session store answers", "revocation", rv.ID,
			"kind", rv.Kind, "tenant_id", rv.TenantID, "err", err)
	}
	return ended
}

// checkSignInPolicy reads a tenant's sign_in_policy.
func checkSignInPolicy(s string) (store.SignInPolicy, error) {
	p := store.SignInPolicy(s)
	if !p.Valid() {
		return "", invalid("sign_in_policy", `sign_in_policy must be "any" or "directory_users"`)
	}
	return p, nil
}
