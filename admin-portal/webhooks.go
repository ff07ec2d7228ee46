package adminportal

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/events"
	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/internal/secrets"
	"github.com/idbroker/idbroker/store"
)

// WebhookSecretPrefix starts every webhook signing secret.
const WebhookSecretPrefix = "idb_whsec"

// maxWebhookEvents bounds a subscription list (the contract has fewer
// types than this).
const maxWebhookEvents = 50

// mountEvents registers the event stream and webhook calls.
func (a *API) mountEvents(g *echo.Group) {
	getAndHead(g, "/events", a.listEvents)
	g.POST("/webhooks", a.createWebhook)
	getAndHead(g, "/webhooks", a.listWebhooks)
	w := g.Group("/webhooks/:wh", a.loadWebhook)
	getAndHead(w, "", a.getWebhook)
	w.PATCH("", a.updateWebhook)
	w.DELETE("", a.deleteWebhook)
	w.POST("/secret", a.rotateWebhookSecret)
	getAndHead(w, "/deliveries", a.listDeliveries)
	w.POST("/deliveries/:dlv/redeliver", a.redeliverDelivery)
	w.POST("/recover", a.recoverDeliveries)
}

// WebhookSecretOverlap is how long after a rotation deliveries are signed
// with the replaced secret too.
const WebhookSecretOverlap = 24 * time.Hour

type createWebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// webhookJSON is a webhook as the API shows it. Secret is set only in the
// answer to its creation; it is kept sealed to sign deliveries, never shown
// again.
type webhookJSON struct {
	ID      string   `json:"id"`
	URL     string   `json:"url"`
	Events  []string `json:"events"`
	Enabled bool     `json:"enabled"`
	Secret  *string  `json:"secret,omitempty"`
	// PreviousSecretExpiresAt: until then, after a rotation, deliveries
	// carry the replaced secret's signature too; null otherwise.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	CreatedAt               time.Time  `json:"created_at"`
	// DisabledReason says who disabled a disabled webhook: "operator"
	// (PATCH with enabled false) or "failing" (the dispatcher, after every
	// attempt failed for days; DisabledAt is when); null while enabled.
	DisabledReason *string    `json:"disabled_reason"`
	DisabledAt     *time.Time `json:"disabled_at"`
	// FailingSince is the first failed attempt since the last successful
	// one (null while attempts succeed); LastFailureAt and LastFailure
	// the latest failed attempt, kept after a success.
	FailingSince  *time.Time `json:"failing_since"`
	LastFailureAt *time.Time `json:"last_failure_at"`
	LastFailure   *string    `json:"last_failure"`
}

// Values of webhookJSON.DisabledReason.
const (
	webhookDisabledByOperator = "operator"
	webhookDisabledFailing    = store.WebhookDisabledFailing
)

func toWebhookJSON(w store.Webhook, withSecret bool) webhookJSON {
	out := webhookJSON{ID: w.ID, URL: w.URL, Events: w.Events, Enabled: !w.Disabled, CreatedAt: w.CreatedAt,
		FailingSince: w.FailingSince, LastFailureAt: w.LastFailureAt, LastFailure: optional(w.LastFailure)}
	if w.Disabled {
		reason := webhookDisabledByOperator
		if w.DisabledReason == webhookDisabledFailing {
			reason, out.DisabledAt = webhookDisabledFailing, w.DisabledAt
		}
		out.DisabledReason = &reason
	}
	if exp := w.PreviousSecretExpiresAt; exp != nil && exp.After(time.Now()) {
		out.PreviousSecretExpiresAt = exp
	}
	if out.Events == nil {
		out.Events = []string{}
	}
	if withSecret {
		s := w.Secret
		out.Secret = &s
	}
	return out
}

// createWebhook registers an endpoint for the listed event types ("*" for
// all). A host written as a forbidden address is refused here; whether a
// name may be reached is decided at each delivery, after DNS resolution,
// by the dispatcher's client: a check here could be undone by the next
// DNS answer.
func (a *API) createWebhook(c echo.Context) error {
	var req createWebhookRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := checkWebhookURL(req.URL, a.allowPrivate); err != nil {
		return err
	}
	subs, err := checkWebhookEvents(req.Events)
	if err != nil {
		return err
	}
	var w store.Webhook
	err = a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		var err error
		w, err = a.store.CreateWebhook(ctx, store.Webhook{
			ID:     store.NewID(store.PrefixWebhook),
			URL:    req.URL,
			Events: subs,
			Secret: secrets.NewToken(WebhookSecretPrefix),
		})
		if err != nil {
			return fmt.Errorf("create webhook: %w", err)
		}
		return a.auditVendor(ctx, c, "webhook.created", store.Resource{Type: "webhook", ID: w.ID},
			// The host only: some receivers carry their secret in the path.
			map[string]any{"host": webhookHost(w.URL), "events": w.Events})
	})
	if err != nil {
		return err
	}
	a.log.InfoContext(c.Request().Context(), "webhook created", "webhook_id", w.ID, "events", w.Events)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, toWebhookJSON(w, true))
}

func webhookHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// checkWebhookURL accepts absolute http(s) URLs with a host, no
// credentials and no fragment, whose host is not a forbidden address
// (checkOutboundHost).
func checkWebhookURL(raw string, allowPrivate bool) error {
	const field = "url"
	if strings.TrimSpace(raw) == "" {
		return invalid(field, "url is required")
	}
	if len(raw) > maxURILen {
		return invalid(field, "url is longer than %d characters", maxURILen)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return invalid(field, "url must be an absolute http or https URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return invalid(field, "url must use https (or http)")
	case u.Host == "" || u.Hostname() == "":
		return invalid(field, "url has no host")
	case u.User != nil:
		return invalid(field, "url must not carry credentials: deliveries are authenticated by their signature")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return invalid(field, "url must not contain a fragment")
	}
	return checkOutboundHost(field, u, allowPrivate)
}

// checkWebhookEvents requires at least one contract event type, or "*"
// alone, each listed once.
func checkWebhookEvents(list []string) ([]string, error) {
	const field = "events"
	if len(list) == 0 {
		return nil, invalid(field, `events needs at least one event type, or "*" for all`)
	}
	if len(list) > maxWebhookEvents {
		return nil, invalid(field, "events lists at most %d types", maxWebhookEvents)
	}
	seen := make(map[string]bool, len(list))
	for i, t := range list {
		f := fmt.Sprintf("events[%d]", i)
		switch {
		case t == events.AllTypes && len(list) > 1:
			return nil, invalid(f, `"*" already subscribes to every type: list it alone`)
		case t != events.AllTypes && !events.KnownType(t):
			return nil, invalid(f, "%s: %q is not an event type; known types: %s", f, t, strings.Join(events.Types(), ", "))
		case seen[t]:
			return nil, invalid(f, "%s: %s is listed twice", f, t)
		}
		seen[t] = true
	}
	return list, nil
}

func (a *API) listWebhooks(c echo.Context) error {
	if err := onlyParams(c, "limit", "after"); err != nil {
		return err
	}
	p, err := parsePage(c, store.PrefixWebhook)
	if err != nil {
		return err
	}
	ws, err := a.store.Webhooks(c.Request().Context())
	if err != nil {
		return fmt.Errorf("list webhooks: %w", err)
	}
	ws, next := pageInMemory(ws, func(w store.Webhook) string { return w.ID }, p)
	out := make([]webhookJSON, len(ws))
	for i, w := range ws {
		out[i] = toWebhookJSON(w, false)
	}
	return c.JSON(http.StatusOK, newList(out, next))
}

// loadWebhook loads the :wh of webhook routes; unknown and malformed ids
// are the same 404.
func (a *API) loadWebhook(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("wh")
		if !store.HasPrefix(id, store.PrefixWebhook) {
			return notFound("webhook")
		}
		w, err := a.store.Webhook(c.Request().Context(), id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && w.DeletedAt != nil) {
			return notFound("webhook")
		}
		if err != nil {
			return fmt.Errorf("load webhook %s: %w", id, err)
		}
		c.Set(webhookCtxKey, w)
		return next(c)
	}
}

const webhookCtxKey = "adminportal.webhook"

func webhookOf(c echo.Context) store.Webhook {
	w, _ := c.Get(webhookCtxKey).(store.Webhook)
	return w
}

func (a *API) getWebhook(c echo.Context) error {
	return c.JSON(http.StatusOK, toWebhookJSON(webhookOf(c), false))
}

// updateWebhookRequest is a PATCH: absent fields are left alone, and none
// of them can be null.
type updateWebhookRequest struct {
	URL     patchField[string]   `json:"url"`
	Events  patchField[[]string] `json:"events"`
	Enabled patchField[bool]     `json:"enabled"`
}

// updateWebhook changes a webhook's URL, events or enabled, each checked
// as createWebhook checks it. Disabling ends the deliveries the webhook was
// still owed (they are dead letters, last_error saying why); events
// committed while it is disabled are not delivered to it, then or later.
// Narrowing its events ends, likewise, what it was owed of the types left
// out.
func (a *API) updateWebhook(c echo.Context) error {
	cur := webhookOf(c)
	var req updateWebhookRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := cmp.Or(refuseNull("url", req.URL.Null), refuseNull("events", req.Events.Null), refuseNull("enabled", req.Enabled.Null)); err != nil {
		return err
	}
	var u store.WebhookUpdate
	if req.URL.Set {
		if err := checkWebhookURL(req.URL.Value, a.allowPrivate); err != nil {
			return err
		}
		u.URL = &req.URL.Value
	}
	if req.Events.Set {
		subs, err := checkWebhookEvents(req.Events.Value)
		if err != nil {
			return err
		}
		u.Events = &subs
	}
	if req.Enabled.Set {
		disabled := !req.Enabled.Value
		u.Disabled = &disabled
	}
	var (
		w     store.Webhook
		ended int
	)
	err := a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		var err error
		w, ended, err = a.store.UpdateWebhook(ctx, cur.ID, u)
		if err != nil {
			return fmt.Errorf("update webhook: %w", err)
		}
		details := map[string]any{}
		if w.URL != cur.URL {
			// Hosts only, as in webhook.created.
			details["host"] = map[string]string{"from": webhookHost(cur.URL), "to": webhookHost(w.URL)}
		}
		if !slices.Equal(w.Events, cur.Events) {
			details["events"] = map[string][]string{"from": cur.Events, "to": w.Events}
		}
		if w.Disabled != cur.Disabled {
			details["enabled"] = map[string]bool{"from": !cur.Disabled, "to": !w.Disabled}
		}
		if ended > 0 {
			details["deliveries_ended"] = ended
		}
		return a.auditVendor(ctx, c, "webhook.updated", store.Resource{Type: "webhook", ID: w.ID}, details)
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("webhook") // deleted meanwhile
	}
	if err != nil {
		return err
	}
	a.log.InfoContext(c.Request().Context(), "webhook updated", "webhook_id", w.ID, "enabled", !w.Disabled, "deliveries_ended", ended)
	return c.JSON(http.StatusOK, toWebhookJSON(w, false))
}

// deleteWebhook deletes a webhook: nothing more is sent to it, the
// deliveries it was still owed end (the audit row counts them), and its
// events stay in GET /events.
func (a *API) deleteWebhook(c echo.Context) error {
	w := webhookOf(c)
	var ended int
	err := a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		var err error
		if ended, err = a.store.DeleteWebhook(ctx, w.ID); err != nil {
			return fmt.Errorf("delete webhook: %w", err)
		}
		return a.auditVendor(ctx, c, "webhook.deleted", store.Resource{Type: "webhook", ID: w.ID},
			map[string]any{"host": webhookHost(w.URL), "events": w.Events, "deliveries_ended": ended})
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("webhook") // deleted meanwhile
	}
	if err != nil {
		return err
	}
	a.log.InfoContext(c.Request().Context(), "webhook deleted", "webhook_id", w.ID, "deliveries_ended", ended)
	return c.NoContent(http.StatusNoContent)
}

// rotateWebhookSecret mints a new signing secret, shown once in the
// answer. For WebhookSecretOverlap deliveries carry the old secret's
// signature beside the new one's, so the receiver can switch without
// refusing anything; then only the new one.
func (a *API) rotateWebhookSecret(c echo.Context) error {
	if err := refuseBody(c); err != nil {
		return err
	}
	cur := webhookOf(c)
	var w store.Webhook
	err := a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		var err error
		w, err = a.store.RotateWebhookSecret(ctx, cur.ID, secrets.NewToken(WebhookSecretPrefix), WebhookSecretOverlap)
		if err != nil {
			return fmt.Errorf("rotate webhook secret: %w", err)
		}
		return a.auditVendor(ctx, c, "webhook.secret_rotated", store.Resource{Type: "webhook", ID: w.ID},
			map[string]any{"previous_secret_expires_at": w.PreviousSecretExpiresAt})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("webhook")
	case errors.Is(err, store.ErrConflict):
		return conflict(httpserver.CodeConflict, "another rotation of this webhook's secret committed at the same moment: its answer holds the current secret", err)
	case err != nil:
		return err
	}
	a.log.InfoContext(c.Request().Context(), "webhook secret rotated", "webhook_id", w.ID)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, toWebhookJSON(w, true))
}

// deliveryJSON is one event's delivery to one webhook.
type deliveryJSON struct {
	ID        string `json:"id"`
	WebhookID string `json:"webhook_id"`
	EventID   string `json:"event_id"`
	attemptsJSON
}

// attemptsJSON is the delivery state that webhook deliveries and
// back-channel logouts share: both are retried the same way
// (events.Dispatcher, events.LogoutDispatcher).
type attemptsJSON struct {
	Status         string     `json:"status"` // pending, succeeded, failed (retrying), dead
	Attempts       int        `json:"attempts"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

func toAttemptsJSON(status store.DeliveryStatus, attempts int, next time.Time, code int, lastErr string, created, updated time.Time) attemptsJSON {
	out := attemptsJSON{Status: string(status), Attempts: attempts, LastError: optional(lastErr), CreatedAt: created, UpdatedAt: updated}
	if status == store.DeliveryPending || status == store.DeliveryFailed {
		out.NextAttemptAt = &next
	}
	if code != 0 {
		out.LastStatusCode = &code
	}
	return out
}

func toDeliveryJSON(d store.Delivery) deliveryJSON {
	return deliveryJSON{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID,
		attemptsJSON: toAttemptsJSON(d.Status, d.Attempts, d.NextAttemptAt, d.LastStatusCode, d.LastError, d.CreatedAt, d.UpdatedAt)}
}

// listDeliveries pages through a webhook's deliveries, oldest first, so
// that an operator sees what was sent, what is retrying and what is dead.
func (a *API) listDeliveries(c echo.Context) error {
	if err := onlyParams(c, "limit", "after"); err != nil {
		return err
	}
	p, err := deliveryPage(c)
	if err != nil {
		return err
	}
	ds, next, err := a.store.ListDeliveries(c.Request().Context(), store.DeliveryQuery{WebhookID: webhookOf(c).ID, Page: p})
	if err != nil {
		return fmt.Errorf("list deliveries: %w", err)
	}
	out := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		out[i] = toDeliveryJSON(d)
	}
	return c.JSON(http.StatusOK, newList(out, next))
}

// deliveryPage is parsePage for deliveries, whose ids the database mints
// and are not ULIDs.
func deliveryPage(c echo.Context) (store.Page, error) {
	p := store.Page{Limit: defaultLimit}
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return p, invalid("limit", "limit must be an integer from 1 to %d", maxLimit)
		}
		p.Limit = n
	}
	if after := c.QueryParam("after"); after != "" {
		if !isDeliveryID(after) {
			return p, invalid("after", "after must be the next_cursor of a previous page")
		}
		p.After = after
	}
	return p, nil
}

// isDeliveryID: the database mints delivery ids as "dlv_" and 32 lower-case
// hex digits (migration 0005).
func isDeliveryID(s string) bool {
	rest, ok := strings.CutPrefix(s, "dlv_")
	if !ok || len(rest) != 32 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
