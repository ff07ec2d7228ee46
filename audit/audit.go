// Package audit checks the tamper evidence of the audit logs. Rows are
// appended by the surfaces through store.AppendAudit (per tenant) and
// store.AppendOperatorAudit (the operators' own trail), each hashing its
// predecessor; Verify walks a tenant's chain, VerifyOperators the
// operators', and each reports every row that was changed, removed or
// inserted after the fact.
package audit

import (
	"context"
	"fmt"

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
}

// OK reports whether the chain is intact.
func (r Report) OK() bool { return len(r.Breaks) == 0 }

// Anchor is a chain's head as an earlier verify saw it: how many rows it
// had and the hash of the newest. A chain only re-hashes to itself, so an
// attacker who can write the database can remove its newest rows, or
// rewrite a row and re-compute every hash after it, and the chain still
// holds; kept out of the attacker's reach, an anchor catches both: the
// chain must still have its Rows-th row, and that row must still hash to
// Hash.
type Anchor struct {
	Rows int
	Hash string
}

// Anchor is the report's head as an anchor for a later verify.
func (r Report) Anchor() Anchor { return Anchor{Rows: r.Rows, Hash: r.Head} }

// Walker is the part of the store Verify reads.
type Walker interface {
	WalkAudit(ctx context.Context, fn func(store.AuditEvent) error) error
}

// Verify re-hashes the audit chain of the tenant in ctx. A changed row no
// longer matches its own hash; a removed or inserted row breaks the link to
// the next one's prev_hash. (Removing the newest rows leaves no trace in
// the chain itself: compare Rows with an earlier report, or anchor the
// latest hash elsewhere.)
func Verify(ctx context.Context, w Walker) (Report, error) {
	return VerifyAnchored(ctx, w, nil)
}

// VerifyAnchored is Verify that also checks the chain against an anchor
// an earlier verify gave (nil: none).
func VerifyAnchored(ctx context.Context, w Walker, a *Anchor) (Report, error) {
	tenantID, _ := store.TenantFrom(ctx)
	rep := Report{TenantID: tenantID}
	c := chain{anchor: a}
	err := w.WalkAudit(ctx, func(e store.AuditEvent) error {
		h, err := store.AuditHash(e)
		c.link(&rep, e.ID, e.PrevHash, e.Hash, h, err)
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
	c := chain{anchor: a}
	err := w.WalkOperatorAudit(ctx, func(e store.OperatorAuditEvent) error {
		if e.Hash == "" && e.PrevHash == "" && !c.started {
			rep.Unchained++
			return nil
		}
		h, err := store.OperatorAuditHash(e)
		c.link(&rep, e.ID, e.PrevHash, e.Hash, h, err)
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
}

// link checks a row whose stored hashes are prev and hash and whose
// content re-hashes to rehash (or failed to, with err).
func (c *chain) link(rep *Report, id, prev, hash, rehash string, err error) {
	rep.Rows++
	if prev != c.prev {
		rep.Breaks = append(rep.Breaks, Break{id, fmt.Sprintf("prev_hash %.12s… does not link to the row before (%.12s…): a row was removed or inserted", prev, c.prev)})
	}
	switch {
	case err != nil:
		rep.Breaks = append(rep.Breaks, Break{id, "cannot be re-hashed: " + err.Error()})
	case rehash != hash:
		rep.Breaks = append(rep.Breaks, Break{id, "content does not match its hash: the row was changed"})
	}
	if a := c.anchor; a != nil && rep.Rows == a.Rows && hash != a.Hash {
		rep.Breaks = append(rep.Breaks, Break{id, fmt.Sprintf("row %d hashes %.12s… where the anchor says %.12s…: the chain was rewritten up to here", a.Rows, hash, a.Hash)})
	}
	c.started, c.prev, c.last = true, hash, id
	rep.Head = hash
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
