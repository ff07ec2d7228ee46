package adminportal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/internal/httpserver"
	"github.com/idbroker/idbroker/store"
)

// The operator API's side of a webhook's dead letters, for vendors who
// script what an operator would click in the console: redeliver one
// delivery, or recover every dead letter since a time once the endpoint
// is fixed (as Svix's recover, Stripe's resend).

// redeliverDelivery puts one failed or dead delivery of the webhook back
// in the queue, as the console's Redeliver button does, with the same
// audit row (webhook.delivery_redelivered) naming the API key. Another
// webhook's delivery is a 404, as an unknown one.
func (a *API) redeliverDelivery(c echo.Context) error {
	if err := refuseBody(c); err != nil {
		return err
	}
	hook := webhookOf(c)
	id := c.Param("dlv")
	if !isDeliveryID(id) {
		return notFound("delivery")
	}
	var d store.Delivery
	err := a.store.InTx(c.Request().Context(), func(ctx context.Context) error {
		cur, err := a.store.Delivery(ctx, id)
		if err != nil {
			return err
		}
		if cur.WebhookID != hook.ID {
			return store.ErrNotFound
		}
		if d, err = a.store.RedeliverDelivery(ctx, id); err != nil {
			return err
		}
		return a.auditVendor(ctx, c, "webhook.delivery_redelivered", store.Resource{Type: "delivery", ID: d.ID},
			map[string]any{"webhook_id": d.WebhookID, "event_id": d.EventID})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("delivery")
	case errors.Is(err, store.ErrConflict):
		return conflict(httpserver.CodeConflict, "only a failed or dead delivery of an enabled webhook that still subscribes to its event's type can be redelivered", err)
	case err != nil:
		return fmt.Errorf("redeliver delivery: %w", err)
	}
	a.log.InfoContext(c.Request().Context(), "delivery redelivered", "webhook_id", d.WebhookID, "delivery_id", d.ID)
	return c.JSON(http.StatusOK, toDeliveryJSON(d))
}

type recoverRequest struct {
	Since string `json:"since"`
}

// recoverJSON answers a recovery.
type recoverJSON struct {
	WebhookID string    `json:"webhook_id"`
	Since     time.Time `json:"since"`
	Requeued  int       `json:"requeued"`
}

// recoverDeliveries requeues every dead delivery of the webhook whose
// event is at or after since, due at once, and answers 202 with how many:
// the dispatcher sends them from now on, signed as ever, with their
// event ids. A second call requeues nothing already pending, so a script
// may retry it. since may not be older than the event retention: older
// events are gone, and a since that far back would only read the whole
// table. The work is done in batches (store.RecoverBatch), each its own
// transaction, so that the dispatcher and the events of sign-ins never
// wait behind one long write; the webhook.recovered audit row, with the
// count, follows them. A call cut short (the client gone, the database
// down) keeps what it requeued and is audited with that count.
func (a *API) recoverDeliveries(c echo.Context) error {
	var req recoverRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Since) == "" {
		return invalid("since", "since is required: an RFC 3339 time, such as 2026-11-02T09:00:00Z")
	}
	since, err := time.Parse(time.RFC3339, req.Since)
	if err != nil {
		return invalid("since", "since must be an RFC 3339 time, such as 2026-11-02T09:00:00Z")
	}
	if a.retention > 0 {
		if oldest := a.now().Add(-a.retention); since.Before(oldest) {
			return invalid("since", "since is older than the event retention (%d days): events before %s are no longer kept; recover from %s or later",
				int(a.retention.Hours()/24), oldest.UTC().Format(time.RFC3339), oldest.UTC().Format(time.RFC3339))
		}
	}
	hook := webhookOf(c)
	if hook.Disabled {
		return conflict(httpserver.CodeConflict, "the webhook is disabled: enable it (PATCH enabled true) before recovering its dead letters", nil)
	}
	ctx := c.Request().Context()
	n, err := a.store.RecoverDeliveries(ctx, hook.ID, since, 0)
	if n > 0 || err == nil {
		// What was requeued stays requeued: its audit row is written
		// even when the client has gone or a later batch failed.
		actx := context.WithoutCancel(ctx)
		if aerr := a.store.InTx(actx, func(actx context.Context) error {
			return a.auditVendor(actx, c, "webhook.recovered", store.Resource{Type: "webhook", ID: hook.ID},
				map[string]any{"since": since.UTC(), "requeued": n})
		}); aerr != nil {
			return errors.Join(err, aerr)
		}
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("webhook") // deleted meanwhile
	case errors.Is(err, store.ErrConflict):
		return conflict(httpserver.CodeConflict, "the webhook is disabled: enable it (PATCH enabled true) before recovering its dead letters", err)
	case err != nil:
		return fmt.Errorf("recover deliveries (%d requeued before the failure): %w", n, err)
	}
	a.log.InfoContext(ctx, "webhook dead letters recovered", "webhook_id", hook.ID, "since", since, "requeued", n)
	return c.JSON(http.StatusAccepted, recoverJSON{WebhookID: hook.ID, Since: since.UTC(), Requeued: n})
}
