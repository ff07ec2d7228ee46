package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Tombstones: revocations kept where a database restore does not reach.
//
// A database restored from a backup forgets every change made after the
// backup was taken. For a session that is harmless while Redis keeps its
// newer data (the session is gone there, whatever the database says), but
// several revocations live in the database alone: an operator API key
// revoked, a directory token or client secret rotated (the replaced one
// ended), a console operator disabled, a portal link used, a tenant
// paused or deleted, a connection deactivated, a user deprovisioned. A
// restore would bring each back to life — the "deleted but still signed
// in" the product exists to prevent — and nothing in the restored
// database can tell.
//
// So each of those changes first writes a tombstone into a Ledger outside
// the database (Redis: the runbook keeps it through a database restore)
// and only then commits, and ReapplyTombstones, run by every node at start
// and by `idbroker restore-check`, applies again each tombstone the
// database does not reflect. The database records the number of the last
// tombstone it has checked (session_store_epoch.tombstones_checked,
// migration 0107), so a start checks only the tombstones written since —
// on a restored database, since its backup: exactly the ones it may have
// forgotten. Written before the commit, a tombstone exists
// for every committed change even when the process dies a moment later;
// one whose change rolled back (rare: the transaction failed after it) is
// applied at the next start, which errs on the side of the revocation.
//
// Why this rather than a database epoch compared with Redis at start: an
// epoch tells that the database went back, not what it forgot, so it could
// only refuse to start or revoke everything issued before the restore
// (every operator key, every directory token: every customer's SCIM broken
// at once). Tombstones name exactly what to apply again, and applying one
// is idempotent and guarded (below), so doing it at every start needs no
// detection at all.
//
// Guards, so that re-applying never undoes a later legitimate change:
// a tombstone that can be undone (a user reactivated, a tenant resumed,
// a connection reactivated, a deleted tenant restored) is deleted by the
// change that undoes it, and is applied only to a row last updated before
// the tombstone was written (a row changed since is newer than the
// tombstone, so the database was not restored to before it). Revoking a
// key, ending a token or secret, and using a link cannot be undone: those
// apply whenever the row still says otherwise.
//
// What tombstones cannot do: a change made while the ledger did not
// answer (Redis down) has none (its Put fails, the change still commits
// and the failure is reported through the ledger's error hook, which the
// node logs); and a Redis restored or emptied with the database holds
// none of the newer ones — the runbook covers both.

// Ledger is where tombstones are kept (sessions.RedisLedger): see above.
// It numbers them in the order written; Since returns those numbered
// after seq and the last number given.
type Ledger interface {
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	Since(ctx context.Context, seq int64) (map[string][]byte, int64, error)
}

// TombstoneKind names what a tombstone ended.
type TombstoneKind string

// Kinds of tombstone.
const (
	TombAPIKey            TombstoneKind = "api_key"            // ID: the key (revoked)
	TombOperator          TombstoneKind = "operator"           // ID: the operator (disabled)
	TombOperatorReset     TombstoneKind = "operator_reset"     // ID: the operator (password, authenticator and sessions ended)
	TombDirectoryToken    TombstoneKind = "directory_token"    // ID: the directory; Hash: the ended token's
	TombApplicationSecret TombstoneKind = "application_secret" // ID: the application; Hash: the ended secret's
	TombPortalLink        TombstoneKind = "portal_link"        // Hash: the link token's (used or lapsed)
	TombTenant            TombstoneKind = "tenant"             // ID: the tenant; State: its status (paused, cancelled, deleted)
	TombConnection        TombstoneKind = "connection"         // ID: the connection (inactive or deleted)
	TombUser              TombstoneKind = "user"               // ID: the user (deactivated or deleted)
)

// Tombstone is one revocation kept outside the database.
type Tombstone struct {
	Kind     TombstoneKind `json:"kind"`
	ID       string        `json:"id,omitempty"`
	TenantID string        `json:"tenant_id,omitempty"`
	// Hash is the SHA-256 (as the database stores it) of an ended token or
	// secret: never the secret itself.
	Hash  []byte `json:"hash,omitempty"`
	State string `json:"state,omitempty"`
	// At is when the change was made (the database's clock, read before
	// the change's own updated_at).
	At time.Time `json:"at"`
}

// key is the tombstone's ledger key: one per kind and subject, so that a
// later tombstone of the same subject replaces the earlier.
func (t Tombstone) key() string {
	if len(t.Hash) > 0 {
		return string(t.Kind) + ":" + t.ID + ":" + hex.EncodeToString(t.Hash)
	}
	return string(t.Kind) + ":" + t.ID
}

// SetLedger makes the store write a tombstone for every revocation that
// lives in the database alone. onErr hears of a tombstone that could not
// be written or deleted (the change itself still commits: a revocation is
// never refused because Redis is away). Call it before the store is used.
func (db *DB) SetLedger(l Ledger, onErr func(error)) {
	db.ledger, db.ledgerErr = l, onErr
}

// ledgerWait bounds a tombstone's write: past it the change commits
// without (and the error hook says so).
const ledgerWait = 2 * time.Second

// bury writes t into the ledger, if any; the caller then commits the
// change.
func (db *DB) bury(ctx context.Context, t Tombstone) {
	if db.ledger == nil {
		return
	}
	if t.At.IsZero() {
		t.At = db.now()
	}
	raw, err := json.Marshal(t)
	if err == nil {
		// Bounded: the change waits for its tombstone inside its
		// transaction, and a Redis that hangs must not hold it long.
		pctx, cancel := context.WithTimeout(ctx, ledgerWait)
		err = db.ledger.Put(pctx, t.key(), raw)
		cancel()
	}
	if err != nil && db.ledgerErr != nil {
		db.ledgerErr(fmt.Errorf("store: keep the %s tombstone of %s: %w", t.Kind, t.ID, err))
	}
}

// unbury deletes the tombstone of kind and id after a change that undid
// it committed.
func (db *DB) unbury(ctx context.Context, kind TombstoneKind, id string) {
	if db.ledger == nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, ledgerWait)
	defer cancel()
	if err := db.ledger.Delete(dctx, Tombstone{Kind: kind, ID: id}.key()); err != nil && db.ledgerErr != nil {
		db.ledgerErr(fmt.Errorf("store: delete the %s tombstone of %s: %w", kind, id, err))
	}
}

// Reapplied is one tombstone that ReapplyTombstones found the database
// did not reflect, and applied again.
type Reapplied struct {
	Tombstone
	// What says what was done ("revoked", "disabled", "ended", …).
	What string
}

// ErrNoLedger is ReapplyTombstones' answer on a store without a ledger.
var ErrNoLedger = errors.New("store: no tombstone ledger (no Redis configured)")

// TombstoneCheck is what ReapplyTombstones did.
type TombstoneCheck struct {
	// Checked is how many tombstones were read; Reapplied those the
	// database did not reflect, oldest first.
	Checked   int
	Reapplied []Reapplied
	// From and To are the numbers checked after and up to.
	From, To int64
	// LedgerBehind is true when the ledger's last number is below the
	// one the database had checked: the ledger (Redis) was emptied or
	// restored, and the tombstones written since it was saved are lost.
	LedgerBehind bool
	// Forgotten is the highest tombstone number the ledger forgot as
	// older than the horizon (PruneTombstones). BeyondHorizon is true
	// when the database's last check (From) is below it: the database was
	// restored from a backup older than the horizon, and revocations made
	// after that backup may be among the forgotten.
	Forgotten     int64
	BeyondHorizon bool
}

// ReapplyTombstones applies again every tombstone of the ledger that the
// database does not reflect — after a restore from a backup, the
// revocations made since — and records the last number checked. all
// checks every tombstone rather than those written since the last check;
// dryRun only reports (and records nothing). It is idempotent: on a
// database that was never restored it finds nothing to apply. Each is
// applied in a transaction of its own, with the revocation order (users,
// tenants, connections) that ends their sessions again wherever a session
// store still holds them.
func (db *DB) ReapplyTombstones(ctx context.Context, all, dryRun bool) (TombstoneCheck, error) {
	var res TombstoneCheck
	if db.ledger == nil {
		return res, ErrNoLedger
	}
	err := db.global(ctx, false, func(q querier) error {
		return q.queryRow(ctx, "SELECT tombstones_checked FROM session_store_epoch WHERE id = 1").Scan(&res.From)
	})
	if err != nil {
		return res, db.wrap("read the tombstones checked", err)
	}
	from := res.From
	if all {
		from = 0
	}
	raw, last, err := db.ledger.Since(ctx, from)
	if err != nil {
		return res, fmt.Errorf("store: read tombstones: %w", err)
	}
	res.To, res.Checked = last, len(raw)
	if f, ok := db.ledger.(ForgettingLedger); ok {
		if res.Forgotten, err = f.Forgotten(ctx); err != nil {
			return res, fmt.Errorf("store: read the tombstones forgotten: %w", err)
		}
		res.BeyondHorizon = res.From < res.Forgotten
	}
	if last < res.From {
		// The ledger went back: whatever it lost is lost. Check all it
		// holds, and say so (the runbook's case of Redis restored too).
		res.LedgerBehind = true
		if raw, _, err = db.ledger.Since(ctx, 0); err != nil {
			return res, fmt.Errorf("store: read tombstones: %w", err)
		}
		res.Checked = len(raw)
	}
	all0 := raw
	stones := make([]Tombstone, 0, len(all0))
	for k, raw := range all0 {
		var t Tombstone
		if err := json.Unmarshal(raw, &t); err != nil || t.Kind == "" {
			return res, fmt.Errorf("store: tombstone %s does not parse: %v", k, err)
		}
		stones = append(stones, t)
	}
	sort.Slice(stones, func(i, j int) bool {
		if !stones[i].At.Equal(stones[j].At) {
			return stones[i].At.Before(stones[j].At)
		}
		return stones[i].key() < stones[j].key()
	})
	for _, t := range stones {
		var what string
		err := db.InTx(ctx, func(ctx context.Context) error {
			var err error
			what, err = db.reapply(ctx, t)
			switch {
			case err != nil || what == "":
				return err
			case dryRun:
				return errDryRun // the same statements, rolled back
			}
			return db.reorder(ctx, t)
		})
		if errors.Is(err, errDryRun) {
			err = nil
		}
		if err != nil {
			return res, fmt.Errorf("store: apply the %s tombstone of %s again: %w", t.Kind, t.ID, err)
		}
		if what != "" {
			res.Reapplied = append(res.Reapplied, Reapplied{Tombstone: t, What: what})
		}
	}
	if dryRun {
		return res, nil
	}
	// Recorded as is (also lower, after the ledger went back): the next
	// start checks what is written after it.
	err = db.global(ctx, true, func(q querier) error {
		_, err := q.exec(ctx, "UPDATE session_store_epoch SET tombstones_checked = $1 WHERE id = 1", res.To)
		return err
	})
	return res, db.wrap("record the tombstones checked", err)
}

// reapply applies t if the database does not reflect it and says what it
// did ("" when nothing was needed), in the caller's transaction.
func (db *DB) reapply(ctx context.Context, t Tombstone) (string, error) {
	var (
		what string
		n    int64
	)
	at := db.d.timeArg(t.At)
	now := db.d.timeArg(db.now())
	run := func(fn func(q querier) error) error { return db.global(ctx, true, fn) }
	switch t.Kind {
	case TombDirectoryToken, TombPortalLink, TombTenant, TombConnection, TombUser:
		// Tenant tables: row-level security admits the tenant's rows only.
		tenant := t.TenantID
		if t.Kind == TombTenant {
			tenant = t.ID
		}
		if tenant == "" {
			return "", fmt.Errorf("%w: %s tombstone without a tenant", ErrInvalid, t.Kind)
		}
		run = func(fn func(q querier) error) error {
			return db.scoped(WithTenant(ctx, tenant), func(q querier, _ string) error { return fn(q) })
		}
	}
	err := run(func(q querier) error {
		var err error
		switch t.Kind {
		case TombAPIKey:
			what = "revoked"
			n, err = q.exec(ctx, "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", t.ID, at)
		case TombOperator:
			what = "disabled"
			n, err = q.exec(ctx, "UPDATE operators SET status = 'disabled', enrol_token_hash = NULL, updated_at = $3 WHERE id = $1 AND status <> 'disabled' AND updated_at < $2",
				t.ID, at, now)
			if err == nil && n > 0 {
				_, err = q.exec(ctx, "DELETE FROM operator_sessions WHERE operator_id = $1", t.ID)
			}
		case TombOperatorReset:
			// Back to enrolment without a link anyone holds: the old
			// password and authenticator must not sign in again, and the
			// runbook has the operator reset once more for a new link.
			what = "reset"
			n, err = q.exec(ctx, `UPDATE operators SET status = 'pending', password_hash = '', totp_secret = NULL, totp_last_step = 0,
				enrol_token_hash = NULL, enrol_expires_at = NULL, failed_attempts = 0, locked_until = NULL, updated_at = $3
				WHERE id = $1 AND status = 'active' AND updated_at < $2`, t.ID, at, now)
			if err == nil && n > 0 {
				if _, err = q.exec(ctx, "DELETE FROM operator_recovery_codes WHERE operator_id = $1", t.ID); err == nil {
					_, err = q.exec(ctx, "DELETE FROM operator_sessions WHERE operator_id = $1", t.ID)
				}
			}
		case TombDirectoryToken:
			// The ended token is current again: no one knows the token
			// that replaced it (the database lost it), so the directory
			// gets an unguessable one nobody holds, and the operator
			// rotates it (the runbook says so) to give the IdP a new one.
			what = "token ended"
			n, err = q.exec(ctx, "UPDATE directories SET token_hash = $3, updated_at = $4 WHERE id = $1 AND token_hash = $2",
				t.ID, t.Hash, unusableHash(), now)
			if err == nil {
				var m int64
				// As the previous token, it ends at the tombstone's time: a
				// live database keeps it until then (its overlap), one
				// restored from inside an earlier, longer overlap does not.
				m, err = q.exec(ctx, `UPDATE directories SET previous_token_hash = NULL, previous_token_expires_at = NULL, updated_at = $4
					WHERE id = $1 AND previous_token_hash = $2 AND (previous_token_expires_at IS NULL OR previous_token_expires_at > $3)`, t.ID, t.Hash, at, now)
				n += m
			}
		case TombApplicationSecret:
			what = "secret ended"
			n, err = q.exec(ctx, "UPDATE applications SET secret_hash = $3, updated_at = $4 WHERE id = $1 AND secret_hash = $2",
				t.ID, t.Hash, unusableHash(), now)
			if err == nil {
				var m int64
				m, err = q.exec(ctx, `UPDATE applications SET previous_secret_hash = NULL, previous_secret_expires_at = NULL, updated_at = $4
					WHERE id = $1 AND previous_secret_hash = $2 AND (previous_secret_expires_at IS NULL OR previous_secret_expires_at > $3)`, t.ID, t.Hash, at, now)
				n += m
			}
		case TombPortalLink:
			what = "used"
			// Unused in the database: the restore predates its use (a
			// used link's session is the live one, left alone). A link
			// already lapsed at the tombstone's time was not opened then
			// (the open that wrote it failed) and never opens: nothing to
			// apply, and no restore to report.
			n, err = q.exec(ctx, "UPDATE portal_links SET used_at = $2, expires_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2", t.Hash, at)
		case TombTenant:
			if t.State == string(TenantDeleted) {
				what = "deleted"
				n, err = q.exec(ctx, `UPDATE tenants SET status_before_delete = status, status = 'deleted', deleted_at = $2, updated_at = $3
					WHERE id = $1 AND status <> 'deleted' AND updated_at < $2`, t.ID, at, now)
			} else {
				what = t.State
				n, err = q.exec(ctx, "UPDATE tenants SET status = $3, updated_at = $4 WHERE id = $1 AND status IN ('active', 'trial', 'past_due') AND updated_at < $2",
					t.ID, at, t.State, now)
			}
			if err == nil && n > 0 {
				err = db.endPortalAccess(ctx, q, t.ID, db.now())
			}
		case TombConnection:
			what = "deactivated"
			n, err = q.exec(ctx, "UPDATE connections SET status = 'inactive', updated_at = $3, version = version + 1 WHERE id = $1 AND status = 'active' AND updated_at < $2",
				t.ID, at, now)
		case TombUser:
			// A deleted user comes back deactivated rather than deleted:
			// the directory deletes it again on its next push, and
			// nothing of theirs is lost if the deletion was not meant.
			what = "deactivated"
			n, err = q.exec(ctx, "UPDATE users SET active = false, updated_at = $3, version = version + 1 WHERE id = $1 AND active AND updated_at < $2",
				t.ID, at, now)
		default:
			return fmt.Errorf("%w: tombstone kind %q", ErrInvalid, t.Kind)
		}
		return err
	})
	if err != nil || n == 0 {
		return "", err
	}
	return what, nil
}

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("store: dry run")

// reorder records again the revocation order that t's change recorded
// (lost with the rest of the database): it ends the sessions again
// wherever the session store still holds them (a Redis restored too) and
// is kept for the session store's own rewinds.
func (db *DB) reorder(ctx context.Context, t Tombstone) error {
	r := Revocation{TenantID: t.TenantID, SubjectID: t.ID, Reason: "restore." + string(t.Kind)}
	switch t.Kind {
	case TombUser:
		r.Kind = RevokeUser
	case TombConnection:
		r.Kind = RevokeConnection
	case TombTenant:
		r.Kind, r.TenantID, r.SubjectID = RevokeTenant, t.ID, ""
	default:
		return nil
	}
	if r.TenantID == "" {
		return nil
	}
	_, err := db.RecordRevocation(ctx, r)
	return err
}

// unusableHash is a hash no token or secret has: 32 random bytes, whose
// preimage nobody knows.
func unusableHash() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("store: crypto/rand: %v", err))
	}
	return b
}

// ForgettingLedger is a Ledger that can forget tombstones by age and
// remember the highest number it forgot (sessions.RedisLedger): a
// database whose last check is below that number was restored from a
// backup older than the tombstone horizon, and ReapplyTombstones says so.
type ForgettingLedger interface {
	Ledger
	// Forget deletes the tombstones keys and raises the forgotten mark to
	// the highest number among them.
	Forget(ctx context.Context, keys []string) error
	// Forgotten is the highest number forgotten so far (0: none).
	Forgotten(ctx context.Context) (int64, error)
}

// PruneTombstones forgets the tombstones written before before: the
// tombstone horizon, which the operator ties to the backup retention (a
// tombstone only matters to a backup taken before it, and no backup older
// than the horizon is restored). It says how many went. ErrNoLedger on a
// store without a ledger.
func (db *DB) PruneTombstones(ctx context.Context, before time.Time) (int, error) {
	if db.ledger == nil {
		return 0, ErrNoLedger
	}
	f, ok := db.ledger.(ForgettingLedger)
	if !ok {
		return 0, fmt.Errorf("store: the tombstone ledger %T cannot forget", db.ledger)
	}
	raw, _, err := db.ledger.Since(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("store: read tombstones: %w", err)
	}
	var old []string
	for k, v := range raw {
		var t Tombstone
		if err := json.Unmarshal(v, &t); err != nil || t.Kind == "" {
			return 0, fmt.Errorf("store: tombstone %s does not parse: %v", k, err)
		}
		if t.At.Before(before) {
			old = append(old, k)
		}
	}
	if len(old) == 0 {
		return 0, nil
	}
	sort.Strings(old)
	if err := f.Forget(ctx, old); err != nil {
		return 0, fmt.Errorf("store: forget tombstones: %w", err)
	}
	return len(old), nil
}

// forgetErased deletes from the ledger the tombstones of an erased
// tenant's users, connections, directory tokens and portal links: nothing
// of the tenant is left for them to revoke, and a restored backup that
// holds the tenant again meets the tenant's own tombstone, which stays
// (it deletes the tenant again, and the erase job erases it). A failure
// is reported through the ledger's error hook: the erasure is done.
func (db *DB) forgetErased(ctx context.Context, tenantID string) int {
	if db.ledger == nil || tenantID == "" {
		return 0
	}
	report := func(err error) int {
		if db.ledgerErr != nil {
			db.ledgerErr(fmt.Errorf("store: forget the tombstones of erased tenant %s: %w", tenantID, err))
		}
		return 0
	}
	raw, _, err := db.ledger.Since(ctx, 0)
	if err != nil {
		return report(err)
	}
	n := 0
	for k, v := range raw {
		var t Tombstone
		if json.Unmarshal(v, &t) != nil || t.Kind == TombTenant || t.TenantID != tenantID {
			continue
		}
		if err := db.ledger.Delete(ctx, k); err != nil {
			return report(err)
		}
		n++
	}
	return n
}
