package adminportal

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/events"
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
// ?events= (repeated, comma-separated, or WorkOS's events[]=) and
// ?tenant_id= narrow it; a filter this API does not know is refused rather
// than ignored, since a consumer would take every event for a match.
func (a *API) listEvents(c echo.Context) error {
	p, err := parsePage(c, store.PrefixEvent)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	f, err := a.eventFilter(c)
	if err != nil {
		return err
	}
	if p.After != "" {
		// An unknown cursor would otherwise read as "nothing new" forever.
		if _, err := a.store.Event(ctx, p.After); errors.Is(err, store.ErrNotFound) {
			return invalid("after", "after names no event: it may be past the event retention or of an erased tenant; list again without after")
		} else if err != nil {
			return fmt.Errorf("look up cursor event: %w", err)
		}
	}
	evs, next, err := a.store.ListEventsMatching(ctx, f, p)
	if err != nil {
		return fmt.Errorf("list events: %w", err)
	}
	out := make([]eventJSON, len(evs))
	for i, e := range evs {
		out[i] = toEventJSON(e)
	}
	return c.JSON(http.StatusOK, newList(out, next))
}

// eventFilter reads ?events= and ?tenant_id=, and refuses any other
// parameter than the page's.
func (a *API) eventFilter(c echo.Context) (store.EventFilter, error) {
	var f store.EventFilter
	q := c.QueryParams()
	for name := range q {
		switch name {
		case "limit", "after", "events", "events[]", "tenant_id":
		default:
			return f, invalid(name, "%s is not a filter of the event stream: it takes events, tenant_id, limit and after", name)
		}
	}
	seen := map[string]bool{}
	for _, v := range append(q["events"], q["events[]"]...) {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			switch {
			case t == "":
				return f, invalid("events", "events lists event types, comma-separated or repeated; one is empty")
			case !events.KnownType(t):
				return f, invalid("events", "%q is not an event type; known types: %s", t, strings.Join(events.Types(), ", "))
			case !seen[t]:
				seen[t] = true
				f.Types = append(f.Types, t)
			}
		}
	}
	if len(f.Types) > maxWebhookEvents {
		return f, invalid("events", "events lists at most %d types", maxWebhookEvents)
	}
	if v, ok := q["tenant_id"]; ok {
		id := v[0]
		if len(v) > 1 || !store.HasPrefix(id, store.PrefixTenant) {
			return f, notFound("tenant")
		}
		t, err := a.store.Tenant(withTenant(c.Request().Context(), id))
		if errors.Is(err, store.ErrNotFound) || (err == nil && t.Status == store.TenantDeleted) {
			return f, notFound("tenant")
		}
		if err != nil {
			return f, fmt.Errorf("load tenant %s: %w", id, err)
		}
		f.TenantID = id
	}
	return f, nil
}
