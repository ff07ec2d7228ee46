package adminportal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/events"
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
	g.GET("/events", a.listEvents)
	g.POST("/webhooks", a.createWebhook)
	g.GET("/webhooks", a.listWebhooks)
	w := g.Group("/webhooks/:wh", a.loadWebhook)
	w.GET("", a.getWebhook)
	w.GET("/deliveries", a.listDeliveries)
}

type createWebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// webhookJSON is a webhook as the API shows it. Secret is set only in the
// answer to its creation; it is kept sealed to sign deliveries, never shown
// again.
type webhookJSON struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    *string   `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func toWebhookJSON(w store.Webhook, withSecret bool) webhookJSON {
	out := webhookJSON{ID: w.ID, URL: w.URL, Events: w.Events, CreatedAt: w.CreatedAt}
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
		if errors.Is(err, store.ErrNotFound) {
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
