package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
)

const connectionCols = "tenant_id, id, type, name, status, config, secrets, version, created_at, updated_at"

func (db *DB) scanConnection(r row) (Connection, error) {
	var c Connection
	var sealed []byte
	if err := r.Scan(&c.TenantID, &c.ID, &c.Type, &c.Name, &c.Status, jsonDest{&c.Config}, &sealed,
		&c.Version, timeDest{&c.CreatedAt}, timeDest{&c.UpdatedAt}); err != nil {
		return Connection{}, err
	}
	if len(sealed) > 0 {
		if s, ok := db.opened.get(c.TenantID, c.ID, sealed); ok {
			c.Secrets = s
			return c, nil
		}
		plain, err := db.cipher.Open(sealed, aad("connections", c.TenantID, c.ID))
		if err != nil {
			return Connection{}, fmt.Errorf("open secrets of %s: %w", c.ID, err)
		}
		if err := json.Unmarshal(plain, &c.Secrets); err != nil {
			return Connection{}, fmt.Errorf("decode secrets of %s: %w", c.ID, err)
		}
		db.opened.put(c.TenantID, c.ID, sealed, c.Secrets)
	}
	return c, nil
}

// openedSecrets remembers, per connection row, the secrets last opened and
// the ciphertext they came from. Routing reads a tenant's connections on
// every sign-in, and opening and decoding the same ciphertext each time was
// about 1 % of a login's CPU. A hit needs the very same ciphertext under
// the same row (the AEAD's additional data binds it to tenant and id), which
// can only open to the same plaintext, so nothing is trusted that Open would
// refuse; a rewrapped or edited row misses and is opened. Callers get their
// own copy of the map.
type openedSecrets struct {
	mu sync.Mutex
	m  map[[2]string]opened
}

type opened struct {
	sealed  []byte
	secrets map[string]string
}

// maxOpenedSecrets bounds the memory held: beyond it the map starts over.
const maxOpenedSecrets = 4096

func (o *openedSecrets) get(tenantID, id string, sealed []byte) (map[string]string, bool) {
	o.mu.Lock()
	e, ok := o.m[[2]string{tenantID, id}]
	o.mu.Unlock()
	if !ok || !bytes.Equal(e.sealed, sealed) {
		return nil, false
	}
	return maps.Clone(e.secrets), true
}

func (o *openedSecrets) put(tenantID, id string, sealed []byte, secrets map[string]string) {
	e := opened{sealed: bytes.Clone(sealed), secrets: maps.Clone(secrets)}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil || len(o.m) >= maxOpenedSecrets {
		o.m = make(map[[2]string]opened)
	}
	o.m[[2]string{tenantID, id}] = e
}

// sealSecrets encrypts a connection's secrets bound to its row.
func (db *DB) sealSecrets(c Connection) ([]byte, error) {
	if len(c.Secrets) == 0 {
		return nil, nil
	}
	plain, err := json.Marshal(c.Secrets)
	if err != nil {
		return nil, err
	}
	return db.cipher.Seal(plain, aad("connections", c.TenantID, c.ID))
}

// aad binds a sealed value to the table, tenant and row it was written for.
func aad(parts ...string) []byte { return []byte(strings.Join(parts, "\x00")) }

func validConnection(c Connection) error {
	switch {
	case !validConnectionType(c.Type):
		return fmt.Errorf("%w: connection type %q", ErrInvalid, c.Type)
	case c.Status != ConnectionDraft && c.Status != ConnectionActive && c.Status != ConnectionInactive:
		return fmt.Errorf("%w: connection status %q", ErrInvalid, c.Status)
	case strings.TrimSpace(c.Name) == "":
		return fmt.Errorf("%w: connection name is empty", ErrInvalid)
	}
	return nil
}

// CreateConnection adds an upstream IdP to the tenant in ctx. Status
// defaults to draft.
func (db *DB) CreateConnection(ctx context.Context, c Connection) (Connection, error) {
	if c.Status == "" {
		c.Status = ConnectionDraft
	}
	if err := validConnection(c); err != nil {
		return Connection{}, err
	}
	if c.ID == "" {
		c.ID = NewID(PrefixConnection)
	}
	c.CreatedAt = db.now()
	c.UpdatedAt = c.CreatedAt
	c.Version = 1
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		c.TenantID = tenantID
		cfg, err := jsonArg(c.Config)
		if err != nil {
			return err
		}
		sealed, err := db.sealSecrets(c)
		if err != nil {
			return err
		}
		_, err = q.exec(ctx, "INSERT INTO connections ("+connectionCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
			c.TenantID, c.ID, c.Type, c.Name, c.Status, cfg, sealed, c.Version, db.d.timeArg(c.CreatedAt), db.d.timeArg(c.UpdatedAt))
		return err
	})
	return c, db.wrap("create connection", err)
}

// Connection returns one connection of the tenant in ctx.
func (db *DB) Connection(ctx context.Context, id string) (Connection, error) {
	var c Connection
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		var err error
		c, err = db.scanConnection(q.queryRow(ctx, "SELECT "+connectionCols+" FROM connections WHERE tenant_id = $1 AND id = $2", tenantID, id))
		return err
	})
	return c, db.wrap("get connection", err)
}

// Connections lists the connections of the tenant in ctx.
func (db *DB) Connections(ctx context.Context) ([]Connection, error) {
	var out []Connection
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		rs, err := q.query(ctx, "SELECT "+connectionCols+" FROM connections WHERE tenant_id = $1 ORDER BY id", tenantID)
		if err != nil {
			return err
		}
		out, err = collect(rs, db.scanConnection)
		return err
	})
	return out, db.wrap("list connections", err)
}

// TenantConnections returns the tenant in ctx and its connections: the
// reads that route a sign-in. On PostgreSQL, outside a transaction, both
// statements follow the tenant setting in one pipeline, one round trip
// instead of two; elsewhere (SQLite, or inside InTx) they are Tenant and
// Connections. An unknown tenant is ErrNotFound.
func (db *DB) TenantConnections(ctx context.Context) (Tenant, []Connection, error) {
	p, ok := db.d.(rowAndRowsReader)
	if _, inTx := ctx.Value(txKey{}).(*txState); inTx || !ok {
		t, err := db.Tenant(ctx)
		if err != nil {
			return Tenant{}, nil, err
		}
		cs, err := db.Connections(ctx)
		if err != nil {
			return Tenant{}, nil, err
		}
		return t, cs, nil
	}
	tenantID, err := requireTenant(ctx)
	if err != nil {
		return Tenant{}, nil, err
	}
	var (
		t  Tenant
		cs []Connection
	)
	err = p.readRowAndRows(ctx, tenantID, uncheckedCredential(ctx),
		pgQueued{sql: "SELECT " + tenantCols + " FROM tenants WHERE id = $1", args: []any{tenantID}},
		pgQueued{sql: "SELECT " + connectionCols + " FROM connections WHERE tenant_id = $1 ORDER BY id", args: []any{tenantID}},
		func(r row) (err error) {
			t, err = scanTenant(r)
			return err
		},
		func(rs rows) (err error) {
			cs, err = collect(rs, db.scanConnection)
			return err
		})
	if err != nil {
		return Tenant{}, nil, db.wrap("get tenant and connections", err)
	}
	return t, cs, nil
}

// rowAndRowsReader is a dialect that can send two tenant reads outside a
// transaction in one round trip (PostgreSQL).
type rowAndRowsReader interface {
	// readRowAndRows runs first (one row, to one) and second (rows, to
	// all, only once one has succeeded) with row-level security admitting
	// tenantID. An unchecked directory credential c, if not nil, is checked
	// in the same round trip.
	readRowAndRows(ctx context.Context, tenantID string, c *credential, first, second pgQueued, one func(row) error, all func(rows) error) error
}

// UpdateConnection replaces a connection's name, status, config and
// secrets; type and tenant never change. A non-zero c.Version is the
// version the caller read: if the row has moved on since, nothing is
// written and the error is ErrVersionMismatch, so that a writer working
// from a stale copy (an admin's edit, the maintenance loop's certificate
// rollover) re-reads rather than writing its copy over the other's change.
// Every update bumps the version.
func (db *DB) UpdateConnection(ctx context.Context, c Connection) (Connection, error) {
	var reactivated bool
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		old, err := db.scanConnection(q.queryRow(ctx, "SELECT "+connectionCols+" FROM connections WHERE tenant_id = $1 AND id = $2"+db.d.forUpdate(), tenantID, c.ID))
		if err != nil {
			return err
		}
		if c.Version != 0 && c.Version != old.Version {
			return ErrVersionMismatch
		}
		c.TenantID, c.Type, c.CreatedAt, c.Version = old.TenantID, old.Type, old.CreatedAt, old.Version+1
		if err := validConnection(c); err != nil {
			return err
		}
		c.UpdatedAt = db.now()
		reactivated = old.Status != ConnectionActive && c.Status == ConnectionActive
		cfg, err := jsonArg(c.Config)
		if err != nil {
			return err
		}
		sealed, err := db.sealSecrets(c)
		if err != nil {
			return err
		}
		n, err := q.exec(ctx, "UPDATE connections SET name = $3, status = $4, config = $5, secrets = $6, updated_at = $7, version = $8 WHERE tenant_id = $1 AND id = $2 AND version = $9",
			tenantID, c.ID, c.Name, c.Status, cfg, sealed, db.d.timeArg(c.UpdatedAt), c.Version, old.Version)
		if err == nil && n == 0 {
			return ErrVersionMismatch
		}
		if err == nil && old.Status == ConnectionActive && c.Status != ConnectionActive {
			// Kept outside the database before the commit (tombstones.go).
			db.bury(ctx, Tombstone{Kind: TombConnection, ID: c.ID, TenantID: tenantID, At: c.UpdatedAt})
		}
		return err
	})
	if err == nil && reactivated {
		db.unbury(ctx, TombConnection, c.ID)
	}
	return c, db.wrap("update connection", err)
}

// DeleteConnection removes a connection of the tenant in ctx and returns
// the row as it was when deleted. A non-zero ifVersion is the version the
// caller read (ErrVersionMismatch if the row has moved on since).
func (db *DB) DeleteConnection(ctx context.Context, id string, ifVersion int64) (Connection, error) {
	var c Connection
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		var err error
		c, err = db.scanConnection(q.queryRow(ctx, "SELECT "+connectionCols+" FROM connections WHERE tenant_id = $1 AND id = $2"+db.d.forUpdate(), tenantID, id))
		if err != nil {
			return err
		}
		if ifVersion != 0 && ifVersion != c.Version {
			return ErrVersionMismatch
		}
		n, err := q.exec(ctx, "DELETE FROM connections WHERE tenant_id = $1 AND id = $2 AND version = $3", tenantID, id, c.Version)
		if err == nil && n == 0 {
			return ErrVersionMismatch
		}
		if err == nil {
			// Kept outside the database before the commit (tombstones.go):
			// restored, the connection comes back inactive.
			db.bury(ctx, Tombstone{Kind: TombConnection, ID: id, TenantID: tenantID})
		}
		return err
	})
	if err != nil {
		return Connection{}, db.wrap("delete connection", err)
	}
	return c, nil
}

// validConnectionType accepts a type name as package connections spells
// them (saml, oidc, …): the store keeps no list of types, which belong to
// the connection packages.
func validConnectionType(t ConnectionType) bool {
	if t == "" || len(t) > 32 || t[0] < 'a' || t[0] > 'z' {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
