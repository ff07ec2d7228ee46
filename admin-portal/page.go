package adminportal

import (
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/idbroker/idbroker/store"
)

// Pagination bounds of every list.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// list is the shape of every list answer. NextCursor is null on the last
// page; pass it as ?after= to get the next one.
type list[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func newList[T any](data []T, next string) list[T] {
	l := list[T]{Data: data}
	if l.Data == nil {
		l.Data = []T{} // [] rather than null
	}
	if next != "" {
		l.NextCursor = &next
	}
	return l
}

// parsePage reads ?limit= and ?after=. Bad values are refused rather than
// clamped, so that a client's mistake shows.
func parsePage(c echo.Context, prefix string) (store.Page, error) {
	p := store.Page{Limit: defaultLimit}
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return p, invalid("limit", "limit must be an integer from 1 to %d", maxLimit)
		}
		p.Limit = n
	}
	if after := c.QueryParam("after"); after != "" {
		// Cursors are ids of the listed kind; anything else was not
		// handed out by us.
		if !store.HasPrefix(after, prefix) {
			return p, invalid("after", "after must be the next_cursor of a previous page")
		}
		p.After = after
	}
	return p, nil
}
