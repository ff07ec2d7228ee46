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
	// Unchained counts rows written before their chain existed (the
	// operators' rows before migration 0081); they are not verified.
	Unchained int
}

// OK reports whether the chain is intact.
func (r Report) OK() bool { return len(r.Breaks) == 0 }

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
	tenantID, _ := store.TenantFrom(ctx)
	rep := Report{TenantID: tenantID}
	var c chain
	err := w.WalkAudit(ctx, func(e store.AuditEvent) error {
		h, err := store.AuditHash(e)
		c.link(&rep, e.ID, e.PrevHash, e.Hash, h, err)
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("audit: verify tenant %s: %w", tenantID, err)
	}
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
	var rep Report
	var c chain
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
	return rep, nil
}

// chain checks one row after another.
type chain struct {
	started bool
	prev    string
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
	c.started, c.prev = true, hash
}
