package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ConnectionHealth is what the event stream says of a connection's recent
// logins: the latest success and the latest failure with its reason.
type ConnectionHealth struct {
	LastSuccessAt *time.Time
	LastFailureAt *time.Time
	LastFailure   string // the reason of authentication.failed
}

// ConnectionHealth reads, for connection id of the tenant in ctx, the
// newest authentication.succeeded and authentication.failed events.
func (db *DB) ConnectionHealth(ctx context.Context, id string) (ConnectionHealth, error) {
	tenantID, err := requireTenant(ctx)
	if err != nil {
		return ConnectionHealth{}, err
	}
	var h ConnectionHealth
	err = db.global(ctx, false, func(q querier) error {
		for _, typ := range []string{"authentication.succeeded", "authentication.failed"} {
			var (
				data json.RawMessage
				at   time.Time
			)
			err := q.queryRow(ctx, `SELECT data, created_at FROM events
				WHERE tenant_id = $1 AND type = $2 AND data->>'connection_id' = $3
				ORDER BY seq DESC LIMIT 1`, tenantID, typ, id).Scan(jsonDest{&data}, timeDest{&at})
			if db.d.isNoRows(err) {
				continue
			}
			if err != nil {
				return err
			}
			if typ == "authentication.succeeded" {
				h.LastSuccessAt = &at
				continue
			}
			h.LastFailureAt = &at
			var d struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(data, &d)
			h.LastFailure = d.Reason
		}
		return nil
	})
	return h, db.wrap("connection health", err)
}

// DirectoryStats counts a directory's users (and how many are active) and
// groups, and says when SCIM last changed any of them.
type DirectoryStats struct {
	Users       int
	ActiveUsers int
	Groups      int
	LastSyncAt  *time.Time
}

// DirectoryStats reads the stats of directory id of the tenant in ctx.
func (db *DB) DirectoryStats(ctx context.Context, id string) (DirectoryStats, error) {
	var s DirectoryStats
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		var lastUser, lastGroup *time.Time
		err := q.queryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE active), max(updated_at) FROM users
			WHERE tenant_id = $1 AND directory_id = $2`, tenantID, id).Scan(&s.Users, &s.ActiveUsers, nullTimeDest{&lastUser})
		if err != nil {
			return err
		}
		err = q.queryRow(ctx, `SELECT count(*), max(updated_at) FROM groups WHERE tenant_id = $1 AND directory_id = $2`,
			tenantID, id).Scan(&s.Groups, nullTimeDest{&lastGroup})
		if err != nil {
			return err
		}
		s.LastSyncAt = lastUser
		if lastGroup != nil && (s.LastSyncAt == nil || lastGroup.After(*s.LastSyncAt)) {
			s.LastSyncAt = lastGroup
		}
		return nil
	})
	return s, db.wrap("directory stats", err)
}

// RedeliverDelivery puts a failed or dead delivery back in the queue, due
// at once, with a retry window of its own from now (RetryFrom, RetryBase):
// the dispatcher retries it on the usual schedule, for as long as a new
// delivery, not once. It returns it. A pending or succeeded one is ErrConflict, and
// so is one whose webhook is disabled or deleted, or no longer subscribes
// to its event's type (it would only end again).
func (db *DB) RedeliverDelivery(ctx context.Context, id string) (Delivery, error) {
	now := db.now()
	var d Delivery
	err := db.global(ctx, true, func(q querier) error {
		var typ string
		var subs []string
		err := q.queryRow(ctx, `SELECT e.type, w.events FROM deliveries d JOIN events e ON e.id = d.event_id
			JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1`, id).Scan(&typ, jsonDest{&subs})
		if err != nil {
			return err
		}
		if !slices.Contains(subs, "*") && !slices.Contains(subs, typ) {
			return fmt.Errorf("%w: the webhook no longer subscribes to %s", ErrConflict, typ)
		}
		d, err = scanDelivery(q.queryRow(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = $2, updated_at = $2,
				retry_from = $2, retry_base = attempts
			WHERE id = $1 AND status IN ('failed', 'dead')
			  AND webhook_id IN (SELECT id FROM webhooks WHERE NOT disabled AND deleted_at IS NULL)
			RETURNING `+deliveryCols, id, db.d.timeArg(now)))
		if db.d.isNoRows(err) {
			if _, gerr := scanDelivery(q.queryRow(ctx, "SELECT "+deliveryCols+" FROM deliveries WHERE id = $1", id)); gerr != nil {
				return gerr
			}
			return fmt.Errorf("%w: only a failed or dead delivery of an enabled webhook can be redelivered", ErrConflict)
		}
		return err
	})
	return d, db.wrap("redeliver", err)
}

// FindTenants lists tenants whose name contains query or whose id is
// query (case insensitive), in creation order: those of status, or with
// none every tenant but the deleted, as lists of tenants show them. The
// query is text: % and _ in it are themselves, not LIKE's wildcards.
// Filtering by status in the query keeps pages full: a page of 50 matches
// filtered afterwards held the few of them of the status.
//
// A tenant's id, as support pastes it from a log line or an event (in any
// case), is read by the primary key; only when no tenant has it are the
// names searched. The name search reads every tenant's name: at 50,000
// tenants tens of milliseconds (BENCHMARKS.md, "Thousands of tenants"),
// fine for a person's search, while an id is answered at once.
func (db *DB) FindTenants(ctx context.Context, query string, status TenantStatus, p Page) ([]Tenant, string, error) {
	p = p.Normalize()
	where, args := "status <> 'deleted'", []any{p.After, p.Limit + 1, escapeLike(query), query}
	if status != "" {
		where, args = "status = $5", append(args, string(status))
	}
	var out []Tenant
	if id, ok := tenantIDIn(query); ok {
		idWhere, idArgs := "status <> 'deleted'", []any{p.After, p.Limit + 1, id}
		if status != "" {
			idWhere, idArgs = "status = $4", append(idArgs, string(status))
		}
		err := db.global(ctx, false, func(q querier) error {
			rs, err := q.query(ctx, "SELECT "+tenantCols+` FROM tenants WHERE id > $1 AND id = $3 AND `+idWhere+` LIMIT $2`, idArgs...)
			if err != nil {
				return err
			}
			out, err = collect(rs, scanTenant)
			return err
		})
		if err != nil {
			return nil, "", db.wrap("find tenants", err)
		}
		if len(out) > 0 {
			return out, "", nil
		}
	}
	err := db.global(ctx, false, func(q querier) error {
		// Domains are tenant data behind row-level security; the search
		// of names by domain goes through the resolver's view of them
		// only for exact verified domains, so here it matches names and
		// ids, and the domain search is done per tenant by the caller.
		rs, err := q.query(ctx, "SELECT "+tenantCols+` FROM tenants
			WHERE id > $1 AND `+where+` AND (lower(name) LIKE '%' || lower($3) || '%' ESCAPE '\' OR lower(id) = lower($4))
			ORDER BY id LIMIT $2`, args...)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanTenant)
		return err
	})
	if err != nil {
		return nil, "", db.wrap("find tenants", err)
	}
	out, next := cut(out, p.Limit, func(t Tenant) string { return t.ID })
	return out, next, nil
}

// tenantIDIn returns the tenant id query is, in the case ids are minted
// in (the prefix lower, the ULID upper), if query has the shape of one.
func tenantIDIn(query string) (string, bool) {
	query = strings.TrimSpace(query)
	if len(query) != len(PrefixTenant)+27 || !strings.EqualFold(query[:len(PrefixTenant)+1], PrefixTenant+"_") {
		return "", false
	}
	id := PrefixTenant + "_" + strings.ToUpper(query[len(PrefixTenant)+1:])
	return id, HasPrefix(id, PrefixTenant)
}

// RecentEvents lists the event stream newest first, optionally of one
// tenant and one type, for people to read (clients follow the stream with
// ListEvents); After is the id of the last event already shown.
func (db *DB) RecentEvents(ctx context.Context, tenantID, typ string, p Page) ([]Event, string, error) {
	p = p.Normalize()
	var out []Event
	err := db.global(ctx, false, func(q querier) error {
		where, args := "TRUE", []any{p.Limit + 1}
		if tenantID != "" {
			args = append(args, tenantID)
			where += fmt.Sprintf(" AND tenant_id = $%d", len(args))
		}
		if typ != "" {
			args = append(args, typ)
			where += fmt.Sprintf(" AND type = $%d", len(args))
		}
		if p.After != "" {
			args = append(args, p.After)
			where += fmt.Sprintf(" AND seq < (SELECT seq FROM events WHERE id = $%d)", len(args))
		}
		rs, err := q.query(ctx, "SELECT "+eventCols+" FROM events WHERE "+where+" ORDER BY seq DESC LIMIT $1", args...)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanEvent)
		return err
	})
	if err != nil {
		return nil, "", db.wrap("recent events", err)
	}
	out, next := cut(out, p.Limit, func(e Event) string { return e.ID })
	return out, next, nil
}

// FailedSignIn is the authentication.failed event recorded under
// reference, the request id the end user's error page showed, of any
// tenant: what a support engineer pastes from a customer's screenshot.
// ErrNotFound when none is kept (a reference that never failed a sign-in,
// one past the event retention, or a failure only logged past the
// per-connection burst). The events hold no index on the reference: this
// reads the failed sign-ins the retention keeps, fine for a person's
// look-up, not for a loop.
func (db *DB) FailedSignIn(ctx context.Context, reference string) (Event, error) {
	expr := "data->>'request_id'"
	if db.d.name() != "postgres" {
		expr = "json_extract(data, '$.request_id')"
	}
	var e Event
	err := db.global(ctx, false, func(q querier) error {
		var err error
		e, err = scanEvent(q.queryRow(ctx, "SELECT "+eventCols+" FROM events WHERE type = 'authentication.failed' AND "+expr+
			" = $1 ORDER BY seq DESC LIMIT 1", reference))
		return err
	})
	return e, db.wrap("failed sign-in", err)
}

// SignInTenants lists the tenants where email signed in (or failed to,
// when the event names it) within the events kept, at most limit, most
// recent first: how the support desk finds a person across tenants when no
// tenant has verified their email's domain. It returns only ids; users
// are then read under each tenant. Like FailedSignIn it reads the
// sign-in events without an index on the email: a person's look-up.
func (db *DB) SignInTenants(ctx context.Context, email string, limit int) ([]string, error) {
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	var out []string
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, `SELECT tenant_id FROM events WHERE `+signInTypes+` AND tenant_id IS NOT NULL AND `+db.emailExpr()+` = $1
			GROUP BY tenant_id ORDER BY max(seq) DESC LIMIT $2`, strings.ToLower(strings.TrimSpace(email)), limit)
		if err != nil {
			return err
		}
		out, err = collect(rs, func(r row) (string, error) {
			var id string
			return id, r.Scan(&id)
		})
		return err
	})
	return out, db.wrap("sign-in tenants", err)
}
