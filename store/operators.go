package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Prefixes of the console's ids.
const (
	PrefixOperator        = "opr"
	PrefixOperatorSession = "ops"
)

// OperatorStatus is where an operator stands: pending until enrolment
// (password and TOTP) is complete, then active, until disabled.
type OperatorStatus string

const (
	OperatorPending  OperatorStatus = "pending"
	OperatorActive   OperatorStatus = "active"
	OperatorDisabled OperatorStatus = "disabled"
)

// Operator is a person of the SaaS vendor who signs in to the console:
// global, like API keys. TOTPSecret (base32) is sealed at rest and opened on
// read; PasswordHash is an argon2id PHC string.
type Operator struct {
	ID             string
	Email          string
	Status         OperatorStatus
	PasswordHash   string
	TOTPSecret     string
	TOTPLastStep   int64
	EnrolTokenHash []byte
	EnrolExpiresAt *time.Time
	FailedAttempts int
	LockedUntil    *time.Time
	LastLoginAt    *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// OperatorSession is a signed-in console session; only the SHA-256 of its
// cookie is stored.
type OperatorSession struct {
	ID         string
	TokenHash  []byte
	OperatorID string
	CSRFToken  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// OperatorAuditEvent is one row of the operators' own audit trail: what an
// operator did that belongs to no tenant.
type OperatorAuditEvent struct {
	ID        string
	Actor     Actor
	Action    string
	Resource  Resource
	Context   json.RawMessage
	RequestID string
	TS        time.Time
	// PrevHash and Hash chain the operators' rows as AuditEvent's chain a
	// tenant's: see OperatorAuditHash. Rows written before the chain
	// existed (migration 0081) have both empty.
	PrevHash, Hash string
	// MAC and KeyVersion vouch for Hash as AuditEvent's do.
	MAC        string
	KeyVersion int
}

// OperatorAuditHash is the chain link of e, computed as AuditHash computes
// a tenant row's with an empty tenant id (no tenant's id is empty, and the
// two chains never meet). AuditKeys.OperatorHash re-computes it for any
// row, including those migration 0109 alone keyed.
func OperatorAuditHash(e OperatorAuditEvent) (string, error) {
	return AuditHash(e.asAudit())
}

// asAudit is e as a row of a tenant's chain under no tenant: the
// operators' chain is hashed and prepared as a tenant's is.
func (e OperatorAuditEvent) asAudit() AuditEvent {
	return AuditEvent{ID: e.ID, Actor: e.Actor, Action: e.Action, Resource: e.Resource,
		Context: e.Context, RequestID: e.RequestID, TS: e.TS, PrevHash: e.PrevHash, Hash: e.Hash, MAC: e.MAC, KeyVersion: e.KeyVersion}
}

const operatorCols = `id, email, status, password_hash, totp_secret, totp_last_step, enrol_token_hash,
	enrol_expires_at, failed_attempts, locked_until, last_login_at, created_at, updated_at`

func (db *DB) scanOperator(r row) (Operator, error) {
	var o Operator
	var sealed []byte
	err := r.Scan(&o.ID, &o.Email, &o.Status, &o.PasswordHash, &sealed, &o.TOTPLastStep, &o.EnrolTokenHash,
		nullTimeDest{&o.EnrolExpiresAt}, &o.FailedAttempts, nullTimeDest{&o.LockedUntil}, nullTimeDest{&o.LastLoginAt},
		timeDest{&o.CreatedAt}, timeDest{&o.UpdatedAt})
	if err != nil {
		return Operator{}, err
	}
	if len(sealed) > 0 {
		plain, err := db.cipher.Open(sealed, aad("operators", o.ID))
		if err != nil {
			return Operator{}, fmt.Errorf("open TOTP secret of %s: %w", o.ID, err)
		}
		o.TOTPSecret = string(plain)
	}
	return o, nil
}

// CreateOperator stores a pending operator with its enrolment token hash.
// An email already taken (case-insensitively) is ErrConflict.
func (db *DB) CreateOperator(ctx context.Context, o Operator) (Operator, error) {
	o.Email = strings.TrimSpace(o.Email)
	if o.Email == "" || !strings.Contains(o.Email, "@") {
		return Operator{}, fmt.Errorf("%w: operator email %q", ErrInvalid, o.Email)
	}
	if o.ID == "" {
		o.ID = NewID(PrefixOperator)
	}
	if o.Status == "" {
		o.Status = OperatorPending
	}
	o.CreatedAt = db.now()
	o.UpdatedAt = o.CreatedAt
	err := db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, `INSERT INTO operators (id, email, status, enrol_token_hash, enrol_expires_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			o.ID, o.Email, o.Status, o.EnrolTokenHash, db.optTime(o.EnrolExpiresAt), db.d.timeArg(o.CreatedAt), db.d.timeArg(o.UpdatedAt))
		return err
	})
	return o, db.wrap("create operator", err)
}

// Operator returns one operator by id.
func (db *DB) Operator(ctx context.Context, id string) (Operator, error) {
	return db.operatorWhere(ctx, "id = $1", id)
}

// OperatorByEmail finds an operator by email, case-insensitively.
func (db *DB) OperatorByEmail(ctx context.Context, email string) (Operator, error) {
	return db.operatorWhere(ctx, "lower(email) = lower($1)", strings.TrimSpace(email))
}

// OperatorByEnrolToken finds the pending operator whose unexpired
// enrolment token hashes to hash.
func (db *DB) OperatorByEnrolToken(ctx context.Context, hash []byte) (Operator, error) {
	o, err := db.operatorWhere(ctx, "enrol_token_hash = $1 AND status = 'pending'", hash)
	if err != nil {
		return Operator{}, err
	}
	if o.EnrolExpiresAt == nil || !db.now().Before(*o.EnrolExpiresAt) {
		return Operator{}, ErrNotFound
	}
	return o, nil
}

func (db *DB) operatorWhere(ctx context.Context, where string, arg any) (Operator, error) {
	var o Operator
	err := db.global(ctx, false, func(q querier) error {
		var err error
		o, err = db.scanOperator(q.queryRow(ctx, "SELECT "+operatorCols+" FROM operators WHERE "+where, arg))
		return err
	})
	return o, db.wrap("get operator", err)
}

// ListOperators lists every operator, oldest first.
func (db *DB) ListOperators(ctx context.Context) ([]Operator, error) {
	var out []Operator
	err := db.global(ctx, false, func(q querier) error {
		rs, err := q.query(ctx, "SELECT "+operatorCols+" FROM operators ORDER BY created_at, id")
		if err != nil {
			return err
		}
		out, err = collect(rs, db.scanOperator)
		return err
	})
	return out, db.wrap("list operators", err)
}

// ReissueEnrolment gives a pending operator a new enrolment token (its
// hash), valid until expires: the old link stops working, and the
// authenticator key it may have shown is dropped, so that a new one is
// made on the new link's first visit. It is ErrConflict for an operator
// who is not pending (enrolled or disabled), ErrNotFound for none.
func (db *DB) ReissueEnrolment(ctx context.Context, id string, tokenHash []byte, expires time.Time) error {
	err := db.global(ctx, true, func(q querier) error {
		n, err := q.exec(ctx, `UPDATE operators SET enrol_token_hash = $2, enrol_expires_at = $3, totp_secret = NULL, updated_at = $4
			WHERE id = $1 AND status = 'pending'`, id, tokenHash, db.d.timeArg(expires), db.d.timeArg(db.now()))
		if err != nil || n > 0 {
			return err
		}
		var status string
		if err := q.queryRow(ctx, "SELECT status FROM operators WHERE id = $1", id).Scan(&status); err != nil {
			return err
		}
		return fmt.Errorf("%w: operator %s is %s, not pending", ErrConflict, id, status)
	})
	return db.wrap("reissue enrolment", err)
}

// SetOperatorTOTPSecret stores (sealed) the TOTP secret offered to a
// pending operator during enrolment.
func (db *DB) SetOperatorTOTPSecret(ctx context.Context, id, secret string) error {
	sealed, err := db.cipher.Seal([]byte(secret), aad("operators", id))
	if err != nil {
		return fmt.Errorf("store: seal TOTP secret: %w", err)
	}
	return db.updateOperator(ctx, "set TOTP secret", "totp_secret = $2, updated_at = $3 WHERE id = $1 AND status = 'pending'",
		id, sealed, db.d.timeArg(db.now()))
}

// CompleteEnrolment activates a pending operator: password hash set,
// enrolment token spent, recovery codes replaced by codeHashes, and the
// time step of the code that proved the authenticator recorded. It fails
// with ErrNotFound unless the operator is still pending.
func (db *DB) CompleteEnrolment(ctx context.Context, id, passwordHash string, totpStep int64, codeHashes [][]byte) error {
	if passwordHash == "" {
		return fmt.Errorf("%w: password hash is empty", ErrInvalid)
	}
	now := db.d.timeArg(db.now())
	err := db.InTx(ctx, func(ctx context.Context) error {
		return db.global(ctx, true, func(q querier) error {
			n, err := q.exec(ctx, `UPDATE operators SET status = 'active', password_hash = $2, totp_last_step = $3,
				enrol_token_hash = NULL, enrol_expires_at = NULL, failed_attempts = 0, locked_until = NULL,
				last_login_at = $4, updated_at = $4
				WHERE id = $1 AND status = 'pending' AND totp_secret IS NOT NULL`, id, passwordHash, totpStep, now)
			if err != nil {
				return err
			}
			if n == 0 {
				return ErrNotFound
			}
			return replaceRecoveryCodes(ctx, q, id, codeHashes)
		})
	})
	return db.wrap("complete enrolment", err)
}

func replaceRecoveryCodes(ctx context.Context, q querier, id string, codeHashes [][]byte) error {
	if _, err := q.exec(ctx, "DELETE FROM operator_recovery_codes WHERE operator_id = $1", id); err != nil {
		return err
	}
	for _, h := range codeHashes {
		if _, err := q.exec(ctx, "INSERT INTO operator_recovery_codes (operator_id, code_hash) VALUES ($1, $2)", id, h); err != nil {
			return err
		}
	}
	return nil
}

// UseTOTPStep records that a code of time step step was accepted for the
// operator, and reports false when a code of that step or a later one was
// accepted before: a replay. The check and the write are one statement, so
// two nodes offered the same code cannot both accept it.
func (db *DB) UseTOTPStep(ctx context.Context, id string, step int64) (bool, error) {
	var n int64
	err := db.global(ctx, true, func(q querier) error {
		var err error
		n, err = q.exec(ctx, "UPDATE operators SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2", id, step)
		return err
	})
	return n == 1, db.wrap("use TOTP step", err)
}

// UseRecoveryCode spends the operator's recovery code that hashes to hash
// and reports whether there was one.
func (db *DB) UseRecoveryCode(ctx context.Context, id string, hash []byte) (bool, error) {
	var n int64
	err := db.global(ctx, true, func(q querier) error {
		var err error
		n, err = q.exec(ctx, "DELETE FROM operator_recovery_codes WHERE operator_id = $1 AND code_hash = $2", id, hash)
		return err
	})
	return n == 1, db.wrap("use recovery code", err)
}

// RecoveryCodesLeft counts the operator's unspent recovery codes.
func (db *DB) RecoveryCodesLeft(ctx context.Context, id string) (int, error) {
	var n int
	err := db.global(ctx, false, func(q querier) error {
		return q.queryRow(ctx, "SELECT count(*) FROM operator_recovery_codes WHERE operator_id = $1", id).Scan(&n)
	})
	return n, db.wrap("count recovery codes", err)
}

// RecordOperatorFailure counts a failed sign-in of the operator and, with
// the count known, lets lock decide how long the operator is locked out
// (nil: not locked). The failure happened at at; the earlier ones are
// forgotten first when the last of them is older than keep. It returns
// the new count and lock. The read
// and the write are one transaction with the row locked, so concurrent
// failures on several nodes all count.
func (db *DB) RecordOperatorFailure(ctx context.Context, id string, at time.Time, keep time.Duration, lock func(failures int) *time.Time) (int, *time.Time, error) {
	var (
		failures int
		until    *time.Time
	)
	err := db.InTx(ctx, func(ctx context.Context) error {
		return db.global(ctx, true, func(q querier) error {
			var last *time.Time
			if err := q.queryRow(ctx, "SELECT failed_attempts, last_failure_at FROM operators WHERE id = $1"+db.d.forUpdate(), id).
				Scan(&failures, nullTimeDest{&last}); err != nil {
				return err
			}
			if last == nil || last.Before(at.Add(-keep)) {
				failures = 0
			}
			failures++
			until = lock(failures)
			_, err := q.exec(ctx, "UPDATE operators SET failed_attempts = $2, locked_until = $3, last_failure_at = $4 WHERE id = $1",
				id, failures, db.optTime(until), db.d.timeArg(at.UTC()))
			return err
		})
	})
	return failures, until, db.wrap("record operator failure", err)
}

// RecordOperatorLogin clears the failure count and notes the sign-in.
func (db *DB) RecordOperatorLogin(ctx context.Context, id string) error {
	return db.updateOperator(ctx, "record operator login",
		"failed_attempts = 0, locked_until = NULL, last_login_at = $2 WHERE id = $1", id, db.d.timeArg(db.now()))
}

// ResetOperator sends an enrolled operator back to enrolment: the password,
// authenticator key and recovery codes are dropped, a lockout cleared, the
// console sessions ended, and tokenHash (valid until expires) becomes the
// enrolment link with which they choose new ones. It is ErrConflict for an
// operator who is not active (pending ones get a new link from
// ReissueEnrolment; disabled ones stay disabled), ErrNotFound for none.
func (db *DB) ResetOperator(ctx context.Context, id string, tokenHash []byte, expires time.Time) error {
	err := db.InTx(ctx, func(ctx context.Context) error {
		return db.global(ctx, true, func(q querier) error {
			now := db.now()
			n, err := q.exec(ctx, `UPDATE operators SET status = 'pending', password_hash = '', totp_secret = NULL,
				totp_last_step = 0, enrol_token_hash = $2, enrol_expires_at = $3, failed_attempts = 0, locked_until = NULL,
				updated_at = $4 WHERE id = $1 AND status = 'active'`, id, tokenHash, db.d.timeArg(expires), db.d.timeArg(now))
			if err != nil {
				return err
			}
			if n == 0 {
				var status string
				if err := q.queryRow(ctx, "SELECT status FROM operators WHERE id = $1", id).Scan(&status); err != nil {
					return err
				}
				return fmt.Errorf("%w: operator %s is %s, not active", ErrConflict, id, status)
			}
			// Kept outside the database before the commit (tombstones.go):
			// a restore must not bring back the old password and sessions.
			db.bury(ctx, Tombstone{Kind: TombOperatorReset, ID: id, At: now})
			if _, err := q.exec(ctx, "DELETE FROM operator_recovery_codes WHERE operator_id = $1", id); err != nil {
				return err
			}
			_, err = q.exec(ctx, "DELETE FROM operator_sessions WHERE operator_id = $1", id)
			return err
		})
	})
	return db.wrap("reset operator", err)
}

// DisableOperator disables the operator and ends its console sessions.
func (db *DB) DisableOperator(ctx context.Context, id string) error {
	err := db.InTx(ctx, func(ctx context.Context) error {
		return db.global(ctx, true, func(q querier) error {
			now := db.now()
			n, err := q.exec(ctx, "UPDATE operators SET status = 'disabled', enrol_token_hash = NULL, updated_at = $2 WHERE id = $1",
				id, db.d.timeArg(now))
			if err != nil {
				return err
			}
			if n == 0 {
				return ErrNotFound
			}
			// Kept outside the database before the commit (tombstones.go).
			db.bury(ctx, Tombstone{Kind: TombOperator, ID: id, At: now})
			_, err = q.exec(ctx, "DELETE FROM operator_sessions WHERE operator_id = $1", id)
			return err
		})
	})
	return db.wrap("disable operator", err)
}

func (db *DB) updateOperator(ctx context.Context, op, set string, args ...any) error {
	err := db.global(ctx, true, func(q querier) error {
		n, err := q.exec(ctx, "UPDATE operators SET "+set, args...)
		if err == nil && n == 0 {
			return ErrNotFound
		}
		return err
	})
	return db.wrap(op, err)
}

const operatorSessionCols = "id, token_hash, operator_id, csrf_token, created_at, last_seen_at, expires_at"

func scanOperatorSession(r row) (OperatorSession, error) {
	var s OperatorSession
	err := r.Scan(&s.ID, &s.TokenHash, &s.OperatorID, &s.CSRFToken, timeDest{&s.CreatedAt}, timeDest{&s.LastSeenAt}, timeDest{&s.ExpiresAt})
	return s, err
}

// CreateOperatorSession stores a console session.
func (db *DB) CreateOperatorSession(ctx context.Context, s OperatorSession) (OperatorSession, error) {
	if s.ID == "" {
		s.ID = NewID(PrefixOperatorSession)
	}
	if len(s.TokenHash) == 0 || s.OperatorID == "" || s.CSRFToken == "" || s.ExpiresAt.IsZero() {
		return OperatorSession{}, fmt.Errorf("%w: operator session needs a token hash, operator, CSRF token and expiry", ErrInvalid)
	}
	s.CreatedAt = db.now()
	s.LastSeenAt = s.CreatedAt
	err := db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "INSERT INTO operator_sessions ("+operatorSessionCols+") VALUES ($1, $2, $3, $4, $5, $6, $7)",
			s.ID, s.TokenHash, s.OperatorID, s.CSRFToken, db.d.timeArg(s.CreatedAt), db.d.timeArg(s.LastSeenAt), db.d.timeArg(s.ExpiresAt))
		return err
	})
	return s, db.wrap("create operator session", err)
}

// OperatorSession returns the unexpired session whose token hashes to hash,
// with its operator when that operator is active; else ErrNotFound.
func (db *DB) OperatorSession(ctx context.Context, hash []byte) (OperatorSession, Operator, error) {
	var s OperatorSession
	err := db.global(ctx, false, func(q querier) error {
		var err error
		s, err = scanOperatorSession(q.queryRow(ctx, "SELECT "+operatorSessionCols+" FROM operator_sessions WHERE token_hash = $1", hash))
		return err
	})
	if err != nil {
		return OperatorSession{}, Operator{}, db.wrap("get operator session", err)
	}
	if !db.now().Before(s.ExpiresAt) {
		return OperatorSession{}, Operator{}, ErrNotFound
	}
	o, err := db.Operator(ctx, s.OperatorID)
	if err != nil {
		return OperatorSession{}, Operator{}, err
	}
	if o.Status != OperatorActive {
		return OperatorSession{}, Operator{}, ErrNotFound
	}
	return s, o, nil
}

// TouchOperatorSession records activity on a session (its idle timeout
// counts from here).
func (db *DB) TouchOperatorSession(ctx context.Context, id string, at time.Time) error {
	err := db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "UPDATE operator_sessions SET last_seen_at = $2 WHERE id = $1", id, db.d.timeArg(at))
		return err
	})
	return db.wrap("touch operator session", err)
}

// DeleteOperatorSession ends one console session; a missing one is not an
// error.
func (db *DB) DeleteOperatorSession(ctx context.Context, id string) error {
	err := db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "DELETE FROM operator_sessions WHERE id = $1", id)
		return err
	})
	return db.wrap("delete operator session", err)
}

const operatorAuditCols = "id, actor, action, resource, context, request_id, ts, prev_hash, hash, key_version, mac"

func scanOperatorAudit(r row) (OperatorAuditEvent, error) {
	var e OperatorAuditEvent
	err := r.Scan(&e.ID, jsonDest{&e.Actor}, &e.Action, jsonDest{&e.Resource}, jsonDest{&e.Context}, &e.RequestID, timeDest{&e.TS}, &e.PrevHash, &e.Hash, &e.KeyVersion, &e.MAC)
	return e, err
}

// AppendOperatorAudit appends a row to the operators' audit trail.
func (db *DB) AppendOperatorAudit(ctx context.Context, e OperatorAuditEvent) (OperatorAuditEvent, error) {
	a := e.asAudit()
	if err := db.prepareAudit(&a); err != nil {
		return OperatorAuditEvent{}, err
	}
	e.ID, e.TS, e.Context = a.ID, a.TS, a.Context
	actor, err := jsonArg(e.Actor)
	if err != nil {
		return OperatorAuditEvent{}, err
	}
	res, err := jsonArg(e.Resource)
	if err != nil {
		return OperatorAuditEvent{}, err
	}
	cx, err := jsonArg(e.Context)
	if err != nil {
		return OperatorAuditEvent{}, err
	}
	var usedKey []byte
	err = db.global(ctx, true, func(q querier) error {
		// The operators' chain takes the lock a tenant's chain would take
		// under an empty tenant id, which no tenant has.
		if err := db.d.lockAuditChain(ctx, q, ""); err != nil {
			return err
		}
		err := q.queryRow(ctx, "SELECT hash FROM operator_audit ORDER BY seq DESC LIMIT 1").Scan(&e.PrevHash)
		if err != nil && !db.d.isNoRows(err) {
			return err
		}
		version, key, err := db.auditKey(ctx, q, e.TS)
		if err != nil {
			return err
		}
		usedKey = key
		a := e.asAudit()
		if err := sealAudit(&a, version, key); err != nil {
			return err
		}
		e.Hash, e.MAC, e.KeyVersion = a.Hash, a.MAC, a.KeyVersion
		_, err = q.exec(ctx, "INSERT INTO operator_audit ("+operatorAuditCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
			e.ID, actor, e.Action, res, cx, e.RequestID, db.d.timeArg(e.TS), e.PrevHash, e.Hash, e.KeyVersion, e.MAC)
		return err
	})
	if err == nil {
		db.rememberAuditKey(ctx, e.KeyVersion, usedKey)
	}
	return e, db.wrap("append operator audit", err)
}

// OperatorAudit lists the operators' audit trail newest first, optionally
// only rows of action; After is the id of the last row already seen.
func (db *DB) OperatorAudit(ctx context.Context, action string, p Page) ([]OperatorAuditEvent, string, error) {
	p = p.Normalize()
	var out []OperatorAuditEvent
	err := db.global(ctx, false, func(q querier) error {
		where, args := "TRUE", []any{p.Limit + 1}
		if action != "" {
			args = append(args, action)
			where += fmt.Sprintf(" AND action = $%d", len(args))
		}
		if p.After != "" {
			args = append(args, p.After)
			where += fmt.Sprintf(" AND seq < (SELECT seq FROM operator_audit WHERE id = $%d)", len(args))
		}
		rs, err := q.query(ctx, "SELECT "+operatorAuditCols+" FROM operator_audit WHERE "+where+" ORDER BY seq DESC LIMIT $1", args...)
		if err != nil {
			return err
		}
		out, err = collect(rs, scanOperatorAudit)
		return err
	})
	if err != nil {
		return nil, "", db.wrap("list operator audit", err)
	}
	out, next := cut(out, p.Limit, func(e OperatorAuditEvent) string { return e.ID })
	return out, next, nil
}

// OperatorAuditLog pages the operators' audit trail (the vendor's own
// rows, of no tenant) as AuditLog pages a tenant's: newest first, by exact
// action and actor id and a time range, After the id of the oldest row
// already seen. An After that is no row of the trail is ErrInvalid. The
// trail holds the vendor's changes only (keys, operators, applications,
// webhooks), so the filters need no index of their own.
func (db *DB) OperatorAuditLog(ctx context.Context, q LogQuery) (LogPage[OperatorAuditEvent], error) {
	if q.Before != "" {
		return LogPage[OperatorAuditEvent]{}, fmt.Errorf("%w: the operators' trail pages with After only", ErrInvalid)
	}
	if !isText(q.After) {
		return LogPage[OperatorAuditEvent]{}, fmt.Errorf("%w: unknown cursor", ErrInvalid)
	}
	s := logSQL{cols: operatorAuditCols, table: "operator_audit", tcol: "ts", where: "TRUE"}
	if q.Action != "" {
		s.and("action", q.Action)
	}
	if q.Actor != "" {
		expr := "json_extract(actor, '$.id')"
		if db.d.name() == "postgres" {
			expr = "actor->>'id'"
		}
		s.and(expr, strings.TrimSpace(q.Actor))
	}
	for _, a := range s.args {
		if v, ok := a.(string); ok && !isText(v) {
			return LogPage[OperatorAuditEvent]{}, nil // no row holds such text
		}
	}
	var rows []OperatorAuditEvent
	err := db.global(ctx, false, func(qr querier) error {
		var cursor []any
		if q.After != "" {
			var t time.Time
			var seq int64
			err := qr.queryRow(ctx, "SELECT ts, seq FROM operator_audit WHERE id = $1", q.After).Scan(timeDest{&t}, &seq)
			if db.d.isNoRows(err) {
				return fmt.Errorf("%w: unknown cursor", ErrInvalid)
			}
			if err != nil {
				return err
			}
			cursor = []any{db.d.timeArg(t), seq}
		}
		sql, args := db.buildLog(s, q, cursor)
		rs, err := qr.query(ctx, sql, args...)
		if err != nil {
			return err
		}
		rows, err = collect(rs, scanOperatorAudit)
		return err
	})
	if err != nil {
		return LogPage[OperatorAuditEvent]{}, db.wrap("operator audit log", err)
	}
	return pageOf(rows, q, func(e OperatorAuditEvent) string { return e.ID }), nil
}

// WalkOperatorAudit visits the operators' audit rows in chain order, a
// page at a time, as WalkAudit does a tenant's.
func (db *DB) WalkOperatorAudit(ctx context.Context, fn func(OperatorAuditEvent) error) error {
	return walkBySeq(walkPage, func(after int64, limit int) (page []seqRow[OperatorAuditEvent], err error) {
		err = db.global(ctx, false, func(q querier) error {
			rs, err := q.query(ctx, "SELECT seq, "+operatorAuditCols+" FROM operator_audit WHERE seq > $1 ORDER BY seq LIMIT $2", after, limit)
			if err != nil {
				return err
			}
			page, err = collect(rs, withSeq(scanOperatorAudit))
			return err
		})
		return page, db.wrap("walk operator audit", err)
	}, fn)
}

// ConsoleStore is the part of Store behind the operator console: operators
// and their sessions (global), and the reads of its pages.
type ConsoleStore interface {
	CreateOperator(ctx context.Context, o Operator) (Operator, error)
	Operator(ctx context.Context, id string) (Operator, error)
	OperatorByEmail(ctx context.Context, email string) (Operator, error)
	OperatorByEnrolToken(ctx context.Context, hash []byte) (Operator, error)
	ReissueEnrolment(ctx context.Context, id string, tokenHash []byte, expires time.Time) error
	ListOperators(ctx context.Context) ([]Operator, error)
	SetOperatorTOTPSecret(ctx context.Context, id, secret string) error
	CompleteEnrolment(ctx context.Context, id, passwordHash string, totpStep int64, codeHashes [][]byte) error
	UseTOTPStep(ctx context.Context, id string, step int64) (bool, error)
	UseRecoveryCode(ctx context.Context, id string, hash []byte) (bool, error)
	RecoveryCodesLeft(ctx context.Context, id string) (int, error)
	RecordOperatorFailure(ctx context.Context, id string, at time.Time, keep time.Duration, lock func(failures int) *time.Time) (int, *time.Time, error)
	RecordOperatorLogin(ctx context.Context, id string) error
	DisableOperator(ctx context.Context, id string) error
	ResetOperator(ctx context.Context, id string, tokenHash []byte, expires time.Time) error
	CreateOperatorSession(ctx context.Context, s OperatorSession) (OperatorSession, error)
	OperatorSession(ctx context.Context, hash []byte) (OperatorSession, Operator, error)
	TouchOperatorSession(ctx context.Context, id string, at time.Time) error
	DeleteOperatorSession(ctx context.Context, id string) error
	AppendOperatorAudit(ctx context.Context, e OperatorAuditEvent) (OperatorAuditEvent, error)
	OperatorAudit(ctx context.Context, action string, p Page) ([]OperatorAuditEvent, string, error)
	// OperatorAuditLog pages the operators' trail with a log's filters
	// (GET /audit_events without a tenant).
	OperatorAuditLog(ctx context.Context, q LogQuery) (LogPage[OperatorAuditEvent], error)
	// WalkOperatorAudit calls fn on every operator audit row, oldest first,
	// in chain order; `idbroker audit verify` re-hashes them.
	WalkOperatorAudit(ctx context.Context, fn func(OperatorAuditEvent) error) error

	FindTenants(ctx context.Context, query string, status TenantStatus, p Page) ([]Tenant, string, error)
	ConnectionHealth(ctx context.Context, id string) (ConnectionHealth, error)
	DirectoryStats(ctx context.Context, id string) (DirectoryStats, error)
	RecentEvents(ctx context.Context, tenantID, typ string, p Page) ([]Event, string, error)
	FailedSignIn(ctx context.Context, reference string) (Event, error)
	SignInTenants(ctx context.Context, email string, limit int) ([]string, error)
	RedeliverDelivery(ctx context.Context, id string) (Delivery, error)
}
