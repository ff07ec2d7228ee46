package connections

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"

	"github.com/idbroker/idbroker/store"
)

// CreateConnection adds a connection to the tenant in ctx. It is active at
// once when its settings are complete, draft otherwise. hook, if not nil,
// runs in the transaction that writes it.
func (r *Registry) CreateConnection(ctx context.Context, typ store.ConnectionType, name string, s Settings, hook Hook) (store.Connection, error) {
	name, err := checkConnName(name)
	if err != nil {
		return store.Connection{}, err
	}
	t, err := r.cfg.Types.lookup(typ)
	if err != nil {
		return store.Connection{}, err
	}
	// The tenant is known now, so that a connector probed before the row
	// is written is the one the first login uses.
	tenantID, _ := store.TenantFrom(ctx)
	conn := store.Connection{ID: store.NewID(store.PrefixConnection), TenantID: tenantID, Type: typ, Name: name, Secrets: map[string]string{}}
	if _, err := r.configure(ctx, t, &conn, s); err != nil {
		return store.Connection{}, err
	}
	conn.Status = store.ConnectionDraft
	var probed Connector
	if len(t.Missing(conn)) == 0 {
		if probed, err = r.probe(ctx, conn); err != nil {
			return store.Connection{}, err
		}
		conn.Status = store.ConnectionActive
	}
	var out store.Connection
	err = r.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		var err error
		out, err = r.cfg.Store.CreateConnection(ctx, conn)
		if err != nil {
			return err
		}
		if out.Status == store.ConnectionActive {
			if err := r.event(ctx, EventActivated, out, nil); err != nil {
				return err
			}
		}
		return runHook(ctx, hook, out)
	})
	if err != nil {
		return store.Connection{}, fmt.Errorf("create connection: %w", err)
	}
	r.keep(out, probed)
	return out, nil
}

// updateAttempts bounds how often an update without IfVersion is applied
// again to a connection that changed under it (the maintenance loop
// rolling a certificate, another admin) before it gives up with
// ErrChanged.
const updateAttempts = 5

// UpdateConnection changes a connection of the tenant in ctx. Activating
// needs complete settings; deactivating ends the connection's sessions.
// The change is applied to the connection as read and written only if no
// one changed it in between (its version); if someone did, it is applied
// again to the new state, so that neither change is lost. hook, if not
// nil, runs in the transaction that writes it.
func (r *Registry) UpdateConnection(ctx context.Context, id string, u Update, hook Hook) (store.Connection, error) {
	for attempt := 1; ; attempt++ {
		out, err := r.updateOnce(ctx, id, u, hook)
		if !errors.Is(err, store.ErrVersionMismatch) {
			return out, err
		}
		if u.IfVersion != 0 || attempt == updateAttempts {
			return store.Connection{}, fmt.Errorf("update connection %s: %w", id, ErrChanged)
		}
	}
}

// updateOnce is one attempt of UpdateConnection: read, change, write if
// the version read is still the stored one (store.ErrVersionMismatch if
// not).
func (r *Registry) updateOnce(ctx context.Context, id string, u Update, hook Hook) (store.Connection, error) {
	conn, err := r.cfg.Store.Connection(ctx, id)
	if err != nil {
		return store.Connection{}, storeErr(err, id)
	}
	if u.IfVersion != 0 && u.IfVersion != conn.Version {
		return store.Connection{}, store.ErrVersionMismatch
	}
	t, err := r.cfg.Types.lookup(conn.Type)
	if err != nil {
		return store.Connection{}, err
	}
	before := conn.Status
	orig := conn
	orig.Secrets = maps.Clone(conn.Secrets)
	if u.Name != nil {
		if conn.Name, err = checkConnName(*u.Name); err != nil {
			return store.Connection{}, err
		}
	}
	if conn.Secrets == nil {
		conn.Secrets = map[string]string{}
	}
	changedIdP, err := r.configure(ctx, t, &conn, u.Settings)
	if err != nil {
		return store.Connection{}, err
	}
	missing := t.Missing(conn)
	switch {
	case u.Status == nil:
		// A draft becomes active once complete; an inactive one stays off
		// until someone turns it on.
		if conn.Status == store.ConnectionDraft && len(missing) == 0 {
			conn.Status = store.ConnectionActive
		}
	case *u.Status == store.ConnectionActive:
		if len(missing) > 0 {
			return store.Connection{}, Invalid(string(conn.Type)+"."+missing[0], "cannot activate: missing %s", strings.Join(missing, ", "))
		}
		conn.Status = store.ConnectionActive
	case *u.Status == store.ConnectionInactive:
		conn.Status = store.ConnectionInactive
	case *u.Status == store.ConnectionDraft && conn.Status == store.ConnectionDraft:
		// A draft stays a draft while the portal's wizard fills it in
		// and tests it; the admin activates it once a test login passed.
	default:
		return store.Connection{}, Invalid("status", `status must be "active" or "inactive"`)
	}
	if conn.Status == store.ConnectionActive && len(missing) > 0 {
		return store.Connection{}, Invalid(string(conn.Type)+"."+missing[0], "the change would leave an active connection without %s", strings.Join(missing, ", "))
	}
	if unchanged(orig, conn) {
		// Nothing to write: no new version (which would make the portal's
		// last test login stale), no audit row, no hook.
		return orig, nil
	}
	var probed Connector
	if conn.Status == store.ConnectionActive && (changedIdP || before != store.ConnectionActive) {
		if probed, err = r.probe(ctx, conn); err != nil {
			return store.Connection{}, err
		}
	}

	var (
		out store.Connection
		rv  *store.Revocation
	)
	err = r.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		// conn carries the version read above: the store writes nothing
		// if it is no longer the stored one.
		var err error
		out, err = r.cfg.Store.UpdateConnection(ctx, conn)
		if err != nil {
			return err
		}
		switch {
		case before != store.ConnectionActive && out.Status == store.ConnectionActive:
			err = r.event(ctx, EventActivated, out, nil)
		case before == store.ConnectionActive && out.Status != store.ConnectionActive:
			if rv, err = r.recordRevocation(ctx, out, "connection.deactivated"); err == nil {
				err = r.event(ctx, EventDeactivated, out, nil)
			}
		}
		if err != nil {
			return err
		}
		return runHook(ctx, hook, out)
	})
	if errors.Is(err, store.ErrVersionMismatch) {
		return store.Connection{}, err
	}
	if err != nil {
		return store.Connection{}, fmt.Errorf("update connection: %w", storeErr(err, id))
	}
	// This node's SSO endpoints see the change at once; others within
	// CacheTTL.
	r.keep(out, probed)
	if before == store.ConnectionActive && out.Status != store.ConnectionActive {
		r.endSessions(ctx, out, rv)
	}
	return out, nil
}

// unchanged reports whether an update leaves a connection as it was read:
// same name, status, settings and secrets.
func unchanged(a, b store.Connection) bool {
	return a.Name == b.Name && a.Status == b.Status && sameJSON(a.Config, b.Config) && maps.Equal(a.Secrets, b.Secrets)
}

// sameJSON reports whether two JSON documents hold the same value. The
// settings read back from PostgreSQL are jsonb's rendering (its key order,
// its spaces), never the bytes the type marshalled, so comparing bytes
// took every PATCH there for a change: a new version, an audit row.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	x, errX := decodeExact(a)
	y, errY := decodeExact(b)
	if errX != nil || errY != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// decodeExact decodes a JSON document with numbers as their text, so that
// two settings differing past float64's precision are not taken as equal.
func decodeExact(doc []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// DeleteConnection removes a connection of the tenant in ctx and ends its
// sessions. A non-zero ifVersion is the version the caller last saw
// (ErrChanged if it changed since). hook, if not nil, runs in the
// transaction that deletes it, with the connection as it was.
func (r *Registry) DeleteConnection(ctx context.Context, id string, ifVersion int64, hook Hook) error {
	var (
		conn store.Connection
		rv   *store.Revocation
	)
	err := r.cfg.Store.InTx(ctx, func(ctx context.Context) error {
		// The store reads the row it deletes in this transaction, so the
		// event reports the status it had, not a stale copy's.
		var err error
		if conn, err = r.cfg.Store.DeleteConnection(ctx, id, ifVersion); err != nil {
			return err
		}
		if rv, err = r.recordRevocation(ctx, conn, "connection.deleted"); err != nil {
			return err
		}
		if conn.Status == store.ConnectionActive {
			// The event says what the connection is now: it routes no one.
			// Its pre-delete status ("active") would tell a consumer that
			// mirrors connection state to show it as still in service.
			gone := conn
			gone.Status = store.ConnectionInactive
			if err := r.event(ctx, EventDeactivated, gone, map[string]any{"deleted": true}); err != nil {
				return err
			}
		}
		return runHook(ctx, hook, conn)
	})
	if errors.Is(err, store.ErrVersionMismatch) {
		return fmt.Errorf("delete connection %s: %w", id, ErrChanged)
	}
	if err != nil {
		return fmt.Errorf("delete connection: %w", storeErr(err, id))
	}
	r.cache.dropConn(id, r.now())
	r.endSessions(ctx, conn, rv)
	return nil
}

func runHook(ctx context.Context, hook Hook, conn store.Connection) error {
	if hook == nil {
		return nil
	}
	return hook(ctx, conn)
}

// configure hands conn's Type the settings of its own type, and reports
// whether there were any; another type's settings are refused.
func (r *Registry) configure(ctx context.Context, t Type, conn *store.Connection, s Settings) (bool, error) {
	var raw []byte
	for typ, v := range s {
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			continue
		}
		if typ != conn.Type {
			return false, Invalid(string(typ), "%s settings on a %s connection", typ, conn.Type)
		}
		raw = v
	}
	if err := t.Configure(ctx, r.deps, conn, raw); err != nil {
		return false, qualify(string(conn.Type), err)
	}
	return raw != nil, nil
}

// probe builds the connector of a connection about to become active, so
// that a bad IdP configuration (an unreachable OIDC issuer) is a clear 4xx
// now rather than failed logins later. The connector it built serves the
// first logins once the change is saved (keep), so activating reaches the
// IdP once (OIDC discovery), not again at the first login.
func (r *Registry) probe(ctx context.Context, conn store.Connection) (Connector, error) {
	cn, err := r.open(ctx, conn)
	switch {
	case err == nil:
		return cn, nil
	case errors.Is(err, ErrConfig):
		return nil, qualify(string(conn.Type), err)
	}
	// An IdP that cannot be reached refuses the settings that point to
	// it; the cause stays an ErrUpstream for errors.Is.
	return nil, qualify(string(conn.Type), &FieldError{Field: FieldOf(err), Msg: Message(err), Err: err})
}

// keep caches out, just written, with the connector probe built from the
// same settings.
func (r *Registry) keep(out store.Connection, probed Connector) {
	r.cache.putConn(out, r.now())
	if probed != nil && out.Status == store.ConnectionActive {
		r.cache.putConnector(out, probed)
	}
}

func storeErr(err error, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if errors.Is(err, store.ErrInvalid) {
		return &FieldError{Msg: strings.TrimPrefix(err.Error(), "store: "), Err: err}
	}
	return err
}
