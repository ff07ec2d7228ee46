package adminportal_test

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/idbroker/idbroker/store"
)

// TestEventStreamFilters: GET /events narrows to event types (repeated,
// comma-separated or events[]) and to one live tenant; a page's cursor
// resumes the filtered stream; a filter the API does not know is refused,
// not ignored.
func TestEventStreamFilters(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		var a, b, gone struct {
			ID string `json:"id"`
		}
		e.must(http.StatusCreated, "POST", "/tenants", map[string]any{"name": "A"}).decode(t, &a)
		e.must(http.StatusCreated, "POST", "/tenants", map[string]any{"name": "B"}).decode(t, &b)
		e.must(http.StatusCreated, "POST", "/tenants", map[string]any{"name": "Gone"}).decode(t, &gone)
		e.must(http.StatusNoContent, "DELETE", "/tenants/"+gone.ID, nil)
		ctx := context.Background()
		// Only what this test appends from here on counts.
		before, _, err := e.st.ListEvents(ctx, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		after := ""
		if len(before) > 0 {
			after = "&after=" + before[len(before)-1].ID
		}
		add := func(tenant, typ string) string {
			ev, err := e.st.AppendEvent(ctx, store.Event{TenantID: tenant, Type: typ})
			if err != nil {
				t.Fatal(err)
			}
			return ev.ID
		}
		aCreated := add(a.ID, "dsync.user.created")
		bCreated := add(b.ID, "dsync.user.created")
		aRevoked := add(a.ID, "session.revoked")
		aDeleted := add(a.ID, "dsync.user.deleted")
		ids := func(q string) ([]string, *string) {
			t.Helper()
			var page listOut[eventOut]
			e.must(http.StatusOK, "GET", "/events?"+q+after, nil).decode(t, &page)
			out := []string{}
			for _, ev := range page.Data {
				out = append(out, ev.ID)
			}
			return out, page.NextCursor
		}
		for _, c := range []struct {
			q    string
			want []string
		}{
			{"events=dsync.user.created", []string{aCreated, bCreated}},
			{"events=dsync.user.created,session.revoked", []string{aCreated, bCreated, aRevoked}},
			{"events=dsync.user.created&events=dsync.user.deleted", []string{aCreated, bCreated, aDeleted}},
			{"events[]=session.revoked&events[]=dsync.user.deleted", []string{aRevoked, aDeleted}},
			{"tenant_id=" + b.ID, []string{bCreated}},
			{"tenant_id=" + a.ID + "&events=dsync.user.created,dsync.user.deleted", []string{aCreated, aDeleted}},
			{"events=tenant.status_changed", []string{}},
			{"limit=100", []string{aCreated, bCreated, aRevoked, aDeleted}},
		} {
			if got, _ := ids(c.q); !reflect.DeepEqual(got, c.want) {
				t.Errorf("?%s: %v, want %v", c.q, got, c.want)
			}
		}
		// Paging a filtered stream.
		got, next := ids("tenant_id=" + a.ID + "&limit=2")
		if !reflect.DeepEqual(got, []string{aCreated, aRevoked}) || next == nil || *next != aRevoked {
			t.Fatalf("page 1 of A's events: %v next %v", got, next)
		}
		var page listOut[eventOut]
		e.must(http.StatusOK, "GET", "/events?tenant_id="+a.ID+"&limit=2&after="+*next, nil).decode(t, &page)
		if len(page.Data) != 1 || page.Data[0].ID != aDeleted || page.NextCursor != nil {
			t.Fatalf("page 2 of A's events: %+v", page)
		}

		for _, c := range []struct {
			q      string
			status int
		}{
			{"events=dsync.user.exploded", http.StatusBadRequest},
			{"events=dsync.user.created,", http.StatusBadRequest},
			{"events=*", http.StatusBadRequest},
			{"type=dsync.user.created", http.StatusBadRequest},
			{"tenant=" + a.ID, http.StatusBadRequest},
			{"tenant_id=" + store.NewID(store.PrefixTenant), http.StatusNotFound},
			{"tenant_id=garbage", http.StatusNotFound},
			{"tenant_id=" + gone.ID, http.StatusNotFound},
		} {
			r := e.call("GET", "/events?"+c.q, nil)
			if r.status != c.status || r.err(t).Code == "" {
				t.Errorf("?%s: %d %s, want %d", c.q, r.status, r.body, c.status)
			}
		}
	})
}
