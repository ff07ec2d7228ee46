package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

const auditCols = "tenant_id, id, actor, action, resource, context, request_id, ts, prev_hash, hash, key_version, mac"

func scanAudit(r row) (AuditEvent, error) {
	var e AuditEvent
	err := r.Scan(&e.TenantID, &e.ID, jsonDest{&e.Actor}, &e.Action, jsonDest{&e.Resource}, jsonDest{&e.Context},
		&e.RequestID, timeDest{&e.TS}, &e.PrevHash, &e.Hash, &e.KeyVersion, &e.MAC)
	return e, err
}

// AuditHash is the chain link of e: SHA-256 over the previous hash and a
// canonical encoding of every field but the hashes, hex-encoded. Anyone
// can compute it, so it only shows what changed since a MAC (AuditKeys)
// or a checkpoint vouched for the chain; every build computes it the
// same way, which lets old and new nodes write one chain.
func AuditHash(e AuditEvent) (string, error) {
	body, err := auditBody(e)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// auditBody is the canonical encoding of e that both links hash.
func auditBody(e AuditEvent) ([]byte, error) {
	ctxJSON := e.Context
	if len(ctxJSON) == 0 {
		ctxJSON = json.RawMessage("{}")
	}
	// Compact so that a jsonb round trip (which reformats) hashes the same.
	var compact map[string]any
	if err := json.Unmarshal(ctxJSON, &compact); err != nil {
		return nil, fmt.Errorf("%w: audit context must be a JSON object", ErrInvalid)
	}
	body, err := json.Marshal(struct {
		ID        string         `json:"id"`
		TenantID  string         `json:"tenant_id"`
		Actor     Actor          `json:"actor"`
		Action    string         `json:"action"`
		Resource  Resource       `json:"resource"`
		Context   map[string]any `json:"context"`
		RequestID string         `json:"request_id"`
		TS        string         `json:"ts"`
	}{e.ID, e.TenantID, e.Actor, e.Action, e.Resource, compact, e.RequestID, e.TS.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return nil, err
	}
	return body, nil
}

// AppendAudit adds a row to the audit chain of the tenant in ctx. Appends
// to one tenant are serialised, so the chain never forks.
func (db *DB) AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	stamped := e.TS.IsZero() // ours to stamp, once the chain is ours
	if err := db.prepareAudit(&e); err != nil {
		return AuditEvent{}, err
	}
	var usedKey []byte
	err := db.scoped(ctx, func(q querier, tenantID string) error {
		e.TenantID = tenantID
		if err := db.d.lockAuditChain(ctx, q, tenantID); err != nil {
			return err
		}
		var seq int64
		var prevTS time.Time
		err := q.queryRow(ctx, "SELECT seq, hash, ts FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1", tenantID).Scan(&seq, &e.PrevHash, timeDest{&prevTS})
		if err != nil && !db.d.isNoRows(err) {
			return err
		}
		// The row is the chain's newest: it must not be older than the row
		// before it, which another node (its clock ahead) or a writer that
		// took its time and the lock first may have stamped later. Then
		// the log's newest-first order (ts, then seq) is the chain's own,
		// and a reader paging it never misses a row that commits behind
		// its cursor.
		if stamped {
			e.TS = db.now().UTC().Truncate(time.Microsecond)
		}
		if e.TS.Before(prevTS) {
			e.TS = prevTS
		}
		version, key, err := db.auditKey(ctx, q, e.TS)
		if err != nil {
			return err
		}
		usedKey = key
		if err := sealAudit(&e, version, key); err != nil {
			return err
		}
		actor, _ := json.Marshal(e.Actor)
		resource, _ := json.Marshal(e.Resource)
		_, err = q.exec(ctx, "INSERT INTO audit_events (seq, "+auditCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
			seq+1, e.TenantID, e.ID, string(actor), e.Action, string(resource), string(e.Context), e.RequestID,
			db.d.timeArg(e.TS), e.PrevHash, e.Hash, e.KeyVersion, e.MAC)
		return err
	})
	if err == nil {
		db.rememberAuditKey(ctx, e.KeyVersion, usedKey)
	}
	return e, db.wrap("append audit", err)
}

// prepareAudit refuses a row without an action and fills in what the
// caller may leave out, as both chains (a tenant's and the operators') hash
// and store it.
func (db *DB) prepareAudit(e *AuditEvent) error {
	if e.Action == "" {
		return fmt.Errorf("%w: audit action is empty", ErrInvalid)
	}
	if e.ID == "" {
		e.ID = NewID(PrefixAudit)
	}
	if e.TS.IsZero() {
		e.TS = db.now()
	}
	// Hashed as the database will give it back: both backends keep
	// microseconds, so a caller's nanoseconds would break the chain.
	e.TS = e.TS.UTC().Truncate(time.Microsecond)
	if len(e.Context) == 0 {
		e.Context = json.RawMessage("{}")
	}
	return nil
}

// AuditEvents lists the audit rows of the tenant in ctx, newest first,
// optionally only one action; After is the id of the last row already seen.
func (db *DB) AuditEvents(ctx context.Context, action string, p Page) ([]AuditEvent, string, error) {
	p = p.Normalize()
	var out []AuditEvent
	err := db.scopedRead(ctx, func(q querier, tenantID string) error {
		// The action is in the SQL only when asked for: "($2 = '' OR
		// action = $2)" kept the planners (SQLite always, PostgreSQL on a
		// cached generic plan) off audit_events_action, so a page of a
		// rare action read the tenant's whole audit log.
		query := "SELECT " + auditCols + " FROM audit_events WHERE tenant_id = $1"
		args := []any{tenantID, p.Limit + 1}
		if action != "" {
			args = append(args, action)
			query += fmt.Sprintf(" AND action = $%d", len(args))
		}
		if p.After != "" {
			args = append(args, p.After)
			query += fmt.Sprintf(" AND seq < (SELECT seq FROM audit_events WHERE tenant_id = $1 AND id = $%d)", len(args))
		}
		rs, err := q.query(ctx, query+" ORDER BY seq DESC LIMIT $2", args...)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanAudit)
		return err
	})
	if err != nil {
		return nil, "", db.wrap("list audit events", err)
	}
	out, next := cut(out, p.Limit, func(e AuditEvent) string { return e.ID })
	return out, next, nil
}

// WalkAudit visits the tenant's audit rows in chain order, a page at a time
// so that a long history is never held in memory at once.
func (db *DB) WalkAudit(ctx context.Context, fn func(AuditEvent) error) error {
	return walkBySeq(walkPage, func(after int64, limit int) (page []seqRow[AuditEvent], err error) {
		err = db.scopedRead(ctx, func(q querier, tenantID string) error {
			rs, err := q.query(ctx, "SELECT seq, "+auditCols+" FROM audit_events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
				tenantID, after, limit)
			if err != nil {
				return err
			}
			page, err = collect(rs, withSeq(scanAudit))
			return err
		})
		return page, db.wrap("walk audit", err)
	}, fn)
}

// walkPage is how many rows WalkAudit and WalkOperatorAudit hold at once.
const walkPage = 500

// seqRow is a row of a hash chain with its seq, the key walkBySeq pages on.
type seqRow[T any] struct {
	seq int64
	v   T
}

// withSeq makes scan, which reads a row's columns, read a row that starts
// with its seq, as walkBySeq's queries select it.
func withSeq[T any](scan func(row) (T, error)) func(row) (seqRow[T], error) {
	return func(r row) (seqRow[T], error) {
		var s seqRow[T]
		var err error
		s.v, err = scan(seqFirst{r, &s.seq})
		return s, err
	}
}

// seqFirst is a row whose first column goes to seq before the ones its
// scanner names.
type seqFirst struct {
	r   row
	seq *int64
}

func (s seqFirst) Scan(dest ...any) error { return s.r.Scan(append([]any{s.seq}, dest...)...) }

// walkBySeq calls fn on every row of a hash chain in seq order, reading
// limit rows at a time so that a long history is never held in memory at
// once. read returns at most limit rows whose seq is above after, in seq
// order; its errors and fn's are returned as they are.
func walkBySeq[T any](limit int, read func(after int64, limit int) ([]seqRow[T], error), fn func(T) error) error {
	// From the lowest seq there can be, not 0: a row forged at seq 0 or
	// below is listed by the reads as the oldest, so it must be walked
	// (and found not to link) too.
	after := int64(math.MinInt64)
	for {
		page, err := read(after, limit)
		if err != nil {
			return err
		}
		for _, r := range page {
			if err := fn(r.v); err != nil {
				return err
			}
		}
		if len(page) < limit {
			return nil
		}
		after = page[len(page)-1].seq
	}
}
