// Package audit checks the tamper evidence of the audit logs. Rows are
// appended by the surfaces through store.AppendAudit (per tenant) and
// store.AppendOperatorAudit (the operators' own trail), each hashing its
// predecessor (SHA-256) and carrying a mac of that hash under a key sealed
// by the master key (store.AuditKeys); Verify walks a tenant's chain,
// VerifyOperators the operators', and each reports every row that was
// changed, removed or inserted after the fact.
// Checkpoints (checkpoint.go) sign every chain's head so that a copy kept
// elsewhere also catches the newest rows removed.
package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/idbroker/idbroker/store"
)

// Break is one place where a chain does not hold.
type Break struct {
	ID     string // the row at which the chain breaks
	Reason string
}

// Report is the outcome of verifying one tenant's chain.
type Report struct {
	TenantID string
	Rows     int
	Breaks   []Break
	// Head is the hash of the chain's newest row ("" for an empty chain):
	// with Rows, the anchor a later verify checks the chain against.
	Head string
	// Unchained counts rows written before their chain existed (the
	// operators' rows before migration 0081); they are not verified.
	Unchained int
	// Unvouched counts the newest rows after the last one with a valid
	// mac (all of them in a chain with none): their hashes hold, but no
	// key vouches for them, so only an anchor (a checkpoint) taken since
	// shows they were not rewritten. A node from before the keys writes
	// such rows until a newer one appends after them; so do rows whose
	// macs were stripped, which is why this is not a break.
	Unvouched int
}

// OK reports whether the chain is intact.
func (r Report) OK() bool { return len(r.Breaks) == 0 }

// Anchor is a chain's head as an earlier verify (or a checkpoint) saw it:
// how many rows it had and the hash of the newest. Macs stop an attacker
// who can write the database from re-computing a chain up to a row with a
// mac, but not from removing its newest rows (what is left still holds),
// nor from rewriting the rows after the last mac, or from a row on with
// every mac after it stripped (rows without a mac are legitimate: nodes
// from before the keys write them); kept out of the attacker's reach, an
// anchor catches these: the chain must still have its Rows-th row, and
// that row must still hash to Hash.
type Anchor struct {
	Rows int
	Hash string
}

// Anchor is the report's head as an anchor for a later verify.
func (r Report) Anchor() Anchor { return Anchor{Rows: r.Rows, Hash: r.Head} }

// Keyring is the part of the store that holds the audit keys.
type Keyring interface {
	AuditKeys(ctx context.Context) (*store.AuditKeys, error)
}

// Walker is the part of the store Verify reads.
type Walker interface {
	Keyring
	WalkAudit(ctx context.Context, fn func(store.AuditEvent) error) error
}

// Verify re-hashes the audit chain of the tenant in ctx and checks every
// mac under the audit key it names. A changed row no longer matches its
// own hash; a removed or inserted row breaks the link to the next one's
// prev_hash; a chain re-computed after a change breaks the mac of the
// first row with one from there on. (The rows after the last mac, and
// removing the newest rows, leave no trace in the chain itself: verify
// against a checkpoint, VerifyAnchored. Report.Unvouched counts them.)
func Verify(ctx context.Context, w Walker) (Report, error) {
	return VerifyAnchored(ctx, w, nil)
}

// VerifyAnchored is Verify that also checks the chain against an anchor
// an earlier verify gave (nil: none).
func VerifyAnchored(ctx context.Context, w Walker, a *Anchor) (Report, error) {
	tenantID, _ := store.TenantFrom(ctx)
	rep := Report{TenantID: tenantID}
	keys, err := w.AuditKeys(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: verify tenant %s: %w", tenantID, err)
	}
	c := chain{anchor: a, keys: keys}
	err = w.WalkAudit(ctx, func(e store.AuditEvent) error {
		c.link(&rep, e)
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("audit: verify tenant %s: %w", tenantID, err)
	}
	c.end(&rep)
	return rep, nil
}

// OperatorWalker is the part of the store VerifyOperators reads.
type OperatorWalker interface {
	Keyring
	WalkOperatorAudit(ctx context.Context, fn func(store.OperatorAuditEvent) error) error
}

// VerifyOperators re-hashes the operators' audit chain, as Verify does a
// tenant's; the report's TenantID is empty. Rows written before the chain
// existed carry no hashes: they are counted in Unchained and the chain
// starts after them.
func VerifyOperators(ctx context.Context, w OperatorWalker) (Report, error) {
	return VerifyOperatorsAnchored(ctx, w, nil)
}

// VerifyOperatorsAnchored is VerifyOperators that also checks the chain
// against an anchor an earlier verify gave (nil: none). The anchor counts
// the chained rows only, so rows stripped of their hashes to pass for
// older ones shorten the chain and are caught.
func VerifyOperatorsAnchored(ctx context.Context, w OperatorWalker, a *Anchor) (Report, error) {
	var rep Report
	keys, err := w.AuditKeys(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: verify operators: %w", err)
	}
	c := chain{anchor: a, keys: keys}
	since := keys.Since()
	err = w.WalkOperatorAudit(ctx, func(e store.OperatorAuditEvent) error {
		if e.Hash == "" && e.PrevHash == "" && e.MAC == "" && e.KeyVersion == 0 && !c.started {
			rep.Unchained++
			// The rows from before the chain are older than its keys too:
			// one dated since had its hashes blanked.
			if !since.IsZero() && !e.TS.Before(since) {
				rep.Breaks = append(rep.Breaks, Break{e.ID, fmt.Sprintf("no hashes, as a row from before the chain, but dated %s, after the chains were keyed at %s: its hashes were blanked", e.TS.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))})
			}
			return nil
		}
		c.link(&rep, store.AuditEvent{ID: e.ID, Actor: e.Actor, Action: e.Action, Resource: e.Resource, Context: e.Context,
			RequestID: e.RequestID, TS: e.TS, PrevHash: e.PrevHash, Hash: e.Hash, MAC: e.MAC, KeyVersion: e.KeyVersion})
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("audit: verify operators: %w", err)
	}
	c.end(&rep)
	return rep, nil
}

// chain checks one row after another.
type chain struct {
	started bool
	prev    string
	last    string // the id of the row before
	anchor  *Anchor
	keys    *store.AuditKeys
	// vouched is how many rows a valid mac (or a hash keyed by 0109)
	// vouches for: those up to the newest such row.
	vouched int
}

// link checks row e: its link to the row before, its hash, and its mac.
func (c *chain) link(rep *Report, e store.AuditEvent) {
	id, prev, hash := e.ID, e.PrevHash, e.Hash
	rep.Rows++
	if prev != c.prev {
		rep.Breaks = append(rep.Breaks, Break{id, fmt.Sprintf("prev_hash %.12s… does not link to the row before (%.12s…): a row was removed or inserted", prev, c.prev)})
	}
	rehash, err := c.keys.Hash(e)
	hashOK := false
	switch {
	case err != nil:
		rep.Breaks = append(rep.Breaks, Break{id, "cannot be re-hashed: " + err.Error()})
	case rehash != hash:
		rep.Breaks = append(rep.Breaks, Break{id, "content does not match its hash: the row was changed"})
	default:
		hashOK = true
	}
	// The hash covers the row and, through prev_hash, every row before:
	// a valid mac of it vouches for them all. A row without one (written
	// by a node from before the keys) waits for the next mac.
	switch {
	case store.Keyed0109(e):
		// Its hash is itself keyed (migration 0109 alone): checked above.
		if hashOK {
			c.vouched = rep.Rows
		}
	case e.MAC != "":
		ok, err := c.keys.MACOK(e)
		switch {
		case err != nil:
			rep.Breaks = append(rep.Breaks, Break{id, "mac cannot be checked: " + err.Error()})
		case !ok:
			rep.Breaks = append(rep.Breaks, Break{id, "mac does not match its hash: this row or one before it was changed and the chain re-computed without the audit key"})
		default:
			c.vouched = rep.Rows
		}
	}
	if a := c.anchor; a != nil && rep.Rows == a.Rows && hash != a.Hash {
		rep.Breaks = append(rep.Breaks, Break{id, fmt.Sprintf("row %d hashes %.12s… where the anchor says %.12s…: the chain was rewritten up to here", a.Rows, hash, a.Hash)})
	}
	c.started, c.prev, c.last = true, hash, id
	rep.Head = hash
	rep.Unvouched = rep.Rows - c.vouched
}

// end checks, after the last row, that the chain still reaches its anchor.
func (c *chain) end(rep *Report) {
	if a := c.anchor; a != nil && rep.Rows < a.Rows {
		at := c.last
		if at == "" {
			at = "(no rows)"
		}
		rep.Breaks = append(rep.Breaks, Break{at, fmt.Sprintf("the chain ends here, at row %d, where the anchor counted %d: the newest rows were removed", rep.Rows, a.Rows)})
	}
}
