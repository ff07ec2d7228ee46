package adminportal

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/store"
)

// eventJSON is one event of the stream (contract section 5), in the shape
// webhooks receive it.
type eventJSON struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	TenantID  *string         `json:"tenant_id"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
}

func toEventJSON(e store.Event) eventJSON {
	out := eventJSON{ID: e.ID, Type: e.Type, TenantID: optional(e.TenantID), Data: e.Data, CreatedAt: e.CreatedAt}
	if len(out.Data) == 0 {
		out.Data = json.RawMessage("{}")
	}
	return out
}

// listEvents pages through the event stream in the order it was written:
// ?after= is the id of the last event seen (a next_cursor, or any event id
// a webhook delivered), so a consumer can catch up from where it stands.
func (a *API) listEvents(c echo.Context) error {
	p, err := parsePage(c, store.PrefixEvent)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if p.After != "" {
		// An unknown cursor would otherwise read as "nothing new" forever.
		if _, err := a.store.Event(ctx, p.After); errors.Is(err, store.ErrNotFound) {
			return invalid("after", "after names no event")
		} else if err != nil {
			return fmt.Errorf("look up cursor event: %w", err)
		}
	}
	evs, next, err := a.store.ListEvents(ctx, p)
	if err != nil {
		return fmt.Errorf("list events: %w", err)
	}
	out := make([]eventJSON, len(evs))
	for i, e := range evs {
		out[i] = toEventJSON(e)
	}
	return c.JSON(http.StatusOK, newList(out, next))
}
