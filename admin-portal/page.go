package adminportal

import (
	"slices"
	"strconv"
	"strings"

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
	if err := once(c, "limit", "after"); err != nil {
		return p, err
	}
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

// pageInMemory pages a list the store returns whole (a tenant's domains,
// connections and directories, the webhooks: lists of a few entries) with
// the answers of a list paged in SQL: in id order, the ids after p.After,
// at most p.Limit of them, and the cursor of the next page when more
// remain. A cursor whose entry has gone meanwhile still resumes after it.
func pageInMemory[T any](items []T, id func(T) string, p store.Page) ([]T, string) {
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(id(a), id(b)) })
	if p.After != "" {
		i, found := slices.BinarySearchFunc(items, p.After, func(x T, after string) int { return strings.Compare(id(x), after) })
		if found {
			i++
		}
		items = items[i:]
	}
	if len(items) > p.Limit {
		return items[:p.Limit], id(items[p.Limit-1])
	}
	return items, ""
}

// onlyParams refuses a query parameter other than those named: a list
// that ignored a filter it does not know would answer everything as a
// match. Each named one may be given once (see once).
func onlyParams(c echo.Context, names ...string) error {
	for name := range c.QueryParams() {
		switch {
		case len(names) == 0:
			return invalid(name, "%s is not a parameter of this call: it takes none", name)
		case !slices.Contains(names, name):
			return invalid(name, "%s is not a parameter of this list: it takes %s", name, strings.Join(names, ", "))
		}
	}
	return once(c, names...)
}

// once refuses any of names given more than once: taking the first and
// dropping the rest would answer ?tenant_id=A&tenant_id=B with A's rows
// alone, as if B had been asked for too.
func once(c echo.Context, names ...string) error {
	q := c.QueryParams()
	for _, name := range names {
		if n := len(q[name]); n > 1 {
			return invalid(name, "%s may be given once, not %d times", name, n)
		}
	}
	return nil
}
