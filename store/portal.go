package store

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Portal link intents (contract section 4).
const (
	IntentSSO                = "sso"
	IntentDSync              = "dsync"
	IntentDomainVerification = "domain_verification"
	IntentAuditLogs          = "audit_logs"
)

// PortalStore is what the self-serve portal keeps: its links and
// sessions, the last test login of each connection, and domain checks.
// Store includes it.
type PortalStore interface {
	// CreatePortalLink adds a link to the tenant in ctx.
	CreatePortalLink(ctx context.Context, l PortalLink) (PortalLink, error)
	// ResolvePortalLink finds the tenant of the link whose token hashes
	// to tokenHash (used, expired or not).
	ResolvePortalLink(ctx context.Context, tokenHash []byte) (tenantID string, err error)
	// PortalLinkByHash returns the link of the tenant in ctx whose token
	// hashes to tokenHash, as it is, changing nothing: the page shown
	// before the link is spent. ErrNotFound when there is none.
	PortalLinkByHash(ctx context.Context, tokenHash []byte) (PortalLink, error)
	// OpenPortalLink spends the link of the tenant in ctx whose token
	// hashes to tokenHash and starts its session, when it is unused and
	// unexpired at now; opened says whether it did. Otherwise the link is
	// returned as it is, for the caller to say why (UsedAt, ExpiresAt).
	OpenPortalLink(ctx context.Context, tokenHash, sessionHash []byte, now, sessionExpires time.Time) (l PortalLink, opened bool, err error)
	// PortalSession returns the opened link linkID of the tenant in ctx
	// when sessionHash matches its session (compared in constant time)
	// and the session has not expired at now; else ErrNotFound.
	PortalSession(ctx context.Context, linkID string, sessionHash []byte, now time.Time) (PortalLink, error)
	// EndPortalSession ends the session of link linkID at once.
	EndPortalSession(ctx context.Context, linkID string) error

	// SaveConnectionTest records the last test login of a connection,
	// replacing the previous one.
	SaveConnectionTest(ctx context.Context, t ConnectionTest) error
	// ConnectionTest returns the last test login of a connection, or
	// ErrNotFound.
	ConnectionTest(ctx context.Context, connectionID string) (ConnectionTest, error)

	// RecordDomainCheck notes a DNS check of domain id (failure empty when
	// it found the record).
	RecordDomainCheck(ctx context.Context, id string, at time.Time, failure string) error
	// DomainChecks returns the last check of each checked domain of the
	// tenant in ctx, by domain id.
	DomainChecks(ctx context.Context) (map[string]DomainCheck, error)

	// TenantEvents lists the newest events of the tenant in ctx whose type
	// starts with typePrefix.
	TenantEvents(ctx context.Context, typePrefix string, offset, limit int) ([]Event, error)
	// DirectoryActivity lists the newest dsync.* events of directory id.
	DirectoryActivity(ctx context.Context, directoryID string, limit int) ([]Event, error)
}

// ConnectionTest is the outcome of a connection's last test login.
type ConnectionTest struct {
	TenantID     string
	ConnectionID string
	OK           bool
	// ConnUpdatedAt is the connection's UpdatedAt when it was tested; a
	// connection changed since is untested again.
	ConnUpdatedAt time.Time
	// Result is the portal's own record (profile, raw attributes, failed
	// check); the store keeps it as it is.
	Result    json.RawMessage
	CreatedAt time.Time
}

// DomainCheck is the last DNS check of a domain.
type DomainCheck struct {
	CheckedAt time.Time
	// Failure says why the check failed; empty when it succeeded.
	Failure string
}

const portalLinkCols = "tenant_id, id, intent, token_hash, return_url, expires_at, used_at, created_at, session_hash, session_expires_at"

func scanPortalLink(r row) (PortalLink, error) {
	var l PortalLink
	err := r.Scan(&l.TenantID, &l.ID, &l.Intent, &l.TokenHash, &l.ReturnURL, timeDest{&l.ExpiresAt},
		nullTimeDest{&l.UsedAt}, timeDest{&l.CreatedAt}, &l.SessionHash, nullTimeDest{&l.SessionExpiresAt})
	return l, err
}

// CreatePortalLink adds a one-time portal link to the tenant in ctx.
func (db *DB) CreatePortalLink(ctx context.Context, l PortalLink) (PortalLink, error) {
	switch l.Intent {
	case IntentSSO, IntentDSync, IntentDomainVerification, IntentAuditLogs:
	default:
		return PortalLink{}, fmt.Errorf("%w: portal link intent %q", ErrInvalid, l.Intent)
	}
	if len(l.TokenHash) == 0 || l.ExpiresAt.IsZero() {
		return PortalLink{}, fmt.Errorf("%w: a portal link needs a token hash and an expiry", ErrInvalid)
	}
	if l.ID == "" {
		l.ID = NewID(PrefixPortalLink)
	}
	l.CreatedAt = db.now()
	l.UsedAt, l.SessionHash, l.SessionExpiresAt = nil, nil, nil
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		l.TenantID = tenantID
		_, err := q.exec(ctx, "INSERT INTO portal_links (tenant_id, id, intent, token_hash, return_url, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
			l.TenantID, l.ID, l.Intent, l.TokenHash, l.ReturnURL, db.d.timeArg(l.ExpiresAt), db.d.timeArg(l.CreatedAt))
		return err
	})
	return l, db.wrap("create portal link", err)
}

// ResolvePortalLink finds the tenant of a portal link by its token hash,
// through the SECURITY DEFINER function on PostgreSQL.
func (db *DB) ResolvePortalLink(ctx context.Context, tokenHash []byte) (string, error) {
	if len(tokenHash) == 0 {
		return "", ErrNotFound
	}
	query := "SELECT tenant_id FROM portal_links WHERE token_hash = $1"
	if db.d.rowSecurity() {
		query = "SELECT idb_resolve_portal_link($1)"
	}
	var tenantID *string
	err := db.global(ctx, false, func(q querier) error {
		return q.queryRow(ctx, query, tokenHash).Scan(&tenantID)
	})
	if err == nil && (tenantID == nil || *tenantID == "") {
		err = ErrNotFound
	}
	if err != nil {
		return "", db.wrap("resolve portal link", err)
	}
	return *tenantID, nil
}

// PortalLinkByHash reads a link by its token hash without spending it.
func (db *DB) PortalLinkByHash(ctx context.Context, tokenHash []byte) (PortalLink, error) {
	var l PortalLink
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		var err error
		l, err = scanPortalLink(q.queryRow(ctx, "SELECT "+portalLinkCols+" FROM portal_links WHERE tenant_id = $1 AND token_hash = $2", tenantID, tokenHash))
		return err
	})
	if err != nil {
		return PortalLink{}, db.wrap("portal link", err)
	}
	return l, nil
}

// OpenPortalLink spends a link and starts its session in one conditional
// update, so two browsers racing to open one link cannot both win.
func (db *DB) OpenPortalLink(ctx context.Context, tokenHash, sessionHash []byte, now, sessionExpires time.Time) (PortalLink, bool, error) {
	if len(sessionHash) == 0 {
		return PortalLink{}, false, fmt.Errorf("%w: empty session hash", ErrInvalid)
	}
	var (
		l      PortalLink
		opened bool
	)
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		// A link opens once, also in a database restored from before
		// (tombstones.go).
		db.bury(ctx, Tombstone{Kind: TombPortalLink, TenantID: tenantID, Hash: tokenHash, At: now})
		n, err := q.exec(ctx, `UPDATE portal_links SET used_at = $3, session_hash = $4, session_expires_at = $5
			WHERE tenant_id = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > $3`,
			tenantID, tokenHash, db.d.timeArg(now), sessionHash, db.d.timeArg(sessionExpires))
		if err != nil {
			return err
		}
		opened = n == 1
		l, err = scanPortalLink(q.queryRow(ctx, "SELECT "+portalLinkCols+" FROM portal_links WHERE tenant_id = $1 AND token_hash = $2", tenantID, tokenHash))
		return err
	})
	return l, opened, db.wrap("open portal link", err)
}

// PortalSession checks a portal session cookie's secret against its link.
func (db *DB) PortalSession(ctx context.Context, linkID string, sessionHash []byte, now time.Time) (PortalLink, error) {
	var l PortalLink
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		var err error
		l, err = scanPortalLink(q.queryRow(ctx, "SELECT "+portalLinkCols+" FROM portal_links WHERE tenant_id = $1 AND id = $2", tenantID, linkID))
		return err
	})
	if err != nil {
		return PortalLink{}, db.wrap("portal session", err)
	}
	if len(l.SessionHash) == 0 || subtle.ConstantTimeCompare(l.SessionHash, sessionHash) != 1 ||
		l.SessionExpiresAt == nil || !now.Before(*l.SessionExpiresAt) {
		return PortalLink{}, ErrNotFound
	}
	return l, nil
}

// EndPortalSession expires a portal session now (sign-out).
func (db *DB) EndPortalSession(ctx context.Context, linkID string) error {
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		_, err := q.exec(ctx, "UPDATE portal_links SET session_expires_at = $3 WHERE tenant_id = $1 AND id = $2 AND session_expires_at IS NOT NULL",
			tenantID, linkID, db.d.timeArg(db.now()))
		return err
	})
	return db.wrap("end portal session", err)
}

// SaveConnectionTest replaces the last test login of a connection.
func (db *DB) SaveConnectionTest(ctx context.Context, t ConnectionTest) error {
	result, err := jsonArg(t.Result)
	if err != nil {
		return err
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = db.now()
	}
	err = db.scoped(ctx, func(q querier, tenantID string) error {
		_, err := q.exec(ctx, `INSERT INTO connection_tests (tenant_id, connection_id, ok, conn_updated_at, result, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (tenant_id, connection_id) DO UPDATE SET ok = excluded.ok, conn_updated_at = excluded.conn_updated_at,
			result = excluded.result, created_at = excluded.created_at`,
			tenantID, t.ConnectionID, t.OK, db.d.timeArg(t.ConnUpdatedAt), result, db.d.timeArg(t.CreatedAt))
		return err
	})
	return db.wrap("save connection test", err)
}

// ConnectionTest returns the last test login of a connection.
func (db *DB) ConnectionTest(ctx context.Context, connectionID string) (ConnectionTest, error) {
	var t ConnectionTest
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		return q.queryRow(ctx, `SELECT tenant_id, connection_id, ok, conn_updated_at, result, created_at
			FROM connection_tests WHERE tenant_id = $1 AND connection_id = $2`, tenantID, connectionID).
			Scan(&t.TenantID, &t.ConnectionID, &t.OK, timeDest{&t.ConnUpdatedAt}, jsonDest{&t.Result}, timeDest{&t.CreatedAt})
	})
	return t, db.wrap("get connection test", err)
}

// RecordDomainCheck notes the outcome of a domain's DNS check.
func (db *DB) RecordDomainCheck(ctx context.Context, id string, at time.Time, failure string) error {
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		n, err := q.exec(ctx, "UPDATE domains SET last_checked_at = $3, last_check_error = $4 WHERE tenant_id = $1 AND id = $2",
			tenantID, id, db.d.timeArg(at), failure)
		if err == nil && n == 0 {
			return ErrNotFound
		}
		return err
	})
	return db.wrap("record domain check", err)
}

// DomainChecks returns the last check of every checked domain of the
// tenant in ctx.
func (db *DB) DomainChecks(ctx context.Context) (map[string]DomainCheck, error) {
	out := map[string]DomainCheck{}
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		rs, err := q.query(ctx, "SELECT id, last_checked_at, last_check_error FROM domains WHERE tenant_id = $1 AND last_checked_at IS NOT NULL", tenantID)
		if err != nil {
			return err
		}
		type rowT struct {
			id string
			c  DomainCheck
		}
		rows, err := collect(rs, func(r row) (rowT, error) {
			var x rowT
			err := r.Scan(&x.id, timeDest{&x.c.CheckedAt}, &x.c.Failure)
			return x, err
		})
		for _, x := range rows {
			out[x.id] = x.c
		}
		return err
	})
	return out, db.wrap("domain checks", err)
}

// ActivityKept is how many of a directory's recent changes the portal
// shows.
const ActivityKept = 10

// DirectoryActivity lists the newest dsync.* events of directory id of
// the tenant in ctx, at most limit (1 to 100). It reads the directory's
// own events by their index (migration 0072), so a busy sibling directory
// cannot crowd a quiet one's out.
func (db *DB) DirectoryActivity(ctx context.Context, directoryID string, limit int) ([]Event, error) {
	tenantID, ok := TenantFrom(ctx)
	if !ok {
		return nil, ErrNoTenant
	}
	if limit <= 0 || limit > 100 {
		limit = ActivityKept
	}
	dirExpr := "(data->>'directory_id')"
	if db.d.name() != "postgres" {
		dirExpr = "json_extract(data, '$.directory_id')"
	}
	var out []Event
	err := db.global(ctx, false, func(q querier) error {
		// The predicate and the expression are the index's, word for word.
		rs, err := q.query(ctx, "SELECT "+eventCols+" FROM events WHERE tenant_id = $1 AND type LIKE 'dsync.%' AND "+dirExpr+
			" = $2 ORDER BY seq DESC LIMIT $3", tenantID, directoryID, limit)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanEvent)
		return err
	})
	return out, db.wrap("directory activity", err)
}

// TenantEvents lists the newest events of the tenant in ctx whose type
// starts with typePrefix, skipping offset: the portal's sign-in log and
// directory activity. Events are the vendor's global stream; this reads
// only the tenant's rows, by the (tenant_id, seq) index.
func (db *DB) TenantEvents(ctx context.Context, typePrefix string, offset, limit int) ([]Event, error) {
	tenantID, ok := TenantFrom(ctx)
	if !ok {
		return nil, ErrNoTenant
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var out []Event
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, "SELECT "+eventCols+" FROM events WHERE tenant_id = $1 AND type LIKE $2 ORDER BY seq DESC LIMIT $3 OFFSET $4",
			tenantID, strings.ReplaceAll(typePrefix, "%", "")+"%", limit, max(offset, 0))
		if err != nil {
			return err
		}
		out, err = collect(rs, scanEvent)
		return err
	})
	return out, db.wrap("tenant events", err)
}
